"""The host side of measure --input (edgeprof/image_inputs.py): what --input accepts, the normalization a model
gets, the span the options make, and the refusals of backends without an end-to-end runner."""
import json

import pytest
from click.testing import CliRunner

from edgeprof import image_inputs
from edgeprof.backends import Options, backend_class
from edgeprof.cli import main
from edgeprof.errors import InputError
from edgeprof.image_inputs import ImageInput, end_to_end_span, normalization, parse_input
from edgeprof.models import resolve


@pytest.fixture
def folder(tmp_path):
    for name in ("b.jpg", "a.PNG", "clip.mp4", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    return tmp_path


def test_a_folder_gives_its_image_and_video_files_by_name(folder):
    found = parse_input(str(folder))
    assert [p.rsplit("/", 1)[1] for p in found.files] == ["a.PNG", "b.jpg", "clip.mp4"]
    assert found.board_path is None


@pytest.mark.parametrize("text, message", [
    ("board:relative/path", "absolute and plain"),
    ("board:/data/../etc", "absolute and plain"),
    ("board:/data/$(reboot)", "absolute and plain"),
    ("board:/data/ -rf", "absolute and plain"),
    ("/no/such/folder", "no such file or folder"),
])
def test_refused_inputs(text, message):
    with pytest.raises(InputError, match=message):
        parse_input(text)


def test_a_file_or_folder_without_images_is_refused(folder):
    with pytest.raises(InputError, match="not an image or video file"):
        parse_input(str(folder / "notes.txt"))
    with pytest.raises(InputError, match="holds no regular file"):
        parse_input(str(folder / "sub.jpg"))


def test_the_upload_cap(folder, monkeypatch):
    monkeypatch.setattr(image_inputs, "MAX_BYTES", 2)
    with pytest.raises(InputError, match="board:/path"):
        parse_input(str(folder))


def test_a_board_path_is_kept_as_given():
    assert parse_input("board:/data/coco-val/").board_path == "/data/coco-val"


def test_normalization_from_transform_param_else_torchvision(tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('name: "n"\nlayer { name: "data" type: "Input" top: "data"\n'
                        '  transform_param { scale: 0.017 mean_value: 103.94 mean_value: 116.78 mean_value: 123.68 }\n'
                        '  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n')
    found = normalization(resolve(str(prototxt)))
    assert found["order"] == "BGR" and found["mean"] == [103.94, 116.78, 123.68] and found["scale"] == [0.017] * 3
    assert "transform_param" in found["source"]
    assert normalization(resolve("alexnet"))["source"].startswith("torchvision defaults")


IMAGES = ImageInput("d", files=("d/a.jpg",))


@pytest.mark.parametrize("kwargs, span", [
    (dict(span="compute", span_given=False, image_input=IMAGES), "end-to-end"),
    (dict(span="end-to-end", span_given=True, image_input=IMAGES, images=10, prefetch=4), "end-to-end"),
    (dict(span="host", span_given=True, image_input=None), "host"),
])
def test_the_span_of_the_options(kwargs, span):
    given = dict(images=None, prefetch=0, iterations=None, duration_s=None, exclusive={})
    assert end_to_end_span(**{**given, **kwargs}) == span


@pytest.mark.parametrize("kwargs, message", [
    (dict(span="end-to-end", span_given=True, image_input=None), "give them with --input"),
    (dict(span="compute", span_given=False, image_input=None, prefetch=2), "add --input"),
    (dict(span="host", span_given=True, image_input=IMAGES), "not --span host"),
    (dict(span="compute", span_given=False, image_input=IMAGES, images=5, iterations=3), "exclude each other"),
    (dict(span="compute", span_given=False, image_input=IMAGES, exclusive={"--best": True}), "not with --best"),
])
def test_options_that_do_not_go_together(kwargs, message):
    given = dict(images=None, prefetch=0, iterations=None, duration_s=None, exclusive={})
    with pytest.raises(InputError, match=message):
        end_to_end_span(**{**given, **kwargs})


@pytest.mark.parametrize("backend", ["caffe", "pycaffe", "tensorrt", "libtorch"])
def test_backends_without_an_end_to_end_runner_refuse_it(backend):
    refused = backend_class(backend)().refusal(Options(span="end-to-end", image_input=IMAGES))
    assert refused and refused.startswith("--span end-to-end")


@pytest.mark.parametrize("backend", ["pytorch", "onnxruntime"])
def test_backends_with_an_end_to_end_runner_take_it(backend):
    assert backend_class(backend)().refusal(Options(span="end-to-end", image_input=IMAGES)) is None


@pytest.mark.parametrize("args, message", [
    (["--input", "{missing}"], "no such file or folder"),
    (["--images", "5"], "add --input"),
    (["--span", "end-to-end"], "give them with --input"),
    (["--input", "{folder}", "--span", "host"], "not --span host"),
    (["--input", "{folder}", "--best"], "not with --best"),
    (["--input", "{folder}", "--images", "5", "--duration", "10"], "exclude each other"),
    (["--input", "{folder}", "--prefetch", "-1"], "-1 is not in the range"),
])
def test_measure_refuses_before_touching_a_board(tmp_path, folder, args, message):
    argv = [a.format(missing=tmp_path / "missing", folder=folder) for a in args]
    result = CliRunner().invoke(main, ["measure", "--device", "nowhere", "alexnet", "--backend", "pytorch", *argv,
                                       "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_runner_args_pass_normalization_post_and_counts(folder):
    class Board:
        workdir = "/w"
    found = ImageInput("board:/data", board_path="/data")
    argv = image_inputs.runner_args(Board(), resolve("alexnet"), found, 100, 4)
    assert argv[:2] == ["--images-from", "/data"] and argv[-4:] == ["--images", "100", "--prefetch", "4"]
    assert json.loads(argv[3])["order"] == "RGB" and argv[4:6] == ["--post", "classifier"]


def test_reproduce_sh_gives_an_end_to_end_result_its_input_again():
    from edgeprof.bundles.reproduce import script
    from edgeprof.result import Result
    result = Result("sim-desktop", "alexnet", "pytorch", 1, "run1", id=1, status="ok",
                    settings={"span": "end-to-end", "iterations": 40, "input": "frames dir/", "prefetch": 4},
                    model_info={"catalog": True})
    [command] = [line for line in script([result], {}, "test").splitlines() if line.startswith("edgeprof measure")]
    assert "--iterations 40 --span end-to-end" in command and "--input 'frames dir/' --prefetch 4" in command


def test_an_upload_the_board_refuses_fails_the_item_not_the_sweep(folder):
    from types import SimpleNamespace

    from edgeprof.errors import RunnerFailed

    class Board:
        workdir = "/w"
        device = SimpleNamespace(name="full-disk")

        def run(self, argv, **_):
            return SimpleNamespace(ok=False)
    options = Options(span="end-to-end", image_input=parse_input(str(folder)))
    with pytest.raises(RunnerFailed, match="could not upload --input's files to full-disk"):
        image_inputs.input_argv(Board(), resolve("alexnet"), options)
    assert image_inputs.input_argv(Board(), resolve("alexnet"), Options()) == []
