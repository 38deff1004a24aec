"""torchvision detectors measured on sim-desktop (torch 2.13 and torchvision 0.28 in its venv, random weights):
SSDlite and Faster R-CNN in PyTorch at batch 1 with few iterations (a Faster R-CNN forward takes seconds on the
lab's CPU), SSDlite through the ONNX export in ONNX Runtime, and SSDlite end to end over two generated JPEGs."""
import pytest
from PIL import Image

from ..conftest import json_lines

pytestmark = pytest.mark.lab


def measure(edgeprof_cli, model, *args):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", f"torchvision:{model}", "--wait", "600", "--json",
                        *args, check=0)
    return json_lines(proc.stdout)


def test_ssdlite_in_pytorch_reports_its_span_and_detections(edgeprof_cli):
    [r] = measure(edgeprof_cli, "ssdlite320_mobilenet_v3_large", "--backend", "pytorch", "--iterations", "6")
    assert r["status"] == "ok" and r["model_info"]["kind"] == "torchvision" and r["span"] == "compute"
    assert r["state"]["versions"]["torchvision"].startswith("0.28.0")
    assert r["settings"]["input_shape"] == [3, 480, 640]
    detector = r["pytorch"]["detector"]
    assert detector["input"] == "a list of 1 image(s) of 3x480x640" and "NMS" in detector["span"]
    # Score threshold 0 instead of SSDlite's 0.001: NMS keeps its cap of 300 boxes on random weights.
    assert (detector["score_threshold"], detector["torchvision_score_threshold"]) == (0.0, 0.001)
    assert detector["detections"] == [detector["detections_per_image"]] == [300]
    assert r["pytorch"]["weights"].startswith("random (seed 0, torchvision 0.28.0")
    # 6 iterations: the fewest that bound the median.
    assert r["latency_ms"]["median"] > 0 and r["iterations"] == 6


def test_faster_rcnn_in_pytorch_post_processes_real_boxes(edgeprof_cli):
    [r] = measure(edgeprof_cli, "fasterrcnn_resnet50_fpn", "--backend", "pytorch", "--iterations", "2")
    assert r["status"] == "ok" and r["iterations"] == 2
    detector = r["pytorch"]["detector"]
    # Faster R-CNN's default 0.05 would leave random weights (scores near 1/91) no box to post-process.
    assert (detector["score_threshold"], detector["torchvision_score_threshold"]) == (0.0, 0.05)
    assert detector["detections"] == [detector["detections_per_image"]] == [100]
    assert r["latency_ms"]["min"] > 0  # two iterations bound no median


def test_ssdlite_exported_to_onnx_runs_in_onnx_runtime(edgeprof_cli):
    [r] = measure(edgeprof_cli, "ssdlite320_mobilenet_v3_large", "--backend", "onnxruntime", "--iterations", "6")
    assert r["status"] == "ok" and r["latency_ms"]["median"] > 0


def test_ssdlite_end_to_end_over_real_images(edgeprof_cli, tmp_path):
    for i in range(2):
        Image.effect_noise((800, 600), 40 + 10 * i).convert("RGB").save(tmp_path / f"frame{i}.jpg", quality=90)
    [r] = measure(edgeprof_cli, "ssdlite320_mobilenet_v3_large", "--backend", "pytorch", "--input", tmp_path,
                  "--iterations", "6")
    assert r["status"] == "ok", r["error"]
    e2e = r["pytorch"]["end_to_end"]
    assert e2e["post"] == "detector" and e2e["normalization"]["source"].startswith("torchvision detectors")
    # The answer: image 0's boxes, scores and labels, copied to the host after the forward's own NMS.
    assert e2e["last_answer"] == [[300, 4], [300], [300]]
    assert r["pytorch"]["detector"]["detections"] == [300]
