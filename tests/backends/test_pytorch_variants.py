"""The PyTorch runner's variants (edgeprof/onboard/torch_runner.py): --precision, --channels-last, --cuda-graph, --compile,
--mode train-step, and the model sources --torchvision and --torchscript.

Each variant runs on the CPU where it applies, in a subprocess as the board runs it, and is checked
against plain fp32 inference on the same weights and input; the CUDA-only ones (CUDA graphs, fp16 on
cuDNN, nvidia-smi's memory figures) run where torch sees a CUDA device and skip elsewhere.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import types
from array import array

import pytest

torch = pytest.importorskip("torch")

from edgeprof.onboard import bundle as runner_files  # noqa: E402
from edgeprof.onboard import caffe_layers, torch_models, torch_runner  # noqa: E402
from edgeprof.models.netspec import netspec  # noqa: E402
from edgeprof.backends.pytorch.runner import RUNNER_FILE  # noqa: E402
from edgeprof.models.prototxt import parse  # noqa: E402

from .board import board_folder  # noqa: E402

RUNNER = str(board_folder(runner_files()) / RUNNER_FILE)

# Every layer whose numerics or training behaviour a variant changes: a BatchNorm + Scale pair (kept in
# float32 when the rest is fp16/bf16), LRN (normalized in float32), MAX pooling with explicit padding
# (pad > kernel / 2: padded with the dtype's lowest value), Dropout (active in train-step).
NET = """
name: "variants"
input: "data"
input_shape { dim: 2 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "fc" inner_product_param { num_output: 6 } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

QUICK = ("--json", "--iterations", 3, "--warmup", 1, "--warmup-s", 0, "--threads", 2)


def spec_of(text):
    return netspec(parse(text, "net.prototxt"))


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec_of(NET)))
    return path


def run_runner(*args, check=True, env=None):
    result = subprocess.run([sys.executable, RUNNER, *map(str, args)], capture_output=True, text=True, env=env)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr  # one JSON object and nothing else on stdout
    return json.loads(lines[0]), result.returncode


def read_tensors(path):
    """name -> (shape, floats), read as a host without torch reads the file."""
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        data = f.read()
    out = {}
    for entry in header["tensors"]:
        values = array("f")
        values.frombytes(data[entry["offset"]:entry["offset"] + 4 * math.prod(entry["shape"])])
        out[entry["name"]] = (entry["shape"], list(values))
    return out


def rel_error(got, want):
    """max |got - want| / max |want|, over one tensor."""
    return max(abs(a - b) for a, b in zip(got, want)) / max(abs(b) for b in want)


def outputs_of(spec, tmp_path, tag, *variant, device="cpu"):
    path = tmp_path / f"{tag}.f32"
    out, _ = run_runner("--spec", spec, *QUICK, "--device", device, "--dump-output", path, "--dump-blobs", "fc",
                        *variant)
    return out, read_tensors(path)


# --- variant label and settings ------------------------------------------------------------------------

def test_variant_labels():
    def label(*argv):
        return torch_runner.variant(torch_runner.parse_args(["--spec", "x.json", *argv]))
    assert label() == "fp32"
    assert label("--precision", "fp16", "--channels-last", "--cuda-graph") == "fp16+channels_last+cuda_graph"
    assert label("--compile") == "fp32+compile"
    assert label("--precision", "bf16", "--compile=max-autotune", "--mode", "train-step") == \
        "bf16+compile_max_autotune+train_step"


def test_plain_run_reports_the_variant_settings(spec):
    out, _ = run_runner("--spec", spec, *QUICK)
    assert out["variant"] == "fp32" and out["compile_s"] is None and out["cuda_graph_capture_s"] is None
    assert out["loss"] is None
    settings = out["settings"]
    assert (settings["precision"], settings["channels_last"], settings["cuda_graph"], settings["compile"],
            settings["mode"], settings["source"]) == ("fp32", False, False, None, "inference", "netspec")
    assert out["memory"]["nvml_process_bytes"] is None and out["memory"]["nvml_device_used_bytes"] is None


# --- precision and memory format -----------------------------------------------------------------------

