"""measure --per-layer and `edgeprof layers` on the lab: AlexNet's layers in caffe time, PyTorch 1.7 and TensorRT
(the trtexec stand-in: its --exportProfile file in the real format, its times modelled) on sim-tx2 (Debian's caffe,
Python 3.9) and in PyTorch 2.x and ONNX Runtime on sim-desktop, in one table under the prototxt's names: Caffe's
per-layer forward times, the PyTorch build's modules, ONNX Runtime's nodes and TensorRT's engine layers grouped by
the layers they fuse (conv1 with relu1), and the two PyTorch results' ratios."""
import json

from ..conftest import json_lines


def test_one_table_across_caffe_pytorch_and_onnxruntime(edgeprof_cli):
    results = []
    for device, backends in (("sim-tx2", "caffe,pytorch,tensorrt"), ("sim-desktop", "pytorch,onnxruntime")):
        proc = edgeprof_cli("measure", "--device", device, "--backend", backends, "alexnet", "-n", "10",
                            "--per-layer", "--wait", "600", "--json", check=None)
        results += json_lines(proc.stdout)
    assert [r["status"] for r in results] == ["ok"] * 5, [r["error"] for r in results]
    assert results[1]["pytorch"]["per_layer"]["timer"] == "perf_counter"
    # TensorRT's engine layers carry the ONNX node names edgeprof gave them.
    assert results[2]["tensorrt"]["layers"][0]["name"] == "conv1/conv/Conv + relu1/Relu"
    assert results[4]["onnxruntime"]["per_layer"]["nodes"]
    proc = edgeprof_cli("layers", *[r["id"] for r in results], "--json", check=0)
    table = json.loads(proc.stdout)
    assert [c["backend"] for c in table["columns"]] == ["caffe", "pytorch", "tensorrt", "pytorch", "onnxruntime"]
    assert table["columns"][3]["against"] == 1 and table["columns"][4]["against"] is None
    rows = {row["layer"]: row for row in table["rows"]}
    conv1 = rows["conv1"]["cells"]
    assert rows["conv1"]["macs"] == 105_415_200
    assert all(cell["ms"] > 0 and cell["macs_per_ms"] > 0 for cell in conv1)
    # ONNX Runtime and TensorRT run conv1 and relu1 as one kernel: its time is on conv1's row, relu1's points to it.
    for column in (2, 4):
        assert conv1[column]["group"] == ["conv1", "relu1"] and rows["relu1"]["cells"][column]["in_group"] == "conv1"
    assert conv1[3]["ratio"] == conv1[3]["ms"] / conv1[1]["ms"]
    for column in table["columns"]:
        assert abs(sum(r["cells"][table["columns"].index(column)]["share"] or 0 for r in table["rows"]) - 1) < 1e-6
    text = edgeprof_cli("layers", *[r["id"] for r in results], check=0).stdout
    assert "caffe time's per-layer forward timers (CPU, wall clock)" in text and "│ conv1 " in text
