"""The board side of --span end-to-end (edgeprof/onboard/image_inputs.py): the files it takes, the decoders, the
frames going round the files, the stage statistics and which stages the total holds, and the runner's option
checks. Real images made with Pillow; no timing asserts (the stages' figures against the total are the lab test's)."""
import pytest
from PIL import Image

from edgeprof.onboard import image_inputs, torch_runner
from edgeprof.onboard.harness import RunnerError
from edgeprof.onboard.image_inputs import EndToEnd, Frames, PillowDecoder, stage_statistics


@pytest.fixture
def images(tmp_path):
    for i, size in enumerate([(40, 30), (64, 48), (33, 17)]):
        Image.new("RGB", size, (10 * i, 20, 30)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.jpg").mkdir()   # a folder with an image's suffix is not a file
    return tmp_path


def test_list_files_takes_regular_image_files_by_name(images):
    assert [p.rsplit("/", 1)[1] for p in image_inputs.list_files(str(images))] == ["0.jpg", "1.jpg", "2.jpg"]
    assert image_inputs.list_files(str(images / "1.jpg")) == [str(images / "1.jpg")]


@pytest.mark.parametrize("path, message", [("missing", "no such file"), ("notes.txt", "no image or video file")])
def test_list_files_refuses_what_holds_no_image(images, path, message):
    with pytest.raises(RunnerError, match=message) as caught:
        image_inputs.list_files(str(images / path))
    assert caught.value.kind == "input"


def test_frames_are_resized_rgb_and_wrap_around(images):
    files = image_inputs.list_files(str(images))
    frames = Frames(image_inputs.find_decoder(files), files, 8, 6)
    got = [frames.next() for _ in range(7)]
    assert all(len(pixels) == 8 * 6 * 3 and decode >= 0 and resize >= 0 for pixels, decode, resize in got)
    assert got[0][0] == got[3][0] == got[6][0] != got[1][0]   # the fourth image is the first file again


def test_an_undecodable_file_is_an_input_error(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    frames = Frames(PillowDecoder(), [str(tmp_path / "broken.jpg")], 8, 8)
    with pytest.raises(RunnerError, match="could not decode") as caught:
        frames.next()
    assert caught.value.kind == "input"


def test_video_without_opencv_names_it(tmp_path):
    # The lab test runs a Python without either decoder for real; here only the message's choice of decoder.
    try:
        import cv2  # noqa: F401
        pytest.skip("OpenCV is installed here")
    except ImportError:
        pass
    with pytest.raises(RunnerError, match="video needs OpenCV") as caught:
        image_inputs.find_decoder([str(tmp_path / "clip.mp4")])
    assert caught.value.kind == "unavailable"


def test_stage_statistics():
    stats = stage_statistics([4.0, 1.0, 3.0, 2.0, 5.0])
    assert stats == {"median": 3.0, "p90": pytest.approx(4.6), "p99": pytest.approx(4.96), "mean": 3.0, "count": 5}
    assert stage_statistics([]) is None


class _Source(object):
    """Frames stand-in: fixed stage times, a queue wait when prefetching."""

    def __init__(self, prefetch):
        self.prefetch, self.closed = prefetch, False

    def close(self):
        self.closed = True

    def next(self):
        return (b"px", 2.0, 3.0, 0.5) if self.prefetch else (b"px", 2.0, 3.0)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_end_to_end_keeps_each_stage_and_leaves_the_first_iterations_out(prefetch):
    source = _Source(prefetch)
    pipeline = EndToEnd(source, 2, lambda p: p, list, lambda x: ("out", x), lambda o: [[1, 0.5]], prefetch,
                        PillowDecoder(), ["a.jpg"])
    for _ in range(5):
        total, outputs = pipeline.step()
        assert total >= 0 and outputs[0] == "out"
    args = torch_runner.parse_args(["--spec", "x.json", "--span", "end-to-end", "--images-from", "d"])
    report = pipeline.finish(2, args)
    assert source.closed == bool(prefetch)   # the prefetching thread is stopped
    assert report["span"] == "end-to-end" and report["total_ms"]["count"] == 3
    assert all(report["stage_ms"][name]["count"] == 3 for name in report["stages"])
    # decode and resize are summed over the batch's two images
    assert report["stage_ms"]["decode"]["median"] == 4.0 and report["stage_ms"]["resize"]["median"] == 6.0
    if prefetch:
        assert report["stages"] == list(image_inputs.PREFETCH_STAGES)
        assert report["in_total"] == ["queue_wait", "normalize", "copy", "forward", "post"]
        assert report["stage_ms"]["queue_wait"]["median"] == 1.0
    else:
        assert report["stages"] == report["in_total"] == list(image_inputs.STAGES)
    assert report["last_answer"] == [[1, 0.5]] and report["post"] == "classifier"


@pytest.mark.parametrize("argv, message", [
    (["--span", "end-to-end"], "give both or neither"),
    (["--images-from", "d"], "give both or neither"),
    (["--images", "5"], "are about the files"),
    (["--span", "end-to-end", "--images-from", "d", "--images", "5", "--iterations", "3"], "exclude each other"),
    (["--span", "end-to-end", "--images-from", "d", "--prefetch", "-1"], "at least 0"),
    (["--span", "end-to-end", "--images-from", "d", "--cuda-graph"], "eagerly"),
    (["--span", "end-to-end", "--images-from", "d", "--normalize", '{"order": "GRB"}'], "is not"),
    (["--span", "end-to-end", "--images-from", "d", "--post", "segmenter"], "invalid choice"),
])
def test_runner_refuses_what_end_to_end_cannot_run(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        torch_runner.parse_args(["--spec", "x.json"] + argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().out


def test_images_become_the_iterations_of_the_batch():
    args = torch_runner.parse_args(["--spec", "x.json", "--span", "end-to-end", "--images-from", "d", "--images", "9"])
    image_inputs.apply_images(args, 4)
    assert args.iterations == 3 and args.normalize == image_inputs.TORCHVISION_NORMALIZATION
