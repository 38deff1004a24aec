"""Host side of real inputs (measure --input, --span end-to-end): which files, their upload into the board's work
folder, the normalization a model expects and the post-processing its kind needs; the board side, which decodes
and times the stages, is edgeprof/onboard/image_inputs.py.

--input takes a local image or video file, a local folder of them (its regular files with an image or video suffix,
by name, not its subfolders), or `board:/absolute/path` for a dataset already on the board, which is only read
there. Local files are uploaded under names edgeprof makes (00000.jpg, 00001.mp4...: no user text reaches the
board's file system), into a folder of the run's work folder named by the files' content, once per work folder;
at most MAX_FILES files and MAX_BYTES bytes in all (a larger dataset belongs on the board: board:/path).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, RunnerFailed
from .models import parse
from .models.prototxt import layers
from .onboard.image_inputs import IMAGE_SUFFIXES, TORCHVISION_NORMALIZATION, VIDEO_SUFFIXES

if TYPE_CHECKING:
    from .backends import Options
    from .board import Board
    from .models import ModelSource
    from .result import Result

BOARD_PREFIX = "board:"
MAX_FILES = 10_000
MAX_BYTES = 512 * 1024 * 1024
# A board path is passed as one argv element (never through a shell), and still kept to plain characters, so that
# it reads the same in a result's commands and cannot be taken for an option.
_BOARD_PATH = re.compile(r"/[A-Za-z0-9._+/-]*")


@dataclass(frozen=True)
class ImageInput:
    """What --input names: local files (paths, in order) or a path on the board."""
    text: str
    files: tuple[str, ...] = ()
    board_path: str | None = None


def _suffix_ok(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES


def parse_input(text: str) -> ImageInput:
    """The --input value checked: a local file or folder of images or videos, or board:/path. InputError otherwise."""
    if text.startswith(BOARD_PREFIX):
        path = text[len(BOARD_PREFIX):]
        if not _BOARD_PATH.fullmatch(path) or "/../" in path + "/" or "/./" in path + "/":
            raise InputError(f"--input {text!r}: a board path is absolute and plain (letters, digits, . _ + - /, no "
                             f"'..'), e.g. board:/data/images")
        return ImageInput(text, board_path=path.rstrip("/") or "/")
    path = Path(text)
    kinds = ", ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _suffix_ok(p) and p.is_file())
        if not files:
            raise InputError(f"--input {text}: the folder holds no regular file with an image or video suffix ({kinds})")
    elif path.is_file():
        if not _suffix_ok(path):
            raise InputError(f"--input {text}: not an image or video file by its suffix ({kinds})")
        files = [path]
    else:
        raise InputError(f"--input {text}: no such file or folder (board:/path names a dataset on the board)")
    if len(files) > MAX_FILES:
        raise InputError(f"--input {text}: {len(files)} files, more than edgeprof uploads ({MAX_FILES}); put the "
                         f"dataset on the board and give --input board:/path")
    total = sum(p.stat().st_size for p in files)
    if total > MAX_BYTES:
        raise InputError(f"--input {text}: {total / 2**20:.0f} MiB, more than edgeprof uploads "
                         f"({MAX_BYTES // 2**20} MiB); put the dataset on the board and give --input board:/path")
    return ImageInput(text, files=tuple(str(p) for p in files))


def upload(board: "Board", found: ImageInput, record_in: "Result | None" = None) -> str:
    """The folder on the board holding `found`'s files: board:/path as given, local files uploaded (once per work
    folder: the folder is named by their content and written complete before a marker file)."""
    if found.board_path is not None:
        return found.board_path
    digest = hashlib.sha256()
    contents = []
    for path in found.files:
        data = Path(path).read_bytes()
        digest.update(hashlib.sha256(data).digest())
        contents.append((Path(path).suffix.lower(), data))
    folder = f"{board.workdir}/inputs-{digest.hexdigest()[:16]}"
    marker = f"{folder}/.complete"
    if board.run(["test", "-f", marker], timeout=30, record_in=record_in).ok:
        return folder
    if not board.run(["mkdir", "-p", folder], timeout=30, record_in=record_in).ok:
        raise OSError(f"could not create {folder} on {board.device.name}")
    for index, (suffix, data) in enumerate(contents):
        board.put_bytes(f"{folder}/{index:05d}{suffix}", data)
    board.put_text(marker, "")
    return folder


# torchvision's detectors take RGB in 0..1 and normalize inside their own transform (GeneralizedRCNNTransform, with the
# model's image_mean and image_std), so the normalize stage only scales the pixels.
DETECTOR_NORMALIZATION = {"source": "torchvision detectors: RGB scaled to 0..1; the detector's transform normalizes "
                                    "with its own mean and std inside the forward", "order": "RGB",
                          "mean": [0.0, 0.0, 0.0], "scale": [1 / 255] * 3}


def normalization(model: "ModelSource") -> dict:
    """The mean and scale of the net's input: a prototxt's transform_param where a layer has one (Caffe's data
    transformer: BGR 8-bit pixels, (pixel - mean_value) * scale, caffe/src/caffe/data_transformer.cpp), else
    torchvision's ImageNet defaults (RGB), or for a torchvision detector 0..1 RGB (DETECTOR_NORMALIZATION); "source"
    says which."""
    if model.is_detector:
        return dict(DETECTOR_NORMALIZATION)
    if model.kind == "prototxt":
        for layer in layers(parse(model.text, model.path)):
            param = layer.message("transform_param")
            if param is None:
                continue
            means = [float(s.value) for s in param.scalars("mean_value")]
            if len(means) == 1:
                means *= 3  # one mean_value applies to every channel (data_transformer.cpp)
            if len(means) not in (0, 3):
                raise InputError(f"{model.name}: transform_param has {len(means)} mean_value entries; --input feeds "
                                 f"3-channel images")
            scale = float(param.get("scale", 1.0))
            return {"source": f"{model.name}'s transform_param (layer {layer.get('name', '?')})", "order": "BGR",
                    "mean": means or [0.0, 0.0, 0.0], "scale": [scale] * 3}
    return dict(TORCHVISION_NORMALIZATION)


def post_kind(model: "ModelSource") -> str:
    """The post-processing step of the model's kind, one of the runners' POSTPROCESSING keys: "detector" for a
    torchvision detector, else "classifier" (softmax and top-5)."""
    return "detector" if model.is_detector else "classifier"


def runner_args(board: "Board", model: "ModelSource", found: ImageInput, images: int | None, prefetch: int,
                record_in: "Result | None" = None) -> list[str]:
    """The board runner's end-to-end arguments (onboard/image_inputs.py add_input_arguments), the files uploaded."""
    argv = ["--images-from", upload(board, found, record_in), "--normalize", json.dumps(normalization(model)),
            "--post", post_kind(model)]
    if images is not None:
        argv += ["--images", str(images)]
    if prefetch:
        argv += ["--prefetch", str(prefetch)]
    return argv


