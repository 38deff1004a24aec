"""Tests of the board-side PyTorch runner (edgeprof/onboard/torch_runner.py, caffe_layers.py) without Caffe.

The layers Caffe's own loops define most subtly (pooling's sizes, padding and AVE divisor; LRN) are
compared with direct transcriptions of Caffe's CPU loops (pooling_layer.cpp, lrn_layer.cpp); the whole
nets are compared with pycaffe itself in test_pytorch_equivalence.py. The command line is run as the
board runs it, in a subprocess.
"""
import json
import math
import shutil
import struct
import subprocess
import sys
import zipfile
from array import array
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from edgeprof.onboard import bundle as runner_files  # noqa: E402
from edgeprof.onboard import caffe_layers, tensors  # noqa: E402
from edgeprof.models.netspec import netspec  # noqa: E402
from edgeprof.backends.pytorch.runner import RUNNER_FILE  # noqa: E402
from edgeprof.models.prototxt import parse  # noqa: E402

from .board import board_folder  # noqa: E402

RUNNER = board_folder(runner_files()) / RUNNER_FILE
PYTHON36 = Path("/root/.pyenv/versions/3.6.15/bin/python")

SMALL_NET = """
name: "small"
input: "data"
input_shape { dim: 2 dim: 3 dim: 12 dim: 12 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "sc" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def spec_of(text: str) -> dict:
    return netspec(parse(text, "net.prototxt"))


def one_layer(layer: str, shape=(2, 3, 11, 13)) -> dict:
    dims = " ".join(f"dim: {d}" for d in shape)
    return spec_of(f'input: "data"\ninput_shape {{ {dims} }}\n{layer}')["layers"][-1]


def read_tensor_file(path) -> dict:
    """The stdlib reader a host without numpy or torch uses: name -> (shape, array of floats)."""
    with open(path, "rb") as f:
        line = f.readline()
        data = f.read()
    header = json.loads(line)
    out = {}
    for entry in header["tensors"]:
        values = array("f")
        values.frombytes(data[entry["offset"]:entry["offset"] + 4 * math.prod(entry["shape"])])
        out[(entry["name"], entry.get("blob"))] = (entry["shape"], values)
    return out


# --- Python 3.6 ----------------------------------------------------------------------------------------

needs_python36 = pytest.mark.skipif(not PYTHON36.exists(), reason=f"no Python 3.6 at {PYTHON36}")


@needs_python36
@pytest.mark.parametrize("name", sorted(runner_files()))
def test_compiles_under_python36(tmp_path, name):
    subprocess.run([str(PYTHON36), "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], "
                    "cfile=sys.argv[2], doraise=True)", str(RUNNER.parent / name), str(tmp_path / "runner.pyc")],
                   check=True)


@needs_python36
def test_pure_python_parts_run_under_python36(tmp_path):
    # There is no torch for 3.6 here: a stub lets the module load, so the statistics and the command
    # line run on a real 3.6 interpreter and standard library, with timing.py imported from beside
    # the runner as on the board.
    stub = tmp_path / "torch"
    (stub / "nn").mkdir(parents=True)
    (stub / "__init__.py").write_text("__version__ = 'stub'\nfloat16 = float32 = float64 = None\n")
    (stub / "nn" / "__init__.py").write_text("class Module(object):\n    pass\n")
    (stub / "nn" / "functional.py").write_text("")
    script = (
        "import sys\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import torch_runner as br\n"
        "args = br.parse_args(['--spec', 'x.json', '--json', '--batch', '4'])\n"
        "assert args.batch == 4 and args.span == 'compute' and args.cudnn_benchmark\n"
        "assert (args.precision, args.mode, args.compile, args.input_shape) == ('fp32', 'inference', None, None)\n"
        "args = br.parse_args(['--torchvision', 'resnet18', '--precision', 'fp16', '--channels-last',\n"
        "                      '--compile', '--mode', 'train-step', '--json'])\n"
        # A torchvision model's default input is its kind's, chosen when it is built (torchvision_models.py).
        "assert args.input_shape is None and args.compile == 'default'\n"
        "assert br.variant(args) == 'fp16+channels_last+compile+train_step', br.variant(args)\n"
        "args = br.parse_args(['--torchscript', 'm.pt', '--compile=max-autotune', '--input-shape', '1,8,8'])\n"
        "assert (args.compile, args.input_shape) == ('max-autotune', [1, 8, 8])\n"
        "import timing as board_timing\n"
        "assert br.timing is board_timing\n"
        "s = board_timing.summarize([float(i % 7) + 10 for i in range(50)])\n"
        "assert s['ci95_ms'] and s['latency_ms']['median'] == 13.0, s\n"
        "assert board_timing.median_ci(list(range(100))) == (39, 60)\n"
        "args = br.parse_args(['--spec', 'x.json', '--iterations', '3', '--warmup-s', '0'])\n"
        "times, window, reason, warmup = board_timing.measure(lambda: (1.0, None), args)\n"
        "assert (len(times), reason) == (3, 'forced') and warmup >= 3, (times, reason, warmup)\n"
        "br.parse_args(['--batch', '0'])\n"
    )
    result = subprocess.run([str(PYTHON36), "-c", script, str(tmp_path), str(RUNNER.parent)],
                            capture_output=True, text=True)
    # The last line is a usage error, which must come back as JSON with exit status 2.
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["kind"] == "usage"


# --- tensor files --------------------------------------------------------------------------------------

def test_tensor_file_round_trip(tmp_path):
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()  # not contiguous
    b = torch.tensor([1.5], dtype=torch.float64)
    path = tmp_path / "t.f32"
    tensors.write_tensors(str(path), [({"name": "a"}, a), ({"name": "conv/1", "blob": 2}, b)])
    raw = path.read_bytes()
    header_line = raw.split(b"\n", 1)[0] + b"\n"
    assert len(header_line) % 64 == 0
    header = json.loads(header_line)
    assert header["format"] == "edgeprof-tensors" and header["dtype"] == "float32-le"
    assert header["tensors"] == [{"name": "a", "shape": [4, 3], "offset": 0},
                                 {"name": "conv/1", "blob": 2, "shape": [1], "offset": 48}]
    plain = read_tensor_file(path)
    assert list(plain[("a", None)][1]) == a.flatten().tolist()
    assert list(plain[("conv/1", 2)][1]) == [1.5]
    source = tensors.TensorFile(str(path))
    assert torch.equal(source.read(source.entries[0]), a)
    source.close()


def npy(array_bytes: bytes, descr: str, shape, fortran=False) -> bytes:
    header = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode("latin-1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + array_bytes


def test_npz_weights(tmp_path):
    spec = spec_of(SMALL_NET)
    net = caffe_layers.CaffeNet(spec)
    blobs = dict(net.named_blobs())
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, tensors in blobs.items():
            for i, t in enumerate(tensors):
                values = torch.arange(t.numel(), dtype=torch.float64) / 7 + 1
                if name == "fc" and i == 0:
                    # float64, and the legacy 4-axis shape of old caffemodels
                    z.writestr(f"{name}/{i}.npy", npy(struct.pack(f"<{t.numel()}d", *values.tolist()), "<f8",
                                                      (1, 1) + tuple(t.shape)))
                else:
                    z.writestr(f"{name}/{i}.npy", npy(struct.pack(f"<{t.numel()}f", *values.tolist()), "<f4",
                                                      t.shape))
        z.writestr("unused_layer/0.npy", npy(struct.pack("<f", 1), "<f4", (1,)))
    net.load_weights(str(path))
    for name, tensors in net.named_blobs():
        for t in tensors:
            expected = (torch.arange(t.numel(), dtype=torch.float64) / 7 + 1).float().reshape(t.shape)
            assert torch.equal(t, expected), name
    # BatchNorm divides its first two blobs by the third.
    bn = next(m for m in net.layers if isinstance(m, caffe_layers.BatchNorm))
    assert torch.allclose(bn.mean, bn.mean_blob / bn.factor_blob[0])


def test_weight_errors(tmp_path):
    net = caffe_layers.CaffeNet(spec_of(SMALL_NET))
    path = tmp_path / "w.f32"
    entries = [({"name": name, "blob": i}, t) for name, ts in net.named_blobs() for i, t in enumerate(ts)]
    tensors.write_tensors(str(path), [e for e in entries if e[0]["name"] != "sc"])
    with pytest.raises(caffe_layers.RunnerError, match=r"layer 'sc' needs blobs 0\.\.1, the file has none"):
        net.load_weights(str(path))
    tensors.write_tensors(str(path), [(m, torch.zeros(3) if m["name"] == "fc" and m["blob"] == 1 else t)
                                 for m, t in entries])
    with pytest.raises(caffe_layers.RunnerError, match=r"layer 'fc' blob 1 has shape \[3\], the net needs \[5\]"):
        net.load_weights(str(path))
    fortran = tmp_path / "f.npz"
    with zipfile.ZipFile(fortran, "w") as z:
        z.writestr("conv/0.npy", npy(b"", "<f4", (0,), fortran=True))
        z.writestr("conv/1.npy", npy(b"", "<f4", (0,)))
    with pytest.raises(caffe_layers.RunnerError, match="only C-ordered little-endian float arrays"):
        net.load_weights(str(fortran))


# --- layers against Caffe's loops ----------------------------------------------------------------------

def caffe_pooling(x, layer):
    """pooling_layer.cpp's Forward_cpu, MAX and AVE, transcribed."""
    (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["pad"]
    height, width = x.shape[2:]
    out_h, out_w = layer["output_size"]
    top = torch.empty(x.shape[0], x.shape[1], out_h, out_w)
    for oh in range(out_h):
        for ow in range(out_w):
            hstart, wstart = oh * sh - ph, ow * sw - pw
            if layer["pool"] == "MAX":
                hend, wend = min(hstart + kh, height), min(wstart + kw, width)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                window = x[:, :, hstart:max(hend, hstart), wstart:max(wend, wstart)]
                top[:, :, oh, ow] = window.amax((2, 3)) if window.numel() else -caffe_layers.FLT_MAX
            else:
                hend, wend = min(hstart + kh, height + ph), min(wstart + kw, width + pw)
                pool_size = (hend - hstart) * (wend - wstart)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                hend, wend = min(hend, height), min(wend, width)
                window = x[:, :, hstart:max(hend, hstart), wstart:max(wend, wstart)]
                top[:, :, oh, ow] = window.sum((2, 3)) / pool_size
    return top


POOLING = [
    # (pooling_param, whether torch's own padding/ceil rule reproduces Caffe's windows)
    ("pool: MAX kernel_size: 3 stride: 2", True),  # AlexNet/GoogLeNet: ceil rounding
    ("pool: MAX kernel_size: 3 stride: 2 pad: 1", True),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", True),  # last window overhangs the padding: divisor clipped
    ("pool: AVE kernel_size: 2 stride: 2 pad: 1", True),  # the window starting in the padding is dropped
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR", True),
    ("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0", True),
    ("pool: AVE global_pooling: true", True),
    ("pool: MAX global_pooling: true", True),
    ("pool: MAX kernel_size: 2 stride: 4", False),  # Caffe keeps a last window starting past the edge
    ("pool: AVE kernel_size: 2 stride: 4", False),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 2", False),  # pad > kernel / 2: torch refuses it
    ("pool: MAX kernel_size: 3 stride: 2 pad: 2", False),
    ("pool: MAX kernel_size: 3 stride: 3 pad: 1 round_mode: FLOOR", True),
]


@pytest.mark.parametrize("param, native", POOLING)
def test_pooling_matches_caffes_loops(param, native):
    layer = one_layer(f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param {{ {param} }} }}')
    module = caffe_layers.Pooling(layer)
    assert (module.explicit_pad is None) == native
    x = torch.randn(2, 3, 11, 13, generator=torch.Generator().manual_seed(0))
    got = module(x)
    assert list(got.shape[2:]) == layer["output_size"]
    assert torch.allclose(got, caffe_pooling(x, layer), rtol=1e-6, atol=1e-6)


