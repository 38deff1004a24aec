"""`edgeprof compare --device D MODEL...`: measure the backbones, then compare them in one table."""
import json


def test_compare_measures_the_models_then_compares_backends(edgeprof_cli):
    proc = edgeprof_cli("compare", "--device", "sim-tx2", "alexnet", "googlenet", "--backend", "caffe,pytorch",
                        "--iterations", "15", "--format", "json", check=0)
    doc = json.loads(proc.stdout)
    text = json.dumps(doc)
    for expected in ("alexnet", "googlenet", "caffe", "pytorch"):
        assert expected in text
    # Stored as they were measured: `results list` sees all four.
    listed = edgeprof_cli("results", "list", "--json", check=0).stdout.splitlines()
    assert len([line for line in listed if line.startswith("{")]) == 4
    assert "sim-tx2: caffe alexnet batch 1" in proc.stderr  # progress went to stderr, the document to stdout


def test_compare_needs_a_device_to_measure(edgeprof_cli):
    proc = edgeprof_cli("compare", "alexnet", check=2)
    assert "name the device(s) with --device" in proc.stderr