def test_convert_keeps_batch_norms_in_float32():
    net = caffe_layers.CaffeNet(spec_of(NET))
    net.init_random(0)
    torch_models.convert(net, torch.bfloat16, channels_last=True)
    conv1, bn1, sc1 = net.layers[:3]
    assert conv1.conv.weight.dtype == torch.bfloat16
    assert conv1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert bn1.folded == [sc1]
    assert {bn1.mean.dtype, bn1.var.dtype, sc1.weight.dtype, sc1.bias.dtype} == {torch.float32}
    # torch's own batch norms too, as apex's BN_convert_float does.
    seq = torch_models.convert(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)), torch.float16, False)
    assert seq[0].weight.dtype == torch.float16
    assert seq[1].weight.dtype == seq[1].running_var.dtype == torch.float32


def test_lrn_in_half_precision_does_not_overflow():
    layer = spec_of('input: "data"\ninput_shape { dim: 1 dim: 5 dim: 4 dim: 4 }\nlayer { name: "n" type: "LRN" '
                    'bottom: "data" top: "n" lrn_param { local_size: 5 alpha: 1e-4 beta: 0.75 } }')["layers"][0]
    lrn = caffe_layers.LRN(layer)
    # AlexNet-sized activations: x^2 is past fp16's 65504.
    x = torch.randn(1, 5, 4, 4, generator=torch.Generator().manual_seed(0)) * 1000
    want = lrn(x)
    for dtype in (torch.float16, torch.bfloat16):
        got = lrn(x.to(dtype))
        assert got.dtype == dtype and bool(torch.isfinite(got).all())
        assert torch.allclose(got.float(), want, rtol=1e-2, atol=1e-2)


def test_max_pooling_pads_with_the_dtypes_lowest_value():
    layer = spec_of('input: "data"\ninput_shape { dim: 1 dim: 1 dim: 11 dim: 11 }\nlayer { name: "p" type: '
                    '"Pooling" bottom: "data" top: "p" pooling_param { pool: MAX kernel_size: 2 stride: 4 } }')
    pool = caffe_layers.Pooling(layer["layers"][0])
    assert pool.explicit_pad is not None
    x = torch.randn(1, 1, 11, 11)
    got = pool(x.half())  # -FLT_MAX does not fit in fp16: torch refuses it as a pad value
    # Caffe's last window starts past the input: it keeps the start value, here fp16's lowest.
    assert bool((got[0, 0, 3, :] == torch.finfo(torch.float16).min).all())
    assert torch.equal(got[0, 0, :3, :3], pool(x)[0, 0, :3, :3].half())


@pytest.mark.parametrize("precision, tolerance", [("bf16", 5e-2), ("fp16", 1e-2)])
def test_reduced_precision_stays_close_to_fp32(spec, tmp_path, precision, tolerance):
    _, want = outputs_of(spec, tmp_path, "fp32")
    out, got = outputs_of(spec, tmp_path, precision, "--precision", precision)
    assert out["variant"] == precision and out["settings"]["precision"] == precision
    # Dumps are float32 whatever the precision; fc, before softmax, shows errors that probabilities hide.
    assert got["fc"][0] == want["fc"][0] == [2, 6]
    assert 0 < rel_error(got["fc"][1], want["fc"][1]) < tolerance
    assert rel_error(got["prob"][1], want["prob"][1]) < tolerance


def test_channels_last_gives_the_same_outputs(spec, tmp_path):
    _, want = outputs_of(spec, tmp_path, "plain")
    out, got = outputs_of(spec, tmp_path, "cl", "--channels-last", "--precision", "bf16")
    assert out["variant"] == "bf16+channels_last" and out["settings"]["channels_last"] is True
    assert rel_error(got["fc"][1], want["fc"][1]) < 5e-2