def test_pooling_past_the_edge_gives_caffes_values():
    layer = one_layer('layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                      'pooling_param { pool: MAX kernel_size: 2 stride: 4 } }')
    got = caffe_layers.Pooling(layer)(torch.randn(2, 3, 11, 13))
    # rows: windows at 0, 4, 8, 12 of 11; the last lies wholly past the input and stays at -FLT_MAX.
    assert got.shape[2:] == (4, 4) and bool((got[:, :, 3, :] == -caffe_layers.FLT_MAX).all())


def caffe_lrn_across(x, size, alpha, beta, k):
    """lrn_layer.cpp's CrossChannelForward_cpu: window of `size` channels starting (size - 1) / 2 before."""
    channels = x.shape[1]
    pre_pad = (size - 1) // 2
    top = torch.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - pre_pad), min(channels, c - pre_pad + size)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(1)
        top[:, c] = x[:, c] * scale ** -beta
    return top


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 1.0), (3, 0.5, 0.6, 2.0), (1, 2.0, 1.0, 1.0)])
def test_lrn_across_channels_matches_caffes_loop(size, alpha, beta, k):
    layer = one_layer(f'layer {{ name: "n" type: "LRN" bottom: "data" top: "n" lrn_param {{ local_size: {size} '
                      f'alpha: {alpha} beta: {beta} k: {k} }} }}', shape=(2, 7, 5, 6))
    x = torch.randn(2, 7, 5, 6, generator=torch.Generator().manual_seed(1)) * 3
    assert torch.allclose(caffe_layers.LRN(layer)(x), caffe_lrn_across(x, size, alpha, beta, k), rtol=1e-5, atol=1e-6)