def input_argv(board: "Board", model: "ModelSource", options: "Options",
               record_in: "Result | None" = None) -> list[str]:
    """runner_args for `options` ([] without --input), as every backend with an end-to-end runner adds them; a
    failure to upload the files or to read the model's normalization is the item's (RunnerFailed), not the sweep's."""
    if options.image_input is None:
        return []
    try:
        return runner_args(board, model, options.image_input, options.images, options.prefetch, record_in)
    except OSError as e:
        raise RunnerFailed(f"could not upload --input's files to {board.device.name}: {e}") from None
    except InputError as e:
        raise RunnerFailed(str(e)) from None


def end_to_end_span(span: str, span_given: bool, image_input: ImageInput | None, images: int | None, prefetch: int,
                    iterations: int | None, duration_s: float | None, exclusive: dict[str, bool]) -> str:
    """The --span a measure runs with these options: end-to-end where --input is given and --span is not; InputError
    for what does not go together. `exclusive` names the other options given that end to end does not take."""
    if image_input is None:
        if span == "end-to-end":
            raise InputError("--span end-to-end times real images through every stage: give them with --input "
                             "DIR|FILE|VIDEO|board:/PATH")
        if images is not None or prefetch:
            raise InputError("--images and --prefetch are about --input's images: add --input")
        return span
    if span_given and span != "end-to-end":
        raise InputError(f"--input feeds real images through --span end-to-end, not --span {span}: drop --span or "
                         f"give --span end-to-end")
    if images is not None and (iterations is not None or duration_s is not None):
        raise InputError("--images, --iterations and --duration exclude each other: a run is timed for one of them")
    given = [name for name, on in exclusive.items() if on]
    if given:
        raise InputError(f"--input runs the net eagerly on real images: not with {', '.join(given)}")
    return "end-to-end"
