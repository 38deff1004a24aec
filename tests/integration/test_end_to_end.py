"""--span end-to-end on the lab (issue 19, item 2): a folder of generated JPEGs through AlexNet in PyTorch on
sim-desktop, each stage reported and the total within 10 % of the stages' sum; --prefetch's queue over a dataset
already on the board; ONNX Runtime; a Python with neither Pillow nor OpenCV, one with OpenCV alone, a video through
OpenCV and refused without it (real environments: sim-desktop's packages linked into a venv but those); PyTorch 1.7
with Debian's Pillow on sim-tx2; and caffe time's refusal."""
import os
import subprocess

import pytest
from PIL import Image

from ..conftest import board_entry, json_lines, write_inventory

pytestmark = pytest.mark.lab

STAGES = ["decode", "resize", "normalize", "copy", "forward", "post"]


@pytest.fixture
def jpegs(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        # Camera-like sizes, larger than the net's input, so resize has work to do.
        Image.effect_noise((640 + 32 * i, 480), 40 + 10 * i).convert("RGB").save(folder / f"frame{i}.jpg", quality=90)
    return folder


def measure(edgeprof_cli, *args, inventory=None):
    extra = {} if inventory is None else {"inventory": inventory}
    proc = edgeprof_cli("measure", "--backend", "pytorch", "alexnet", "--wait", "600", "--json", *args, **extra)
    [result] = json_lines(proc.stdout)
    return result


def within(total_ms, parts_ms, tolerance=0.10):
    return abs(sum(parts_ms) - total_ms) <= tolerance * total_ms


def test_each_stage_is_reported_and_the_total_is_their_sum(edgeprof_cli, jpegs):
    result = measure(edgeprof_cli, "--device", "sim-desktop", "--input", jpegs, "--iterations", "15")
    assert result["status"] == "ok", result["error"]
    e2e = result["pytorch"]["end_to_end"]
    assert result["span"] == e2e["span"] == "end-to-end"
    assert e2e["stages"] == e2e["in_total"] == STAGES
    assert all(e2e["stage_ms"][s]["count"] == 15 == e2e["total_ms"]["count"] for s in STAGES)
    assert e2e["decoder"]["name"] == "pillow" and e2e["files"] == 4
    assert e2e["normalization"]["source"].startswith("torchvision defaults") and e2e["post"] == "classifier"
    assert len(e2e["last_answer"]) == 1 and len(e2e["last_answer"][0]) == 5
    # The latency is the total per image; the stages' medians add up to it within 10 % (the done-when of issue 19),
    # and their means to the total's mean, which is additive but for the timers' own cost.
    assert result["latency_ms"]["median"] == pytest.approx(e2e["total_ms"]["median"])
    assert within(e2e["total_ms"]["median"], [e2e["stage_ms"][s]["median"] for s in STAGES]), e2e
    assert within(e2e["total_ms"]["mean"], [e2e["stage_ms"][s]["mean"] for s in STAGES], 0.02), e2e
    assert result["settings"]["input"] == str(jpegs)


def test_prefetch_over_a_dataset_on_the_board(edgeprof_cli, jpegs):
    # sim-desktop shares this machine's file system: the folder is already "on the board".
    result = measure(edgeprof_cli, "--device", "sim-desktop", "--input", f"board:{jpegs}", "--images", "12",
                     "--prefetch", "4")
    assert result["status"] == "ok", result["error"]
    e2e = result["pytorch"]["end_to_end"]
    assert e2e["prefetch"] == 4 and "queue_wait" in e2e["stages"]
    # decode and resize ran in the thread: outside the total, which waits for the queue instead.
    assert e2e["in_total"] == ["queue_wait", "normalize", "copy", "forward", "post"]
    assert result["iterations"] == 12 and result["throughput_ips"] > 0
    assert within(e2e["total_ms"]["mean"], [e2e["stage_ms"][s]["mean"] for s in e2e["in_total"]], 0.02), e2e
    assert result["settings"]["images"] == 12 and result["settings"]["prefetch"] == 4


def python_without(tmp_path, lab_inventory, prefixes):
    """A Python environment for sim-desktop without the packages whose names start with `prefixes`: a venv of
    sim-desktop's interpreter whose site-packages links every package of sim-desktop's own but those."""
    python = board_entry(lab_inventory, "sim-desktop")["python"]
    venv = tmp_path / ("without-" + "-".join(prefixes))
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    theirs = subprocess.run([python, "-c", where], capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([str(venv / "bin/python"), "-c", where], capture_output=True, text=True,
                          check=True).stdout.strip()
    for name in os.listdir(theirs):
        if not name.lower().startswith(prefixes):
            os.symlink(os.path.join(theirs, name), os.path.join(ours, name))
    return venv / "bin/python"


def on_desktop_with(tmp_path, lab_inventory, python):
    return write_inventory(tmp_path / "inv.toml", **{"sim-desktop": {**board_entry(lab_inventory, "sim-desktop"),
                                                                      "python": str(python)}})


@pytest.fixture
def python_without_decoders(tmp_path, lab_inventory):
    """torch but neither Pillow nor OpenCV, as a board with NVIDIA's torch wheel and nothing else has."""
    python = python_without(tmp_path, lab_inventory, ("pil", "pillow", "cv2", "opencv"))
    check = subprocess.run([str(python), "-c", "import torch\nfor m in ('PIL', 'cv2'):\n try:\n  __import__(m)\n"
                            " except ImportError:\n  print('no', m)"], capture_output=True, text=True)
    assert check.stdout.split("\n")[:2] == ["no PIL", "no cv2"], check.stderr
    return python


def test_a_board_without_decoders_is_told_what_to_install(edgeprof_cli, jpegs, lab_inventory, tmp_path,
                                                          python_without_decoders):
    result = measure(edgeprof_cli, "--device", "sim-desktop", "--input", jpegs, "--iterations", "3",
                     inventory=on_desktop_with(tmp_path, lab_inventory, python_without_decoders))
    assert result["status"] == "failed"
    assert "needs Pillow (PIL) or OpenCV (cv2), and this Python imports neither" in result["error"]
    assert "pip install pillow" in result["error"] and "(unavailable)" in result["error"]


def test_old_torch_with_debians_pillow_on_sim_tx2(edgeprof_cli, jpegs):
    result = measure(edgeprof_cli, "--device", "sim-tx2", "--input", jpegs, "--iterations", "3")
    assert result["status"] == "ok", result["error"]
    e2e = result["pytorch"]["end_to_end"]
    assert result["state"]["versions"]["torch"].startswith("1.")
    assert e2e["decoder"]["name"] == "pillow" and e2e["total_ms"]["count"] == 3


def test_caffe_time_refuses_end_to_end(edgeprof_cli, jpegs):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--input", jpegs, "--wait", "600", "--json")
    [result] = json_lines(proc.stdout)
    assert result["status"] == "failed"
    assert result["error"].startswith("--span end-to-end: caffe time cannot take real images")


def test_onnxruntime_end_to_end(edgeprof_cli, jpegs):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "onnxruntime", "alexnet", "--input", jpegs,
                        "--iterations", "15", "--prefetch", "2", "--wait", "600", "--json")
    [result] = json_lines(proc.stdout)
    assert result["status"] == "ok", result["error"]
    e2e = result["onnxruntime"]["end_to_end"]
    assert result["span"] == "end-to-end" and e2e["decoder"]["name"] == "pillow"
    assert e2e["in_total"] == ["queue_wait", "normalize", "copy", "forward", "post"]
    assert all(e2e["stage_ms"][s]["count"] == 15 for s in e2e["stages"])
    assert len(e2e["last_answer"][0]) == 5
    # Means add up (the stages partition each iteration); medians need not: ONNX Runtime's short stages with long
    # tails put the medians' sum 9 % under the total's median in a contended run.
    assert within(e2e["total_ms"]["mean"], [e2e["stage_ms"][s]["mean"] for s in e2e["in_total"]], 0.02), e2e


def test_opencv_decodes_where_pillow_is_missing(edgeprof_cli, jpegs, lab_inventory, tmp_path):
    python = python_without(tmp_path, lab_inventory, ("pil", "pillow"))
    result = measure(edgeprof_cli, "--device", "sim-desktop", "--input", jpegs, "--iterations", "3",
                     inventory=on_desktop_with(tmp_path, lab_inventory, python))
    assert result["status"] == "ok", result["error"]
    assert result["pytorch"]["end_to_end"]["decoder"]["name"] == "opencv"


def test_a_video_goes_through_opencv_frame_by_frame(edgeprof_cli, lab_inventory, tmp_path):
    # Written with sim-desktop's own OpenCV (MJPG in AVI: the codec every OpenCV build has), 12 frames.
    clip = tmp_path / "clip.avi"
    subprocess.run([board_entry(lab_inventory, "sim-desktop")["python"], "-c",
                    "import sys, cv2, numpy as np\n"
                    "w = cv2.VideoWriter(sys.argv[1], cv2.VideoWriter_fourcc(*'MJPG'), 10, (320, 240))\n"
                    "for i in range(12):\n    w.write(np.full((240, 320, 3), 20 * i, np.uint8))\n"
                    "w.release()", str(clip)], check=True)
    result = measure(edgeprof_cli, "--device", "sim-desktop", "--input", clip, "--images", "30")
    assert result["status"] == "ok", result["error"]
    e2e = result["pytorch"]["end_to_end"]
    assert e2e["decoder"]["name"] == "opencv" and e2e["video"] is True
    # 30 images from a 12-frame clip: the frames wrapped around, each one an iteration.
    assert result["iterations"] == 30 == e2e["total_ms"]["count"]


def test_a_video_needs_opencv(edgeprof_cli, lab_inventory, tmp_path, python_without_decoders):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 64)   # never opened: the decoder is chosen first
    result = measure(edgeprof_cli, "--device", "sim-desktop", "--input", clip, "--iterations", "3",
                     inventory=on_desktop_with(tmp_path, lab_inventory, python_without_decoders))
    assert result["status"] == "failed" and "decoding video needs OpenCV (cv2)" in result["error"]
