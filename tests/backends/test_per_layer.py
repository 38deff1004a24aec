"""measure --per-layer without a board: the PyTorch runner's per-layer pass (onboard/layer_timing.py) and the ONNX
Runtime runner's profiled nodes, run as the board runs them on a small net with a folded BatchNorm + Scale, an LRN
and a fused Conv + ReLU; the export's node names and their layers (onnx_export.name_nodes_by_layer); the nodes
grouped by layers (models/onnx_layers.py); the host's check of the reports; the options on the command lines."""
import json

import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgeprof.backends import Options  # noqa: E402
from edgeprof.backends.base import check_report  # noqa: E402
from edgeprof.backends.onnxruntime.runner import runner_argv as ort_argv  # noqa: E402
from edgeprof.backends.pytorch.runner import runner_argv as torch_argv  # noqa: E402
from edgeprof.errors import RunnerFailed  # noqa: E402
from edgeprof.models.onnx_export import NODE_LAYERS_KEY  # noqa: E402
from edgeprof.models.onnx_layers import OTHER, LayerNames, group_nodes  # noqa: E402

from .test_onnxruntime_runner import PYTORCH_RUNNER, QUICK, RUNNER, run_runner, small, spec_file  # noqa: E402,F401



@pytest.fixture
def net(request):
    """test_onnxruntime_runner's small net, (source, its ONNX export), made once for both modules."""
    return request.getfixturevalue("small")


LAYERS = ["conv1", "bn1", "relu1", "norm1", "pool1", "pool2", "cat", "fc", "prob"]


def test_pytorch_runner_times_each_caffe_layer_in_a_pass_of_its_own(net, tmp_path):
    out, _ = run_runner(PYTORCH_RUNNER, "--spec", spec_file(net[0], tmp_path), "--per-layer", *QUICK)
    check_report(out, "the PyTorch runner")
    per_layer = out["per_layer"]
    assert (per_layer["timer"], per_layer["iterations"]) == ("perf_counter", 20)
    assert [one["name"] for one in per_layer["layers"]] == LAYERS
    # The BatchNorm runs with its Scale folded in: one module, one figure covering both layers.
    assert per_layer["layers"][1]["covers"] == ["bn1", "sc1"]
    assert all(one["ms"] > 0 for one in per_layer["layers"])
    # The pass's forward holds every layer's time, and the hooks around them.
    assert per_layer["forward_ms"] >= sum(one["ms"] for one in per_layer["layers"]) * 0.5
    # Without --per-layer: no pass, no key.
    plain, _ = run_runner(PYTORCH_RUNNER, "--spec", spec_file(net[0], tmp_path), *QUICK)
    assert plain["per_layer"] is None


@pytest.mark.parametrize("flags", [["--torchvision", "resnet18"], ["--spec", "x.json", "--compile"],
                                   ["--spec", "x.json", "--mode", "train-step"]])
def test_pytorch_runner_refuses_per_layer_where_there_are_no_caffe_layers_to_hook(flags):
    out, status = run_runner(PYTORCH_RUNNER, *flags, "--per-layer", "--json", check=False)
    assert status == 2 and out["kind"] == "usage"
    assert out["error"].startswith("--per-layer times the modules of a Caffe net (--spec) in eager inference")


def test_export_names_nodes_after_their_layers(net):
    model = onnx.load(net[1].path)
    names = [node.name for node in model.graph.node]
    assert "conv1/conv/Conv" in names and "fc/Gemm" in names and not any(n.startswith("/layers.") for n in names)
    covered = json.loads(next(p.value for p in model.metadata_props if p.key == NODE_LAYERS_KEY))
    bn = next(n for n in names if n.startswith("bn1/"))
    assert covered[bn] == ["bn1", "sc1"] and covered["conv1/conv/Conv"] == ["conv1"]


def test_onnxruntime_nodes_are_grouped_by_the_layers_they_compute(net):
    out, _ = run_runner(RUNNER, "--model", net[1].path, "--per-layer", *QUICK)
    check_report(out, "the ONNX Runtime runner")
    profile = out["per_layer"]
    assert profile["iterations"] == 20 and profile["forward_ms"] > 0
    assert all(node["provider"] == "CPUExecutionProvider" for node in profile["nodes"])
    groups = group_nodes(profile["nodes"], LayerNames.of_file(net[1].path))
    covered = [layer for group in groups for layer in group["covers"]]
    # Every layer is somewhere, once; ORT fuses the BatchNorm into the Conv and the ReLU into it too.
    assert sorted(covered) == sorted(LAYERS[:1] + ["bn1", "sc1"] + LAYERS[2:])
    conv = next(group for group in groups if "conv1" in group["covers"])
    assert conv["covers"][0] == "conv1" and "relu1" in conv["covers"]
    assert sum(g["ms"] for g in groups) == pytest.approx(sum(n["ms"] for n in profile["nodes"] if n["ms"]))
    assert all(group["name"] == OTHER for group in groups if not group["covers"])


def test_layer_names_read_what_onnx_runtime_renames(net):
    names = LayerNames.of_file(net[1].path)
    conv = names.nodes["conv1/conv/Conv"]
    relu_out = next(n for n in onnx.load(net[1].path).graph.node if n.name.startswith("relu1/")).output[0]
    # The NCHWc Conv named after the ReLU's output tensor covers the Conv, the folded norm and the ReLU.
    assert names.covers(relu_out + "_nchwc", "Conv")[0] == "conv1"
    assert names.covers("fused fc/Gemm", "FusedGemm") == ["fc"]       # no activation reads fc's output
    assert names.covers("ReorderOutput_token_3", "ReorderOutput") == []
    assert names.covers(conv.name, "Conv") == ["conv1"]


@pytest.mark.parametrize("entries", [[{"name": "conv1", "ms": "fast"}], [{"ms": 1.0}], "conv1", [None]])
def test_a_malformed_per_layer_report_is_refused(net, tmp_path, entries):
    out, _ = run_runner(PYTORCH_RUNNER, "--spec", spec_file(net[0], tmp_path), "--iterations", 2, "--json")
    out["per_layer"] = {"layers": entries}
    with pytest.raises(RunnerFailed, match="`per_layer` is not a list of layers"):
        check_report(out, "the PyTorch runner")


def test_per_layer_reaches_both_runners_command_lines():
    options = Options(per_layer=True)
    assert torch_argv("python3", "r.py", ["--spec", "s.json"], "cpu", 1, options)[-1] == "--per-layer"
    # What has no Caffe modules to hook eagerly is measured without (--best's variants, torchvision models).
    for unhooked in (Options(per_layer=True, cuda_graph=True), Options(per_layer=True, compile="default")):
        assert "--per-layer" not in torch_argv("python3", "r.py", ["--spec", "s.json"], "cuda", 1, unhooked)
    assert "--per-layer" not in torch_argv("python3", "r.py", ["--torchvision", "resnet18"], "cpu", 1, options)
    facts = {"python": "python3", "runner": "r.py"}
    assert "--per-layer" in ort_argv(facts, "m.onnx", ["CPUExecutionProvider"], options)
    assert "--per-layer" not in ort_argv(facts, "m.onnx", ["CPUExecutionProvider"], Options())
