"""A detector from a user's deploy file on the lab, end to end (issue 15): chuanqi305's MobileNet-SSD
(tests/models/corpus) measured in PyTorch on sim-tx2 (torch 1.7, Debian's Caffe beside it) and in PyTorch and
ONNX Runtime on sim-desktop; ONNX Runtime's detections are the PyTorch build's for the same weights and input;
`caffe time` on Debian's Caffe, which lacks SSD's layers, says so. That the detections are SSD's is
tests/models/test_fork_layers.py's part (a reference written from weiliu89/caffe's sources)."""
from pathlib import Path

import pytest

from edgeprof.check import check_onnxruntime

from ..conftest import json_lines

pytest.importorskip("torch")
pytest.importorskip("onnx")

SSD = str(Path(__file__).parent.parent / "models" / "corpus" / "mobilenet_ssd_chuanqi305.prototxt")


def measure(edgeprof_cli, device: str, backends: str) -> list[dict]:
    proc = edgeprof_cli("measure", "--device", device, "--backend", backends, SSD, "--iterations", "6",
                        "--wait", "600", "--json", timeout=1200, env={"XDG_CACHE_HOME": str(edgeprof_cli.home / ".cache")})
    return json_lines(proc.stdout)


def test_mobilenet_ssd_runs_in_pytorch_and_onnx_runtime_on_the_lab(edgeprof_cli):
    results = measure(edgeprof_cli, "sim-desktop", "pytorch,onnxruntime") + measure(edgeprof_cli, "sim-tx2", "pytorch")
    assert [(r["device"], r["backend"], r["status"]) for r in results] == [
        ("sim-desktop", "pytorch", "ok"), ("sim-desktop", "onnxruntime", "ok"), ("sim-tx2", "pytorch", "ok")]
    for r in results:
        assert r["model_info"]["input_shapes"] == {"data": [1, 3, 300, 300]} and r["latency_ms"]["median"] > 0


def test_onnx_runtime_detections_are_the_pytorch_build_s(lab_inventory):
    report = check_onnxruntime("sim-desktop", SSD, inventory=str(lab_inventory))
    assert list(report.shapes) == ["detection_out"]
    shape = report.shapes["detection_out"]
    assert shape[:2] == [1, 1] and shape[3] == 7 and shape[2] > 1 and report.passed


def test_debian_caffe_says_it_lacks_ssd_s_layers(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "caffe", SSD, "--iterations", "2",
                        "--json", check=1)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "failed" and result["error"].startswith(
        "this Caffe lacks SSD's layers: the net uses Permute (first at line 2362), PriorBox (first at line 2429), DetectionOutput (first at line 3080)")