def test_operation_without_a_reduced_precision_kernel_is_unsupported(tmp_path):
    class AvgPool3d(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool3d(x.unsqueeze(1), 3, 1, 1).squeeze(1)

    try:
        AvgPool3d()(torch.randn(1, 3, 4, 4).half())
        pytest.skip(f"torch {torch.__version__} has avg_pool3d for fp16 on the CPU")
    except RuntimeError:
        pass
    path = tmp_path / "pool3d.pt"
    torch.jit.trace(AvgPool3d(), torch.randn(1, 3, 8, 8)).save(str(path))
    out, code = run_runner("--torchscript", path, "--input-shape", "3,8,8", "--precision", "fp16", *QUICK,
                           check=False)
    assert code == 1 and out["kind"] == "unsupported"
    assert "--precision fp16 on cpu" in out["error"] and "not implemented for 'Half'" in out["error"]


# --- CUDA graphs and torch.compile ---------------------------------------------------------------------

def test_cuda_graph_needs_cuda(spec):
    out, code = run_runner("--spec", spec, "--cuda-graph", *QUICK, check=False)
    assert code == 1 and out["kind"] == "unsupported" and "CUDA graphs need a CUDA device" in out["error"]


@pytest.mark.parametrize("argv, message", [
    (["--compile=reduce-overhead", "--cuda-graph"], "records CUDA graphs itself"),
    (["--compile=fastest"], "invalid choice"),
    (["--precision", "fp8"], "invalid choice"),
    (["--input-shape", "3,32,32"], "a netspec declares its inputs"),
])
def test_variant_usage_errors(spec, argv, message):
    out, code = run_runner("--spec", spec, "--json", *argv, check=False)
    assert code == 2 and out["kind"] == "usage" and message in out["error"]


def can_compile():
    return hasattr(torch, "compile") and (shutil.which("cc") or shutil.which("gcc")) is not None


@pytest.mark.skipif(not can_compile(), reason="no torch.compile, or no C compiler for Inductor's CPU code")
def test_compile_reports_its_cost_apart(spec, tmp_path):
    _, want = outputs_of(spec, tmp_path, "eager")
    out, got = outputs_of(spec, tmp_path, "compiled", "--compile")
    assert out["variant"] == "fp32+compile" and out["settings"]["compile"] == "default"
    # The compiling call is neither the first inference nor a timed one (medians and halves: a busy machine
    # may stall a single iteration, not the compile's order of magnitude).
    assert out["compile_s"] > 0 and out["first_inference_ms"] < out["compile_s"] * 1e3 / 2
    assert out["latency_ms"]["median"] < out["compile_s"] * 1e3 / 10
    assert rel_error(got["fc"][1], want["fc"][1]) < 1e-4


# --- train step ----------------------------------------------------------------------------------------

def test_dropout_drops_in_training_only():
    drop = caffe_layers.Dropout({"name": "d"})
    x = torch.ones(10000)
    assert drop.eval()(x) is x
    y = drop.train()(x)
    assert 0.45 < float((y == 0).float().mean()) < 0.55 and set(y.unique().tolist()) == {0.0, 2.0}


def test_train_step_updates_the_weights():
    net = caffe_layers.CaffeNet(spec_of(NET))
    net.init_random(0)
    net.calibrate([torch.randn(1, 3, 16, 16)])
    net.train()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    step = torch_runner.TrainStep(net, seed=3)
    x = torch.randn(2, 3, 16, 16)
    outputs = step(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 6)] and not outputs[0].requires_grad
    assert step.labels.shape == (2,) and step.loss.item() > 0
    changed = [name for name, p in net.named_parameters() if not torch.equal(p, before[name])]
    assert sorted(changed) == sorted(before)  # every learned blob moves
    group = step.optimizer.param_groups[0]
    assert (group["lr"], group["momentum"]) == (0.01, 0.9)
    assert len(step.optimizer.state) == len(before)  # a momentum buffer per blob
    # The BatchNorm keeps its stored statistics (use_global_stats is true unless the file says false).
    bn = net.layers[1]
    mean = bn.mean.clone()
    step(x)
    assert torch.equal(bn.mean, mean)


def test_train_step_loss_without_classes():
    net = torch.nn.Conv2d(3, 2, 3)
    step = torch_runner.TrainStep(torch_models.FlatOutputs(net), seed=0)
    x = torch.randn(1, 3, 5, 5)
    outputs = step(x)
    assert step.labels is None  # not [N, C]: the mean of squares
    assert step.loss.item() == pytest.approx(float((outputs[0] ** 2).mean()), rel=1e-6)


