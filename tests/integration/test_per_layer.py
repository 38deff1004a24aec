"""measure --per-layer and `edgeprof layers` on the lab: AlexNet's layers in caffe time and PyTorch 1.7 on sim-tx2
(Debian's caffe, Python 3.9) and in PyTorch 2.x and ONNX Runtime on sim-desktop, in one table under the prototxt's
names: Caffe's per-layer forward times, the PyTorch build's modules, ONNX Runtime's nodes grouped by layers (its
Conv fused with the ReLU after it), and the two PyTorch results' ratios."""
import json

from ..conftest import json_lines


def test_one_table_across_caffe_pytorch_and_onnxruntime(edgeprof_cli):
    results = []
    for device, backends in (("sim-tx2", "caffe,pytorch"), ("sim-desktop", "pytorch,onnxruntime")):
        proc = edgeprof_cli("measure", "--device", device, "--backend", backends, "alexnet", "-n", "10",
                            "--per-layer", "--wait", "600", "--json", check=None)
        results += json_lines(proc.stdout)
    assert [r["status"] for r in results] == ["ok"] * 4, [r["error"] for r in results]
    assert results[1]["pytorch"]["per_layer"]["timer"] == "perf_counter"
    assert results[3]["onnxruntime"]["per_layer"]["nodes"]
    proc = edgeprof_cli("layers", *[r["id"] for r in results], "--json", check=0)
    table = json.loads(proc.stdout)
    assert [c["backend"] for c in table["columns"]] == ["caffe", "pytorch", "pytorch", "onnxruntime"]
    assert table["columns"][2]["against"] == 1 and table["columns"][3]["against"] is None
    rows = {row["layer"]: row for row in table["rows"]}
    conv1 = rows["conv1"]["cells"]
    assert rows["conv1"]["macs"] == 105_415_200
    assert all(cell["ms"] > 0 and cell["macs_per_ms"] > 0 for cell in conv1)
    # ONNX Runtime runs conv1 and relu1 as one kernel: its time is on conv1's row, relu1's row points to it.
    assert conv1[3]["group"] == ["conv1", "relu1"] and rows["relu1"]["cells"][3]["in_group"] == "conv1"
    assert conv1[2]["ratio"] == conv1[2]["ms"] / conv1[1]["ms"]
    for column in table["columns"]:
        assert abs(sum(r["cells"][table["columns"].index(column)]["share"] or 0 for r in table["rows"]) - 1) < 1e-6
    text = edgeprof_cli("layers", *[r["id"] for r in results], check=0).stdout
    assert "caffe time's per-layer forward timers (CPU, wall clock)" in text and "MMAC/ms" in text