def test_lrn_within_channel():
    layer = one_layer('layer { name: "n" type: "LRN" bottom: "data" top: "n" '
                      'lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 7 norm_region: WITHIN_CHANNEL } }')
    x = torch.randn(2, 3, 11, 13, generator=torch.Generator().manual_seed(2))
    # Caffe: pooled = AVE pooling of x^2 (kernel 3, pad 1, stride 1), then x * (1 + alpha * pooled)^-beta;
    # k is not used.
    pool = {"pool": "AVE", "kernel": [3, 3], "stride": [1, 1], "pad": [1, 1], "output_size": [11, 13]}
    expected = x * (1 + 0.5 * caffe_pooling(x * x, pool)) ** -0.6
    assert torch.allclose(caffe_layers.LRN(layer)(x), expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_scale_factor_and_batch_statistics():
    layer = one_layer('layer { name: "b" type: "BatchNorm" bottom: "data" top: "b" batch_norm_param { eps: 0.01 } }',
                      shape=(2, 3, 4, 4))
    bn = caffe_layers.BatchNorm(layer)
    mean, var, factor = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([4.0, 0.25, 1.0]), 37.5
    for target, value in zip(bn.caffe_blobs(), (mean * factor, var * factor, torch.tensor([factor]))):
        target.copy_(value)
    bn.blobs_loaded()
    x = torch.randn(2, 3, 4, 4)
    expected = (x - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + 0.01)
    assert torch.allclose(bn(x), expected, rtol=1e-5, atol=1e-6)
    bn.factor_blob.fill_(0)  # Caffe reads a zero factor as statistics 0
    bn.blobs_loaded()
    assert torch.allclose(bn(x), x / math.sqrt(0.01), rtol=1e-5)
    layer["use_global_stats"] = False
    batch = caffe_layers.BatchNorm(layer)(x)
    assert torch.allclose(batch.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(batch.var((0, 2, 3), unbiased=False), torch.ones(3) / (1 + 0.01 / x.var((0, 2, 3), unbiased=False)), rtol=1e-4)


def test_blobs_flow_by_name_as_in_caffe():
    # `f` is a flattened view of `c`; the in-place ReLU that then rewrites `c` must not change what `f`
    # holds (Caffe's Flatten shares memory too, but Caffe inserts a Split copy before the in-place ReLU).
    spec = spec_of("""
        input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
        layer { name: "c" type: "Scale" bottom: "data" top: "c" scale_param { bias_term: true } }
        layer { name: "f" type: "Flatten" bottom: "c" top: "f" }
        layer { name: "r" type: "ReLU" bottom: "c" top: "c" }
        layer { name: "s" type: "Split" bottom: "c" top: "s1" top: "s2" }
        layer { name: "sum" type: "Eltwise" bottom: "s1" bottom: "s2" top: "sum" eltwise_param { coeff: 0.5 coeff: -2 } }
    """)
    net = caffe_layers.CaffeNet(spec, extra=["c"])
    net.init_random(3)
    x = torch.randn(1, 2, 3, 3)
    with torch.no_grad():
        f, total, c = net(x)
        scale = net.layers[0]
        expected_c = x * scale.weight + scale.bias
    assert net.returns == ["f", "sum", "c"]
    assert torch.allclose(f, expected_c.flatten(1))
    assert torch.allclose(c, expected_c.clamp(min=0))
    assert torch.allclose(total, -1.5 * expected_c.clamp(min=0))
    # Blobs are dropped after their last reader unless returned: s1 and s2 after the sum.
    assert [step[3] for step in net.steps] == [["data"], [], [], [], ["s1", "s2"]]


def test_batch_norm_and_scale_fold_into_one_step():
    net = caffe_layers.CaffeNet(spec_of(SMALL_NET), extra=["conv"])
    net.init_random(0)
    net.calibrate([torch.randn(1, 3, 12, 12)])
    conv, bn, scale = net.layers[:3]
    assert [step[0] for step in net.steps][:3] == [conv, bn, net.layers[3]] and bn.folded == [scale]
    assert [name for name, _ in net.named_blobs()] == ["conv", "bn", "sc", "fc"]  # both keep their blobs
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        y = conv(x)
        separate = torch.relu((y - bn.mean.view(1, -1, 1, 1)) / torch.sqrt(bn.var.view(1, -1, 1, 1) + bn.eps)
                              * scale.weight + scale.bias)
        assert torch.allclose(net(x)[1], separate, rtol=1e-5, atol=1e-5)
    # Not folded: a Scale that does not rewrite the BatchNorm's output in place.
    unfolded = caffe_layers.CaffeNet(spec_of(SMALL_NET.replace('top: "conv" scale_param', 'top: "scaled" scale_param')
                                   .replace('bottom: "conv" top: "conv" }\nlayer { name: "pool"',
                                            'bottom: "scaled" top: "conv" }\nlayer { name: "pool"')))
    assert unfolded.layers[1].folded == [] and len(unfolded.steps) == 7


def test_random_weights_are_deterministic_and_calibrated():
    spec = spec_of(SMALL_NET)
    nets = [caffe_layers.CaffeNet(spec), caffe_layers.CaffeNet(spec), caffe_layers.CaffeNet(spec)]
    for net, seed in zip(nets, (5, 5, 6)):
        net.init_random(seed)
    same = [torch.equal(a, b) for (_, xs), (_, ys) in zip(nets[0].named_blobs(), nets[1].named_blobs())
            for a, b in zip(xs, ys)]
    different = [torch.equal(a, b) for (_, xs), (_, ys) in zip(nets[0].named_blobs(), nets[2].named_blobs())
                 for a, b in zip(xs, ys)]
    assert all(same) and not any(different[:2])
    conv = nets[0].layers[0].conv.weight
    assert conv.std().item() == pytest.approx(math.sqrt(2 / 27), rel=0.3)
    x = torch.randn(1, 3, 12, 12)
    assert nets[0].calibrate([x])
    bn = nets[0].layers[1]
    assert float(bn.factor_blob[0]) == pytest.approx(caffe_layers.BN_FACTOR)
    with torch.no_grad():
        y = nets[0].layers[0](x)
        normalized = (y - bn.mean.view(1, -1, 1, 1)) / torch.sqrt(bn.var.view(1, -1, 1, 1) + bn.eps)
    assert torch.allclose(normalized.mean((0, 2, 3)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(normalized.var((0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)


def test_unknown_type_in_spec():
    spec = spec_of(SMALL_NET)
    spec["layers"][2]["type"] = "ROIPooling"
    with pytest.raises(caffe_layers.RunnerError, match=r"layer 'sc' \(line 7\): type ROIPooling is not supported") as info:
        caffe_layers.CaffeNet(spec)
    assert info.value.kind == "unsupported"


# --- command line --------------------------------------------------------------------------------------

@pytest.fixture
def small_spec(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec_of(SMALL_NET)))
    return path


def run_runner(*args, check=True):
    result = subprocess.run([sys.executable, str(RUNNER), *map(str, args)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object and nothing else on stdout
    return json.loads(lines[0]), result.returncode


def test_forced_iterations_report(small_spec):
    out, _ = run_runner("--spec", small_spec, "--json", "--iterations", 7, "--warmup", 2, "--warmup-s", 0,
                        "--threads", 1, "--batch", 3)
    assert out["iterations"] == 7 and out["stop_reason"] == "forced" and out["warmup_iterations"] == 2
    lat = out["latency_ms"]
    assert set(lat) == {"median", "mean", "p90", "p95", "p99", "min", "max", "stdev", "iqr"}
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert out["ci95_ms"][0] <= lat["median"] <= out["ci95_ms"][1]
    assert out["timed_window"]["start_s"] < out["timed_window"]["end_s"]
    assert out["throughput_ips"] > 0 and out["first_inference_ms"] > 0 and out["load_s"] > 0
    assert out["calibration_s"] > 0  # random weights, one BatchNorm
    assert out["memory"]["process_rss_peak_bytes"] > 10_000_000
    assert out["memory"]["allocator_peak_bytes"] is None and out["memory"]["allocator_reserved_bytes"] is None
    assert (out["timer"], out["span"], out["threads"], out["batch"], out["device"]) == (
        "perf_counter", "compute", 1, 3, "cpu")
    assert out["torch_version"] == torch.__version__ and out["outputs"] == ["prob"]
    assert out["settings"]["iterations"] == 7 and out["settings"]["precision"] == "fp32"


def test_stops_when_the_median_is_pinned_or_at_the_cap(small_spec):
    out, _ = run_runner("--spec", small_spec, "--json", "--warmup-s", 0.1, "--min-iterations", 20,
                        "--min-time-s", 0.2, "--max-time-s", 20)
    assert out["iterations"] >= 20
    if out["stop_reason"] == "converged":
        assert out["ci_rel"] <= 0.01
    else:
        assert out["stop_reason"] == "time_cap"
    out, _ = run_runner("--spec", small_spec, "--json", "--warmup-s", 0, "--target-ci", 1e-12,
                        "--min-time-s", 0.1, "--max-time-s", 0.5)
    assert out["stop_reason"] == "time_cap"
    assert 0.5 <= out["timed_window"]["end_s"] - out["timed_window"]["start_s"] < 5


def test_input_and_dumps_round_trip(small_spec, tmp_path):
    run_runner("--spec", small_spec, "--json", "--iterations", 0, "--batch", 2, "--seed", 4,
               "--save-input", tmp_path / "x.f32", "--save-weights", tmp_path / "w.f32",
               "--dump-output", tmp_path / "a.f32", "--dump-blobs", "fc,pool")
    out, _ = run_runner("--spec", small_spec, "--json", "--iterations", 2, "--warmup", 1, "--warmup-s", 0,
                        "--input", tmp_path / "x.f32", "--weights", tmp_path / "w.f32",
                        "--dump-output", tmp_path / "b.f32", "--dump-blobs", "fc,pool")
    assert out["batch"] == 2 and out["calibration_s"] is None  # batch from the input file; given weights
    a, b = read_tensor_file(tmp_path / "a.f32"), read_tensor_file(tmp_path / "b.f32")
    assert list(a) == [("prob", None), ("fc", None), ("pool", None)]
    assert a == b
    assert a[("prob", None)][0] == [2, 5] and sum(a[("prob", None)][1][:5]) == pytest.approx(1, abs=1e-6)
    weights = read_tensor_file(tmp_path / "w.f32")
    assert [key for key in weights] == [("conv", 0), ("conv", 1), ("bn", 0), ("bn", 1), ("bn", 2),
                                        ("sc", 0), ("sc", 1), ("fc", 0), ("fc", 1)]
    assert weights[("conv", 0)][0] == [4, 3, 3, 3] and weights[("sc", 0)][0] == [4]


def test_errors_come_back_as_json(small_spec, tmp_path):
    spec = json.loads(small_spec.read_text())
    spec["layers"][0]["type"] = "ROIPooling"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec))
    out, code = run_runner("--spec", bad, "--json", check=False)
    assert code == 1 and out["kind"] == "unsupported" and "layer 'conv' (line 5)" in out["error"]
    out, code = run_runner("--spec", small_spec, "--json", "--batch", 0, check=False)
    assert code == 2 and out["kind"] == "usage"
    run_runner("--spec", small_spec, "--json", "--iterations", 0, "--batch", 2, "--save-input", tmp_path / "x.f32")
    out, code = run_runner("--spec", small_spec, "--json", "--batch", 3, "--input", tmp_path / "x.f32", check=False)
    assert code == 1 and out["kind"] == "input" and "has shape [2, 3, 12, 12], the net needs [3, 3, 12, 12]" in out["error"]
    out, code = run_runner("--spec", small_spec, "--json", "--dump-blobs", "nope", check=False)
    assert code == 1 and out["kind"] == "usage" and "no blob named 'nope'" in out["error"]
    if not torch.cuda.is_available():
        out, code = run_runner("--spec", small_spec, "--json", "--device", "cuda", check=False)
        assert code == 1 and out["kind"] == "usage"


def test_text_summary_without_json(small_spec):
    result = subprocess.run([sys.executable, str(RUNNER), "--spec", str(small_spec), "--iterations", "3",
                             "--warmup-s", "0"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("small batch 2 on ")
    assert "median" in result.stdout and "3 iterations (forced)" in result.stdout


@pytest.mark.skipif(shutil.which("nvidia-smi") is None or not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("span", ["compute", "host"])
def test_cuda_spans(small_spec, span):
    out, _ = run_runner("--spec", small_spec, "--json", "--device", "cuda", "--span", span, "--iterations", 5,
                        "--warmup-s", 0)
    assert out["timer"] == ("cuda_event" if span == "compute" else "perf_counter")
    assert out["memory"]["allocator_peak_bytes"] > 0 and out["memory"]["allocator_reserved_bytes"] > 0