def test_train_step_run(spec):
    out, _ = run_runner("--spec", spec, "--mode", "train-step", "--json", "--iterations", 30, "--warmup", 1,
                        "--warmup-s", 0, "--threads", 2)
    assert out["variant"] == "fp32+train_step" and out["settings"]["mode"] == "train-step"
    assert out["settings"]["grad_mode"] == "enabled"
    assert out["iterations"] == 30 and out["latency_ms"]["median"] > 0 and out["throughput_ips"] > 0
    # Thirty SGD steps on one fixed batch and fixed labels: the loss falls.
    assert out["loss"]["last"] < out["loss"]["first"]


def test_train_step_needs_parameters(tmp_path):
    path = tmp_path / "relu.pt"
    torch.jit.script(torch.nn.ReLU()).save(str(path))
    out, code = run_runner("--torchscript", path, "--mode", "train-step", *QUICK, check=False)
    assert code == 1 and out["kind"] == "usage" and "no learned parameters" in out["error"]


# --- model sources -------------------------------------------------------------------------------------

class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 5)

    def features(self, x):
        return torch.relu(self.bn(self.conv(x))).mean((2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


class SmallPair(Small):
    def forward(self, x):
        features = self.features(x)
        return self.fc(features), features


@pytest.fixture
def scripted(tmp_path):
    def save(module, name="small.pt"):
        torch.manual_seed(0)
        path = tmp_path / name
        torch.jit.script(module.eval()).save(str(path))
        return path
    return save


def test_torchscript_source(scripted, tmp_path):
    model = Small()
    path = scripted(model)
    out, _ = run_runner("--torchscript", path, "--input-shape", "3,12,12", "--batch", 3, *QUICK,
                        "--save-input", tmp_path / "x.f32", "--dump-output", tmp_path / "y.f32")
    assert out["net"] == "small.pt" and out["outputs"] == ["output"] and out["batch"] == 3
    assert out["settings"]["source"] == "torchscript" and out["settings"]["input_shape"] == [3, 12, 12]
    assert out["weights"] == str(path) and out["calibration_s"] is None
    x = read_tensors(tmp_path / "x.f32")["input"]
    assert x[0] == [3, 3, 12, 12]
    with torch.no_grad():
        want = torch.jit.load(str(path))(torch.tensor(x[1]).reshape(x[0]))
    got = read_tensors(tmp_path / "y.f32")["output"]
    assert got[0] == [3, 5] and torch.allclose(torch.tensor(got[1]).reshape(3, 5), want, atol=1e-5)


def test_torchscript_tuple_outputs_and_variants(scripted, tmp_path):
    path = scripted(SmallPair())
    out, _ = run_runner("--torchscript", path, "--input-shape", "3,12,12", "--precision", "bf16",
                        "--channels-last", "--mode", "train-step", *QUICK, "--dump-output", tmp_path / "y.f32")
    assert out["outputs"] == ["output0", "output1"] and out["batch"] == 1
    assert out["variant"] == "bf16+channels_last+train_step" and out["loss"]["first"] > 0
    assert [shape for shape, _ in read_tensors(tmp_path / "y.f32").values()] == [[1, 5], [1, 4]]


@pytest.mark.parametrize("argv, kind, message", [
    (["--torchscript", "/nonexistent.pt"], "spec", "cannot load it"),
    (["--torchscript", "m.pt", "--spec", "x.json"], "usage", "not allowed with argument"),
    (["--torchscript", "m.pt", "--weights", "w.f32"], "usage", "--weights is about Caffe blobs"),
    (["--torchscript", "m.pt", "--input-shape", "3,x"], "usage", "not a shape like 3,224,224"),
    ([], "usage", "one of the arguments --spec --torchvision --torchscript is required"),
])
def test_source_errors(argv, kind, message):
    out, code = run_runner(*argv, "--json", check=False)
    assert out["kind"] == kind and message in out["error"] and code == (2 if kind == "usage" else 1)


@pytest.fixture
def torchvision():
    try:
        import torchvision
    except ImportError:
        pytest.fail("torchvision is missing: run tests/setup")
    return torchvision


def test_torchvision_missing_says_to_install_it(tmp_path):
    # A torchvision module that fails to import, ahead of the installed one on the runner's path.
    (tmp_path / "torchvision.py").write_text("raise ImportError('No module named torchvision')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out, code = run_runner("--torchvision", "resnet18", *QUICK, check=False, env=env)
    assert code == 1 and out["kind"] == "unavailable" and "install" in out["error"]


def test_torchvision_source(tmp_path, torchvision):
    args = ("--torchvision", "resnet18", "--input-shape", "3,64,64", "--batch", 2, *QUICK)
    out, _ = run_runner(*args, "--dump-output", tmp_path / "a.f32")
    assert out["net"] == "resnet18" and out["outputs"] == ["output"] and out["settings"]["source"] == "torchvision"
    assert out["detector"] is None and out["settings"]["input_shape"] == [3, 64, 64]  # a classifier
    assert out["weights"].startswith("random (seed 0, torchvision ")
    run_runner(*args, "--dump-output", tmp_path / "b.f32")
    assert read_tensors(tmp_path / "a.f32") == read_tensors(tmp_path / "b.f32")  # seeded
    out, code = run_runner("--torchvision", "resnet_nope", *QUICK, check=False)
    assert code == 1 and out["kind"] == "usage" and "resnet18" in out["error"]


# --- nvidia-smi's memory figures -----------------------------------------------------------------------

def test_nvml_memory_matches_this_process_and_device(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    # Two GPUs; this process ($PPID of the script: the runner calls it directly) on the second, another on both.
    fake.write_text("#!/bin/sh\n"
                    "case \"$1\" in\n"
                    "  --query-gpu=*) printf 'GPU-aaaa, 100\\nGPU-bbbb, 2048\\n' ;;\n"
                    "  --query-compute-apps=*) printf '1, GPU-aaaa, 50\\n1, GPU-bbbb, 60\\n'\n"
                    "                          printf '%s, GPU-bbbb, 1536\\n' \"$PPID\" ;;\n"
                    "esac\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(uuid="BBBB"))
    assert torch_runner.nvml_memory(0) == (1536 * 2 ** 20, 2048 * 2 ** 20)
    # Without a UUID (old torch) two GPUs cannot be told apart.
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace())
    assert torch_runner.nvml_memory(0) == (None, None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert torch_runner.nvml_memory(0) == (None, None)  # no nvidia-smi (a Jetson before JetPack 6)


# --- on a CUDA device ----------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@needs_cuda
def test_cuda_fp16_and_graphs(spec, tmp_path):
    _, want = outputs_of(spec, tmp_path, "fp32", device="cuda")
    for tag, variant in [("fp16", ["--precision", "fp16", "--channels-last"]),
                         ("graph", ["--precision", "fp16", "--channels-last", "--cuda-graph"]),
                         ("graph_host", ["--precision", "fp16", "--cuda-graph", "--span", "host"])]:
        out, got = outputs_of(spec, tmp_path, tag, *variant, device="cuda")
        assert rel_error(got["fc"][1], want["fc"][1]) < 1e-2, tag
        assert out["iterations"] == 3 and out["latency_ms"]["median"] > 0
        assert (out["cuda_graph_capture_s"] is not None) == ("--cuda-graph" in variant)
        if shutil.which("nvidia-smi"):
            assert out["memory"]["nvml_device_used_bytes"] > 0


@needs_cuda
def test_cuda_graph_train_step(spec):
    out, _ = run_runner("--spec", spec, "--device", "cuda", "--cuda-graph", "--mode", "train-step", "--json",
                        "--iterations", 30, "--warmup", 1, "--warmup-s", 0)
    assert out["variant"] == "fp32+cuda_graph+train_step" and out["loss"]["last"] < out["loss"]["first"]


@needs_cuda
@pytest.mark.skipif(not hasattr(torch, "compile"), reason="no torch.compile")
def test_cuda_compile_reduce_overhead_dumps_its_first_outputs(spec, tmp_path):
    _, want = outputs_of(spec, tmp_path, "eager", device="cuda")
    out, got = outputs_of(spec, tmp_path, "compiled", "--compile=reduce-overhead", device="cuda")
    assert out["compile_s"] > 0 and rel_error(got["fc"][1], want["fc"][1]) < 1e-4
