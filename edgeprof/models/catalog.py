"""The model catalog: deploy prototxts shipped in package `edgeprof.prototxts`, or a user's own model.

`resolve` is the one door a model name comes in by. A name is looked up, never interpreted: a string
that is not a catalog name, an existing .prototxt or TorchScript file, or `torchvision:NAME` with NAME
an identifier is an UnknownModel, whatever characters it holds, so nothing downstream ever sees it.

Model kinds: "prototxt" (every backend), "torchvision" and "torchscript" (the PyTorch backend only;
`text` is empty for them). Whether torchvision has NAME is learnt on the board that builds it.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError

from .prototxt import PrototxtError, declared_inputs, parse, set_batch
from .stats import analyze

__all__ = ["ModelSource", "UnknownModel", "catalog_names", "resolve", "describe"]

_PACKAGE = "edgeprof.prototxts"
_SUFFIX = ".prototxt"
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
TORCHVISION_PREFIX = "torchvision:"
KINDS = ("prototxt", "torchvision", "torchscript")
# torchvision.models.detection's builders by name (torchvision 0.8 to 0.28: Faster, Mask and Keypoint R-CNN,
# RetinaNet, FCOS, SSD300, SSDlite320): which end-to-end normalization and post-processing a torchvision:NAME takes
# (edgeprof.image_inputs). What the board builds is its torchvision's (onboard/torchvision_models.is_detector).
TORCHVISION_DETECTOR = re.compile(r"(fasterrcnn|maskrcnn|keypointrcnn|retinanet|fcos|ssd300|ssdlite320)_\w+")


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: str  # where the text came from (a file inside the installed package for catalog models)
    text: str
    sha256: str  # of the text, UTF-8 encoded (of the file's bytes for TorchScript, of the name for torchvision)
    catalog: bool
    kind: str = "prototxt"

    @property
    def is_detector(self) -> bool:
        """A torchvision detector (TORCHVISION_DETECTOR), whose forward holds its own transform and NMS."""
        name = self.path[len(TORCHVISION_PREFIX):]
        return self.kind == "torchvision" and bool(TORCHVISION_DETECTOR.fullmatch(name))

    def file_stem(self, batch: int) -> str:
        """The model's file name on a board at `batch` (no suffix): safe in any shell and file system."""
        return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', self.name) or 'model'}-b{batch}"

    def input_shapes(self, batch: int) -> dict[str, list[int]] | None:
        """{input name: shape} as a run at `batch` feeds it (a prototxt's declared inputs with the batch
        replaced); None for models whose runner chooses (torchvision, TorchScript: its --input-shape)."""
        if self.kind != "prototxt":
            return None
        return {d.name: [batch] + list(d.dims[1:]) for d in declared_inputs(self.text, self.path)}

    def at_batch(self, batch: int) -> tuple[str, str]:
        """(the prototxt with only its batch changed to `batch`, the unified diff kept with the result for
        `results show`)."""
        rewritten = set_batch(self.text, batch, self.path)
        diff = "".join(difflib.unified_diff(self.text.splitlines(keepends=True), rewritten.splitlines(keepends=True),
                                            fromfile=self.path, tofile=f"{self.name} (batch {batch})"))
        return rewritten, diff


class UnknownModel(InputError, LookupError):
    """Neither a catalog name nor a path to an existing .prototxt file."""


def catalog_names() -> list[str]:
    return sorted(entry.name[:-len(_SUFFIX)] for entry in resources.files(_PACKAGE).iterdir()
                  if entry.name.endswith(_SUFFIX) and entry.is_file())


def _read(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise PrototxtError(path, line, column, "not UTF-8 text") from None


def _source(name: str, path: str, data: bytes, catalog: bool) -> ModelSource:
    text = _read(path, data)
    return ModelSource(name, path, text, hashlib.sha256(text.encode("utf-8")).hexdigest(), catalog)


def resolve(name_or_path: str) -> ModelSource:
    """A catalog model by name, the .prototxt or TorchScript file at a path, or `torchvision:NAME`.
    Raises UnknownModel otherwise, and PrototxtError for a prototxt that is not UTF-8 text."""
    names = catalog_names()
    if name_or_path in names:
        entry = resources.files(_PACKAGE).joinpath(name_or_path + _SUFFIX)
        return _source(name_or_path, str(entry), entry.read_bytes(), True)
    if name_or_path.startswith(TORCHVISION_PREFIX):
        model = name_or_path[len(TORCHVISION_PREFIX):]
        if not re.fullmatch(r"[a-z][a-z0-9_]*", model):
            raise UnknownModel(f"{name_or_path!r}: torchvision model names are lower-case identifiers, "
                               f"e.g. torchvision:resnet50 or torchvision:mobilenet_v3_small")
        return ModelSource(name_or_path, TORCHVISION_PREFIX + model, "",
                           hashlib.sha256(name_or_path.encode()).hexdigest(), False, "torchvision")
    path = Path(name_or_path)
    if path.suffix == _SUFFIX and path.is_file():
        return _source(path.stem, str(path), path.read_bytes(), False)
    if path.suffix in TORCHSCRIPT_SUFFIXES and path.is_file():
        return ModelSource(path.stem, str(path), "", hashlib.sha256(path.read_bytes()).hexdigest(), False,
                           "torchscript")
    raise UnknownModel(_unknown_message(name_or_path, path, names))


def _unknown_message(name_or_path: str, path: Path, names: list[str]) -> str:
    is_file_name = path.suffix in (_SUFFIX, *TORCHSCRIPT_SUFFIXES)
    parts = [f"unknown model {name_or_path!r}" + (" (no such file)" if is_file_name else "") + "."]
    close = difflib.get_close_matches(name_or_path.lower(), names, n=3, cutoff=0.6)
    if close:
        parts.append(f"Did you mean {' or '.join(close)}?")
    parts.append(f"Catalog models: {', '.join(names)}. A path to a {_SUFFIX} file also works, and for the "
                 f"PyTorch backend a TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)}) or torchvision:NAME.")
    return " ".join(parts)


def describe(source: ModelSource, per_layer: bool = False) -> dict:
    """A JSON-ready summary of the model (see edgeprof.models.stats for what the figures count); with
    per_layer, each layer's output shape (batch 1), parameters, MACs and share of the net's MACs. A torchvision
    model is built on this host and counted as it runs (edgeprof.models.torchvision_stats)."""
    if source.kind == "torchvision":
        if per_layer:
            raise InputError(f"{source.name}: per-layer counts read a prototxt's layers; a torchvision model has "
                             f"totals only (drop --layers)")
        from .torchvision_stats import describe_torchvision
        return describe_torchvision(source)
    stats = analyze(parse(source.text, source.path))
    doc = {
        "name": source.name,
        "path": source.path,
        "catalog": source.catalog,
        "sha256": source.sha256,
        "input_shape": list(stats.input_shape) if stats.input_shape else None,
        "params": stats.params,
        "macs": stats.macs,
        "layers": stats.layers,
        "complete": stats.complete,
        "unknown_layers": list(stats.unknown_layers),
        "uncounted": [{"type": t, "count": n, "first_line": line} for t, (n, line) in stats.unknown_where.items()],
    }
    if per_layer:
        doc["per_layer"] = [{"name": one.name, "type": one.type, "line": one.line,
                             "output_shape": list(one.output_shape) if one.output_shape else None,
                             "params": one.params, "macs": one.macs,
                             "macs_share": one.macs / stats.macs if stats.macs else None}
                            for one in stats.per_layer]
    return doc
