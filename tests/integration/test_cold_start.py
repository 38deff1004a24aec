"""Cold-start columns on the lab (reporting.metrics): PyTorch and ONNX Runtime on sim-desktop report their
load in a fresh process, the first inference and the memory after each, and compare shows them with factors."""
import json


def test_cold_start_columns_for_pytorch_and_onnxruntime(edgeprof_cli):
    edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch,onnxruntime", "alexnet", "--iterations",
                 "6", "--wait", "600", "--json", check=0, timeout=900)
    doc = json.loads(edgeprof_cli("compare", "--metric", "load,first,load-memory,first-memory,latency", "--format",
                                  "json", check=0).stdout)
    assert doc["metrics"] == ["load", "first", "load-memory", "first-memory", "latency"]
    [row] = doc["rows"]
    torch, ort = row["cells"]
    for cell in (torch, ort):
        figures = cell["figures"]
        assert figures["load"]["value"] > 0 and figures["first"]["value"] > 0
        assert figures["load-memory"]["what"] == figures["first-memory"]["what"] == "process RSS"
        assert figures["first-memory"]["value"] > 10e6
    assert ort["figures"]["load"]["factor"] == ort["figures"]["load"]["value"] / torch["figures"]["load"]["value"]
    table = edgeprof_cli("compare", "--metric", "load,first", check=0).stdout
    assert "load in a fresh process" in table and "first inference after load" in table


def test_caffe_cold_start_through_pycaffe_on_sim_tx2(edgeprof_cli):
    """Debian's python3-caffe on sim-tx2: the net built in a fresh process, its first forward, the memory after
    each, and per-iteration forward times, beside caffe time's mean."""
    edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "pycaffe,caffe", "alexnet", "--iterations", "6",
                 "--clocks", "leave", "--wait", "600", "--json", check=0, timeout=900)
    doc = json.loads(edgeprof_cli("compare", "--metric", "load,first,load-memory,latency", "--format", "json",
                                  check=0).stdout)
    [row] = doc["rows"]
    pycaffe, caffe = row["cells"]
    assert pycaffe["column"] == "sim-tx2 pycaffe (cpu)" and pycaffe["span"] == "pycaffe_forward"
    assert pycaffe["statistic"] == "median" and pycaffe["samples"] == 6
    assert pycaffe["figures"]["load"]["value"] > 0 and pycaffe["figures"]["first"]["value"] > 0
    assert pycaffe["figures"]["load-memory"]["value"] > 10e6
    # caffe time splits no cold start.
    assert caffe["figures"]["load"] is None and caffe["figures"]["first"] is None
