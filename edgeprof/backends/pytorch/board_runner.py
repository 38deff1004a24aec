#!/usr/bin/env python3
"""edgeprof's PyTorch runner: builds a Caffe net from edgeprof's netspec JSON (or loads a torchvision model
or a TorchScript module) and times it. Runs ON the board.

Uploaded next to the JSON (edgeprof.models.netspec writes it), with board_timing.py beside it
(edgeprof's timing core, shared with the other board runners), and run as

    python3 board_runner.py --spec net.json --device cpu|cuda --batch N [--iterations N] --json
        [--precision fp32|fp16|bf16] [--channels-last] [--cuda-graph] [--compile[=MODE]]
        [--mode inference|train-step]

It needs Python 3.6+, the standard library and torch (1.x on JetPack 4.6 boards, 2.x elsewhere) and
nothing else but board_timing.py: no numpy, no edgeprof package. So: no dataclasses, no `from __future__
import annotations`, no f-strings with `=`, nothing from the standard library newer than 3.6.

The network
    One module per Caffe layer, each written to Caffe's semantics (the class docstrings say how): Caffe's
    pooling sizes and AVE divisor, Caffe's LRN, BatchNorm's stored moving-average factor, Scale, Eltwise
    coefficients, InnerProduct flattening from its axis. Blobs flow by name in file order, so in-place
    layers and Caffe's reading of a blob after an in-place layer rewrote it behave as in Caffe; a blob is
    released after its last reader. A BatchNorm whose output a per-channel Scale rewrites in place runs as
    one affine batch norm with it, as a PyTorch net would write it. Runs in float32 unless --precision
    says otherwise, TF32 off unless --tf32.

Other model sources (exactly one of --spec, --torchvision, --torchscript)
    --torchvision NAME: torchvision.models' NAME built with random weights (weights=None from torchvision
        0.13, pretrained=False before) after torch.manual_seed(--seed), so the weights depend on the seed
        and the torch and torchvision versions. Without torchvision: an error of kind "unavailable".
    --torchscript FILE: torch.jit.load(FILE); its weights are the file's.
    Both take one input named "input" of [--batch (default 1)] + --input-shape (default 3,224,224);
    their outputs (a tensor, or tuples, lists and dicts of them) are flattened in order and named
    "output", or "output0", "output1"... --weights, --dump-blobs and --save-weights are for --spec only.

Variants (the JSON's "variant" labels them: "fp16+channels_last+cuda_graph")
    --precision fp16|bf16: the module and the inputs in that dtype, as a careful script converts them
        (net.half(), input.half()), except that batch norms keep float32 statistics and affine parameters
        (see convert()). LRN normalizes in float32 (see LRN). No autocast: every other layer runs in the
        dtype. bf16 on CUDA only where torch.cuda.is_bf16_supported() says so. Dumped outputs are float32;
        --save-input writes the float32 input before its conversion. An operation torch lacks in that
        dtype on the device (old torch, CPU kernels) is an error of kind "unsupported".
    --channels-last: the module's 4-D weights and the 4-D inputs in torch.channels_last memory format.
    --cuda-graph (CUDA, torch 1.10+): after the first inference, warm-up calls on a side stream, then one
        iteration captured in a torch.cuda.CUDAGraph over static inputs and outputs; the timed
        iterations are replays. Span compute: CUDA events around the replay. Span host: the host input
        copied into the static input, the replay, the outputs copied back. cuda_graph_capture_s is the
        side-stream warm-up and the capture.
    --compile[=MODE] (torch 2.0+): torch.compile(net, mode=MODE), MODE default, reduce-overhead or
        max-autotune. The first call compiles; its time is compile_s, apart from first_inference_ms (then
        the first call after it) and from the timed iterations. reduce-overhead and max-autotune record
        CUDA graphs themselves on GPUs, so --cuda-graph goes with plain --compile only. A failure to
        compile (no C compiler for Inductor...) is an error of kind "unsupported".
    --mode train-step: each iteration is one training step (TrainStep): forward, loss, backward and an
        SGD step (lr 0.01, momentum 0.9), the work of Caffe's "Average Forward-Backward" plus the update.
        The loss: cross-entropy of the first output against random labels (seed N + 3) when it is
        [N, C], else the mean of its squares. The module is in training mode: Dropout drops (Caffe's
        TRAIN phase). BatchNorm keeps to what the prototxt says: batch statistics only where it sets
        use_global_stats false, the stored ones otherwise, since netspec resolves an absent
        use_global_stats as the TEST phase does (caffe time -phase TRAIN would use batch statistics
        there); torchvision's and TorchScript's batch norms follow torch's training mode (batch
        statistics). The JSON's "loss" gives the loss of the first and the last step. fp16 trains
        without loss scaling: its figures are timings, not a recipe.

Weights (in Caffe's blob order per layer, e.g. a Convolution's [weight, bias])
    --weights FILE: an edgeprof tensor file (below) with entries {"name": layer, "blob": index}, or a
        .npz whose arrays are named "<layer>/<index>" (np.savez(f, **{"conv1/0": w, "conv1/1": b})).
    --seed N (default 0): deterministic random weights for a given torch version, generated on the CPU
        whatever the device: Convolution and InnerProduct weights He-normal (std sqrt(2 / fan_in), fan_in =
        input channels / group x kernel area, or input features), their biases uniform in [-0.1, 0.1);
        Scale factors uniform in [0.5, 1.5) and biases uniform in [-0.1, 0.1); BatchNorm statistics
        calibrated on a random image (the per-channel mean and variance of what reaches the layer, so
        activations stay near unit scale through deep nets instead of exploding), stored multiplied by
        999.982 with that factor as third blob, as trained Caffe models carry it. Calibration time is
        reported apart from load time.
    The input, unless --input FILE, is standard normal from seed N + 1 (calibration image: N + 2).

Tensor files (--input, --dump-output, --save-weights, --save-input): readable without numpy or torch.
    Line 1: a JSON header {"format": "edgeprof-tensors", "version": 1, "dtype": "float32-le",
    "tensors": [{"name": ..., ["blob": i,] "shape": [...], "offset": bytes}]}, padded with spaces so that
    the line, newline included, is a multiple of 64 bytes. Then the data: each tensor C-ordered
    little-endian float32 at `offset` bytes after the header line.

Timing (FIELD.md section 1; the loop and the statistics are board_timing.py's)
    first inference: the first forward after load (after the compiling call with --compile), host clock
        + synchronize, reported on its own.
    warm-up: at least --warmup iterations and --warmup-s seconds.
    timed: at least --min-iterations and --min-time-s, then until the median's distribution-free 95 %
        confidence interval (order statistics of the binomial(n, 1/2)) lies within --target-ci of the
        median (ci_rel = max(median - lo, hi - median) / median), or --max-time-s passes; --iterations N
        runs exactly N (0: none, e.g. only to dump outputs).
    span "compute" (default): input already on the device; CUDA events around the forward on CUDA.
    span "host": host-to-device copy of the input (from pinned memory), forward and device-to-host copy
        of the outputs, host monotonic clock + synchronize. On the CPU both spans are the forward alone.
    CPU: time.perf_counter around the forward. Iterations synchronize one by one on CUDA.
    throughput_ips: batch x iterations / wall time of the timed window.

Memory: the allocator's peak and reserved bytes (CUDA) and the process's peak RSS; on CUDA also
    nvidia-smi's view at the end of the run: nvml_process_bytes (this process on the device, CUDA
    context and library workspaces included) and nvml_device_used_bytes (the whole device), null where
    nvidia-smi is missing (Jetsons before JetPack 6), answers N/A or does not know this PID.

Output: one JSON object on stdout (--json), or a short summary. Any error (an op the runner lacks, out
of memory, a bad file) is a JSON object {"error", "kind", ...} on stdout and a non-zero exit status.
"""
import argparse
import ast
import ctypes
import inspect
import json
import math
import os
import platform
import sys
import time
import traceback
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

if __package__:
    from .. import board_timing  # imported on the host, as edgeprof.backends.pytorch.board_runner
else:
    # Run as a script on the board (or imported from its folder): board_timing.py lies beside this file.
    # A test of __package__ rather than `except ImportError`, which would also swallow an import error
    # inside board_timing itself and report it as a missing file.
    import board_timing

SPEC_FORMAT = "edgeprof-netspec"
SPEC_VERSION = 1
TENSOR_FORMAT = "edgeprof-tensors"
TENSOR_VERSION = 1
# The moving-average factor stored with random BatchNorm statistics: Caffe accumulates it as
# f = 0.999 f + 1 per training iteration, so trained models carry about 1 / (1 - 0.999).
BN_FACTOR = 999.982
FLT_MAX = 3.4028234663852886e38


class RunnerError(Exception):
    """An error reported as JSON; kind is one of spec, unsupported, unavailable, weights, input, usage."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# --- tensor files --------------------------------------------------------------------------------------

def _check_little_endian():
    # The files are little-endian and tensors are moved as raw memory.
    if sys.byteorder != "little":
        raise RunnerError("input", "tensor files need a little-endian machine")


def _memory(tensor):
    """The bytes of a contiguous CPU tensor, as a writable buffer (no copy)."""
    nbytes = tensor.numel() * tensor.element_size()
    return (ctypes.c_ubyte * nbytes).from_address(tensor.data_ptr())


def _readinto_exact(stream, tensor, what):
    if tensor.numel() == 0:
        return
    view = memoryview(_memory(tensor))
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:])
        if not got:
            raise RunnerError("input", "%s: file ends inside the data" % what)
        done += got


def write_tensors(path, entries):
    """Write [(meta, tensor)] as an edgeprof tensor file; meta holds "name" (and "blob" for weights)."""
    _check_little_endian()
    tensors = [t.detach().to("cpu", torch.float32).contiguous() for _, t in entries]
    described = []
    offset = 0
    for (meta, _), tensor in zip(entries, tensors):
        item = dict(meta)
        item["shape"] = list(tensor.shape)
        item["offset"] = offset
        described.append(item)
        offset += tensor.numel() * 4
    header = json.dumps({"format": TENSOR_FORMAT, "version": TENSOR_VERSION, "dtype": "float32-le",
                         "tensors": described}).encode("utf-8")
    header += b" " * (-(len(header) + 1) % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(header)
        for tensor in tensors:
            if tensor.numel():
                f.write(_memory(tensor))


class TensorFile(object):
    """An edgeprof tensor file, read entry by entry straight into tensors."""

    def __init__(self, path):
        _check_little_endian()
        self.path = path
        self._file = open(path, "rb")
        line = self._file.readline()
        try:
            header = json.loads(line.decode("utf-8"))
        except ValueError:
            raise RunnerError("input", "%s: not an edgeprof tensor file (no JSON header line)" % path)
        if header.get("format") != TENSOR_FORMAT or header.get("dtype") != "float32-le":
            raise RunnerError("input", "%s: not an edgeprof float32 tensor file" % path)
        self._data_start = len(line)
        self.entries = header["tensors"]

    def read(self, entry):
        tensor = torch.empty([int(d) for d in entry["shape"]], dtype=torch.float32)
        self._file.seek(self._data_start + int(entry["offset"]))
        _readinto_exact(self._file, tensor, self.path)
        return tensor

    def close(self):
        self._file.close()


_NPY_TYPES = {"f2": torch.float16, "f4": torch.float32, "f8": torch.float64}


class NpzFile(object):
    """A numpy .npz (zip of .npy arrays), read with zipfile; entries named "<layer>/<blob index>"."""

    def __init__(self, path):
        _check_little_endian()
        self.path = path
        self._zip = zipfile.ZipFile(path)
        self.entries = []
        for member in self._zip.namelist():
            if not member.endswith(".npy"):
                continue
            layer, _, index = member[:-len(".npy")].rpartition("/")
            if not layer or not index.isdigit():
                raise RunnerError("weights", "%s: array %r is not named <layer>/<blob index>" % (path, member))
            self.entries.append({"name": layer, "blob": int(index), "member": member})

    def read(self, entry):
        with self._zip.open(entry["member"]) as stream:
            dtype, shape = self._header(stream, entry["member"])
            tensor = torch.empty(shape, dtype=dtype)
            _readinto_exact(stream, tensor, "%s:%s" % (self.path, entry["member"]))
        return tensor.float()

    def _header(self, stream, member):
        what = "%s:%s" % (self.path, member)
        magic = stream.read(8)
        if magic[:6] != b"\x93NUMPY":
            raise RunnerError("weights", "%s: not a .npy array" % what)
        length_size = 2 if magic[6] == 1 else 4
        length = int.from_bytes(stream.read(length_size), "little")
        header = ast.literal_eval(stream.read(length).decode("latin-1"))
        descr = header["descr"]
        if header.get("fortran_order") or descr[:1] not in "<=|" or descr[1:] not in _NPY_TYPES:
            raise RunnerError("weights", "%s: only C-ordered little-endian float arrays are read, found %s%s"
                              % (what, descr, " in Fortran order" if header.get("fortran_order") else ""))
        return _NPY_TYPES[descr[1:]], [int(d) for d in header["shape"]]

    def close(self):
        self._zip.close()


def open_tensors(path):
    return NpzFile(path) if path.endswith(".npz") else TensorFile(path)


# --- layers --------------------------------------------------------------------------------------------

def _normal(gen, shape, std):
    return torch.randn(tuple(shape), generator=gen) * std


def _uniform(gen, shape, low, high):
    return torch.rand(tuple(shape), generator=gen) * (high - low) + low


class CaffeLayer(nn.Module):
    """One Caffe layer. caffe_blobs() are its learned blobs in Caffe's order and shapes (views of the
    module's tensors, so copying into them loads weights); layers without blobs keep the defaults."""

    def __init__(self, spec):
        super().__init__()
        self.caffe_name = spec["name"]

    def caffe_blobs(self):
        return []

    def init_random(self, gen):
        """Fill the blobs with the seeded random weights the module docstring describes."""

    def blobs_loaded(self):
        """Called after caffe_blobs() were written (derived tensors are refreshed here)."""


class Convolution(CaffeLayer):
    """nn.Conv2d: Caffe's convolution is a cross-correlation with the same weight layout
    [out, in / group, kh, kw], zero padding, dilation and groups."""

    def __init__(self, spec):
        super().__init__(spec)
        self.conv = nn.Conv2d(spec["in_channels"], spec["num_output"], tuple(spec["kernel"]),
                              stride=tuple(spec["stride"]), padding=tuple(spec["pad"]),
                              dilation=tuple(spec["dilation"]), groups=spec["group"], bias=spec["bias_term"])
        self.fan_in = spec["in_channels"] // spec["group"] * spec["kernel"][0] * spec["kernel"][1]

    def caffe_blobs(self):
        return [self.conv.weight] + ([self.conv.bias] if self.conv.bias is not None else [])

    def init_random(self, gen):
        self.conv.weight.copy_(_normal(gen, self.conv.weight.shape, math.sqrt(2.0 / self.fan_in)))
        if self.conv.bias is not None:
            self.conv.bias.copy_(_uniform(gen, self.conv.bias.shape, -0.1, 0.1))

    def forward(self, x):
        return self.conv(x)


def _torch_pool_size(size, kernel, stride, pad, ceil):
    """Output size of torch's pooling (ATen's pooling_output_shape)."""
    if not ceil:
        return (size + 2 * pad - kernel) // stride + 1
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + pad else out


class Pooling(CaffeLayer):
    """Caffe's MAX and AVE pooling with the output size netspec computed as Caffe does.

    Caffe's windows start at o * stride - pad; MAX takes the maximum of the window clipped to the input;
    AVE sums the clipped window and divides by the window clipped to the padded input (pad counted, the
    part past the padding not). torch's pooling with count_include_pad=True has exactly these windows and
    divisors, so it is used whenever torch accepts the padding (pad <= kernel / 2) and its size rule
    (floor, or ceil with a guard applied even without padding) gives Caffe's size. Otherwise (Caffe's
    ceil keeping a last window that starts past an unpadded input, or pad > kernel / 2) the input is padded
    explicitly (-FLT_MAX for MAX, the value Caffe starts from, or the lowest value of fp16 / bf16, which
    cannot hold -FLT_MAX; 0 for AVE, then divided by Caffe's divisors) and pooled without padding."""

    def __init__(self, spec):
        super().__init__(spec)
        self.is_max = spec["pool"] == "MAX"
        self.kernel = tuple(spec["kernel"])
        self.stride = tuple(spec["stride"])
        self.pad = tuple(spec["pad"])
        axes = list(zip(spec["input_size"], self.kernel, self.stride, self.pad, spec["output_size"]))
        self.ceil_mode = None
        if all(p <= k // 2 for _, k, _, p, _ in axes):
            for ceil in (False, True):
                if all(_torch_pool_size(n, k, s, p, ceil) == o for n, k, s, p, o in axes):
                    self.ceil_mode = ceil
                    break
        self.explicit_pad = None
        if self.ceil_mode is None:
            # Left pad, then whatever makes the last window end at the padded edge (negative: crop).
            (h, w) = [(p, (o - 1) * s + k - n - p) for n, k, s, p, o in axes]
            self.explicit_pad = (w[0], w[1], h[0], h[1])
            if not self.is_max:
                counts = [[min(o * s - p + k, n + p) - (o * s - p) for o in range(out)]
                          for n, k, s, p, out in axes]
                self.register_buffer("divisor", torch.tensor(counts[0], dtype=torch.float32)[:, None]
                                     * torch.tensor(counts[1], dtype=torch.float32)[None, :])

    def forward(self, x):
        if self.explicit_pad is None:
            if self.is_max:
                return F.max_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil_mode)
            return F.avg_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil_mode,
                                count_include_pad=True)
        if self.is_max:
            return F.max_pool2d(F.pad(x, self.explicit_pad, value=torch.finfo(x.dtype).min), self.kernel,
                                self.stride)
        summed = F.avg_pool2d(F.pad(x, self.explicit_pad), self.kernel, self.stride, divisor_override=1)
        return summed / self.divisor


class LRN(CaffeLayer):
    """ACROSS_CHANNELS: x / (k + alpha / n * sum of x^2 over the n channels centred on c, zero beyond the
    edges)^beta: torch's local_response_norm, which pads size // 2 before and (size - 1) // 2 after, the
    same for the odd sizes Caffe allows. WITHIN_CHANNEL: Caffe ignores k there and computes
    x * (1 + alpha * mean of x^2 over the n x n window, padding counted)^-beta.

    fp16 and bf16 inputs are normalized in float32 and converted back: x^2 overflows fp16 from |x| = 256
    (AlexNet's conv1 output with trained weights goes past it) and bf16 sums of squares lose most digits;
    torch's CPU kernels also lack fp16 for the pooling local_response_norm uses."""

    def __init__(self, spec):
        super().__init__(spec)
        self.size = spec["local_size"]
        self.alpha = spec["alpha"]
        self.beta = spec["beta"]
        self.k = spec["k"]
        self.across = spec["norm_region"] == "ACROSS_CHANNELS"

    def forward(self, x):
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        if self.across:
            out = F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        else:
            mean = F.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, count_include_pad=True)
            out = x * torch.pow(1 + self.alpha * mean, -self.beta)
        return out.to(dtype)


class InnerProduct(CaffeLayer):
    """The bottom flattened from axis (leading axes kept), times the [num_output, in_features] weight
    ([in_features, num_output] with transpose), plus bias."""

    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]
        self.transpose = spec["transpose"]
        shape = [spec["in_features"], spec["num_output"]] if self.transpose else [spec["num_output"], spec["in_features"]]
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(spec["num_output"])) if spec["bias_term"] else None
        self.fan_in = spec["in_features"]

    def caffe_blobs(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def init_random(self, gen):
        self.weight.copy_(_normal(gen, self.weight.shape, math.sqrt(2.0 / self.fan_in)))
        if self.bias is not None:
            self.bias.copy_(_uniform(gen, self.bias.shape, -0.1, 0.1))

    def forward(self, x):
        weight = self.weight.t() if self.transpose else self.weight
        return F.linear(x.flatten(self.axis), weight, self.bias)


class BatchNorm(CaffeLayer):
    """Caffe's blobs are mean x f, variance x f and [f]; the layer divides the first two by f (f = 0 gives
    0) and computes (x - mean) / sqrt(variance + eps) per channel (axis 1). With use_global_stats false it
    normalizes with the batch's own mean and biased variance instead, as Caffe does then."""

    def __init__(self, spec):
        super().__init__(spec)
        channels = spec["channels"]
        self.eps = spec["eps"]
        self.use_global_stats = spec["use_global_stats"]
        self.register_buffer("mean_blob", torch.zeros(channels))
        self.register_buffer("var_blob", torch.ones(channels))
        self.register_buffer("factor_blob", torch.ones(1))
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))
        # The Scale layer CaffeNet folds into this one, if any; in a list so it stays the net's child only.
        self.folded = []

    def caffe_blobs(self):
        return [self.mean_blob, self.var_blob, self.factor_blob]

    def blobs_loaded(self):
        factor = float(self.factor_blob[0])
        scale = 0.0 if factor == 0 else 1.0 / factor
        self.mean.copy_(self.mean_blob * scale)
        self.var.copy_(self.var_blob * scale)

    def calibrate(self, x):
        """Set the statistics to those of x (see the module docstring: random weights)."""
        axes = (0,) + tuple(range(2, x.dim()))
        mean = x.mean(axes)
        var = ((x - mean.view((1, -1) + (1,) * (x.dim() - 2))) ** 2).mean(axes)
        self.mean_blob.copy_(mean * BN_FACTOR)
        self.var_blob.copy_(var * BN_FACTOR)
        self.factor_blob.fill_(BN_FACTOR)
        self.blobs_loaded()

    def forward(self, x):
        if not self.use_global_stats:
            return F.batch_norm(x, None, None, None, None, True, 0.0, self.eps)
        weight = bias = None
        if self.folded:
            scale = self.folded[0]
            weight = scale.weight.view(-1)
            bias = None if scale.bias is None else scale.bias.view(-1)
        return F.batch_norm(x, self.mean, self.var, weight, bias, False, 0.0, self.eps)


class Scale(CaffeLayer):
    """x times a scale laid along x from axis (learned, or the second bottom), plus an optional learned
    bias. The learned tensors are kept in their broadcast shape; caffe_blobs() views them in Caffe's."""

    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]
        self.ndim = spec["ndim"]
        self.param_shape = tuple(spec["param_shape"])
        broadcast = self._broadcast_shape(self.param_shape)
        self.two_bottoms = len(spec["bottoms"]) == 2
        self.weight = None if self.two_bottoms else nn.Parameter(torch.ones(broadcast))
        self.bias = nn.Parameter(torch.zeros(broadcast)) if spec["bias_term"] else None

    def _broadcast_shape(self, shape):
        return (1,) * self.axis + tuple(shape) + (1,) * (self.ndim - self.axis - len(shape))

    def caffe_blobs(self):
        learned = ([] if self.weight is None else [self.weight]) + ([] if self.bias is None else [self.bias])
        return [t.view(self.param_shape) for t in learned]

    def init_random(self, gen):
        if self.weight is not None:
            self.weight.copy_(_uniform(gen, self.weight.shape, 0.5, 1.5))
        if self.bias is not None:
            self.bias.copy_(_uniform(gen, self.bias.shape, -0.1, 0.1))

    def forward(self, x, scale=None):
        scale = self.weight if scale is None else scale.reshape(self._broadcast_shape(scale.shape))
        if self.bias is None:
            return x * scale
        return torch.addcmul(self.bias, x, scale)


class ReLU(CaffeLayer):
    """max(x, 0) + negative_slope * min(x, 0)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.negative_slope = spec["negative_slope"]

    def forward(self, x):
        if self.negative_slope:
            return F.leaky_relu(x, self.negative_slope)
        return F.relu(x)


class Sigmoid(CaffeLayer):
    def forward(self, x):
        return torch.sigmoid(x)


class TanH(CaffeLayer):
    def forward(self, x):
        return torch.tanh(x)


class Dropout(CaffeLayer):
    """The identity in inference. In training mode (--mode train-step) Caffe's TRAIN-phase dropout: each
    value zeroed with probability dropout_ratio, the rest scaled by 1 / (1 - dropout_ratio), as F.dropout
    does (Caffe's default ratio 0.5 for specs written before netspec carried it)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.ratio = spec.get("dropout_ratio", 0.5)

    def forward(self, x):
        return F.dropout(x, self.ratio, self.training)


class Softmax(CaffeLayer):
    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]

    def forward(self, x):
        return F.softmax(x, dim=self.axis)


class Concat(CaffeLayer):
    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]

    def forward(self, *xs):
        return torch.cat(xs, dim=self.axis)


class Eltwise(CaffeLayer):
    """SUM: coeff[0] * x0 + coeff[1] * x1 + ..., accumulated in bottom order as Caffe does; PROD; MAX."""

    def __init__(self, spec):
        super().__init__(spec)
        self.operation = spec["operation"]
        self.coeff = [float(c) for c in spec["coeff"]]

    def forward(self, *xs):
        if self.operation == "PROD":
            out = xs[0]
            for x in xs[1:]:
                out = out * x
            return out
        if self.operation == "MAX":
            out = xs[0]
            for x in xs[1:]:
                out = torch.max(out, x)
            return out
        out = xs[0] if self.coeff[0] == 1 else xs[0] * self.coeff[0]
        for x, c in zip(xs[1:], self.coeff[1:]):
            out = torch.add(out, x, alpha=c)
        return out


class Flatten(CaffeLayer):
    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]
        self.end_axis = spec["end_axis"]

    def forward(self, x):
        return torch.flatten(x, self.axis, self.end_axis)


class Split(CaffeLayer):
    """Every top is the bottom (no layer here writes into its input, so sharing is safe)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.n_tops = len(spec["tops"])

    def forward(self, x):
        return (x,) * self.n_tops


LAYERS = {cls.__name__: cls for cls in (Convolution, Pooling, LRN, InnerProduct, BatchNorm, Scale, ReLU,
                                        Sigmoid, TanH, Dropout, Softmax, Concat, Eltwise, Flatten, Split)}


def _foldable(norm, scale):
    """A BatchNorm followed by a per-channel Scale rewriting its output in place (ResNet's pattern): the
    pair is one affine batch norm, as PyTorch nets write it, and the intermediate blob is never seen."""
    return (norm["use_global_stats"] and scale["type"] == "Scale" and len(scale["bottoms"]) == 1
            and scale["axis"] == 1 and len(scale["param_shape"]) == 1
            and scale["bottoms"] == norm["tops"] == scale["tops"])


class CaffeNet(nn.Module):
    """The net of a netspec. forward(*inputs) takes the inputs in spec order and returns the blobs named
    in `returns` (the net's outputs, then `extra` blobs), as a tuple. A BatchNorm + Scale pair runs as one
    affine batch norm (_foldable); each layer keeps its own blobs."""

    def __init__(self, spec, extra=()):
        super().__init__()
        if spec.get("format") != SPEC_FORMAT or spec.get("version") != SPEC_VERSION:
            raise RunnerError("spec", "not an edgeprof netspec version %d" % SPEC_VERSION)
        self.input_names = [i["name"] for i in spec["inputs"]]
        modules = []
        for layer in spec["layers"]:
            cls = LAYERS.get(layer["type"])
            if cls is None:
                raise RunnerError("unsupported", "layer %r (line %s): type %s is not supported by this runner"
                                  % (layer["name"], layer.get("line"), layer["type"]))
            modules.append(cls(layer))
        self.layers = nn.ModuleList(modules)
        produced = set(self.input_names)
        for layer in spec["layers"]:
            produced.update(layer["tops"])
        missing = [name for name in extra if name not in produced]
        if missing:
            raise RunnerError("usage", "no blob named %s in the net" % ", ".join(repr(m) for m in missing))
        self.returns = [o["name"] for o in spec["outputs"]]
        self.returns += [name for name in extra if name not in self.returns]
        # Steps: (module, bottoms, tops, blobs to drop after it: those no later step reads and that
        # are not returned).
        layers = spec["layers"]
        steps = []
        index = 0
        while index < len(layers):
            module, layer = modules[index], layers[index]
            steps.append((module, layer["bottoms"], layer["tops"], []))
            if isinstance(module, BatchNorm) and index + 1 < len(layers) and _foldable(layer, layers[index + 1]):
                # The pair writes the blob the BatchNorm writes; the Scale's step is the BatchNorm's.
                module.folded = [modules[index + 1]]
                index += 1
            index += 1
        last_read = {}
        for step in steps:
            for name in step[1]:
                last_read[name] = step
        for name, step in last_read.items():
            if name not in self.returns:
                step[3].append(name)
        self.steps = steps

    def forward(self, *inputs):
        blobs = dict(zip(self.input_names, inputs))
        for module, bottoms, tops, release in self.steps:
            out = module(*[blobs[name] for name in bottoms])
            if isinstance(out, tuple):
                blobs.update(zip(tops, out))
            else:
                blobs[tops[0]] = out
            for name in release:
                del blobs[name]
        return tuple(blobs[name] for name in self.returns)

    def named_blobs(self):
        """[(layer name, [blobs])] for layers that have learned blobs, in net order."""
        return [(m.caffe_name, m.caffe_blobs()) for m in self.layers if m.caffe_blobs()]

    def init_random(self, seed):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.layers:
                module.init_random(gen)

    def calibrate(self, inputs):
        """Run the net once so every BatchNorm takes the statistics of what reaches it (in net order, so
        each sees its predecessors' calibrated output). Returns whether there was a BatchNorm."""
        norms = [m for m in self.layers if isinstance(m, BatchNorm)]
        handles = [m.register_forward_pre_hook(lambda module, args: module.calibrate(args[0])) for m in norms]
        try:
            with torch.no_grad():
                if norms:
                    self(*inputs)
        finally:
            for handle in handles:
                handle.remove()
        return bool(norms)

    def load_weights(self, path):
        """Copy every learned blob from a tensor file or .npz; entries for other layers are ignored (as
        Caffe ignores them), a missing or misshapen blob is an error."""
        source = open_tensors(path)
        try:
            found = {}
            for entry in source.entries:
                found.setdefault(entry["name"], {})[int(entry.get("blob", 0))] = entry
            with torch.no_grad():
                for module in self.layers:
                    targets = module.caffe_blobs()
                    if not targets:
                        continue
                    have = found.get(module.caffe_name, {})
                    if sorted(have) != list(range(len(targets))):
                        raise RunnerError("weights", "%s: layer %r needs blobs 0..%d, the file has %s"
                                          % (path, module.caffe_name, len(targets) - 1, sorted(have) or "none"))
                    for index, target in enumerate(targets):
                        blob = source.read(have[index])
                        # Old caffemodels store every blob with 4 axes (1 x 1 x N x K): same count, same data.
                        if blob.numel() != target.numel():
                            raise RunnerError("weights", "%s: layer %r blob %d has shape %s, the net needs %s"
                                              % (path, module.caffe_name, index, list(blob.shape),
                                                 list(target.shape)))
                        target.copy_(blob.reshape(target.shape))
                    module.blobs_loaded()
        finally:
            source.close()


# --- variants ------------------------------------------------------------------------------------------

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# torch.compile modes that record CUDA graphs themselves (CUDA graph trees) on GPUs.
GRAPHING_COMPILE_MODES = ("reduce-overhead", "max-autotune")


def variant(args):
    """A short label of what runs: "fp32", "fp16+channels_last+cuda_graph", "bf16+compile_max_autotune+train_step"."""
    parts = [args.precision]
    if args.channels_last:
        parts.append("channels_last")
    if args.cuda_graph:
        parts.append("cuda_graph")
    if args.compile is not None:
        parts.append("compile" if args.compile == "default" else "compile_" + args.compile.replace("-", "_"))
    if args.mode == "train-step":
        parts.append("train_step")
    return "+".join(parts)


def check_variant(args, device):
    """The dtype of --precision; refuses (kind unsupported) before any work what this torch or device lacks."""
    if args.cuda_graph:
        if device.type != "cuda":
            raise RunnerError("unsupported", "--cuda-graph: CUDA graphs need a CUDA device, not --device %s"
                              % args.device)
        if not (hasattr(torch.cuda, "CUDAGraph") and hasattr(torch.cuda, "graph")):
            raise RunnerError("unsupported", "--cuda-graph: torch %s has no CUDA graphs (torch.cuda.CUDAGraph and "
                              "torch.cuda.graph came with torch 1.10)" % torch.__version__)
    if args.compile is not None and not hasattr(torch, "compile"):
        raise RunnerError("unsupported", "--compile: torch.compile came with torch 2.0; this is torch %s"
                          % torch.__version__)
    dtype = getattr(torch, PRECISIONS[args.precision], None)
    if dtype is None:
        raise RunnerError("unsupported", "--precision %s: torch %s has no %s"
                          % (args.precision, torch.__version__, PRECISIONS[args.precision]))
    if args.precision == "bf16" and device.type == "cuda":
        if hasattr(torch.cuda, "is_bf16_supported"):
            supported = torch.cuda.is_bf16_supported()
        else:
            # torch before 1.10 cannot tell; its bf16 CUDA kernels need Ampere (compute capability 8.0).
            supported = torch.cuda.get_device_capability(device)[0] >= 8
        if not supported:
            raise RunnerError("unsupported", "--precision bf16: torch %s does not support bfloat16 on %s "
                              "(compute capability %d.%d)" % ((torch.__version__, torch.cuda.get_device_name(device))
                                                             + tuple(torch.cuda.get_device_capability(device))))
    return dtype


def _is_batch_norm(module):
    return isinstance(module, (BatchNorm, nn.modules.batchnorm._BatchNorm))


def convert(net, dtype, channels_last):
    """net (in place) in dtype and memory format, as a careful script converts it: net.half() (or
    .bfloat16()), then the batch norms back to float32, as apex's BN_convert_float does: cuDNN's batch
    norm takes fp16 / bf16 data only with float32 statistics and affine parameters, and a mean stored in
    fp16 keeps 3 digits, which x - mean cancels. A CaffeNet BatchNorm's folded Scale goes with it. In a
    TorchScript module batch norms are not nn.BatchNorm instances any more: they convert with the rest."""
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if dtype != torch.float32:
        net.to(dtype)
        for module in net.modules():
            if _is_batch_norm(module):
                module.float()
                for scale in getattr(module, "folded", []):
                    scale.float()
    return net


def _to_net_format(x, dtype, channels_last):
    x = x.to(dtype)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class TrainStep(object):
    """One training iteration, as a Caffe solver's: forward, loss, backward, SGD step (lr 0.01, momentum
    0.9). The loss, in float32, is the cross-entropy of the net's first output against random labels
    (seeded, fixed for the run) when that output is [N, C], else the mean of its squares. A call returns
    the forward's outputs, detached; `loss` is the last loss, a device tensor (read once, at the end, so
    that no step waits for the device). Gradients are set to None rather than zeroed before each step
    (backward then writes them instead of adding), which also lets a CUDA graph capture the step."""

    def __init__(self, net, seed):
        params = [p for p in net.parameters() if p.requires_grad]
        if not params:
            raise RunnerError("usage", "--mode train-step: the net has no learned parameters to train")
        self.net = net
        self.optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        self.seed = seed
        self.labels = None
        self.loss = None

    def __call__(self, *inputs):
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.net(*inputs)
        first = outputs[0].float()
        if first.dim() == 2:
            if self.labels is None:
                gen = torch.Generator().manual_seed(self.seed)
                self.labels = torch.randint(first.shape[1], (first.shape[0],), generator=gen).to(first.device)
            loss = F.cross_entropy(first, self.labels)
        else:
            loss = (first * first).mean()
        loss.backward()
        self.optimizer.step()
        self.loss = loss.detach()
        return tuple(o.detach() for o in outputs)


class CudaGraph(object):
    """`forward` (an inference or a TrainStep) captured once in a CUDA graph over static inputs, after
    warm-up calls on a side stream (as torch's CUDA graph notes prescribe: lazy initialization, cuDNN
    autotuning and the optimizer's momentum buffers happen outside the capture). A call copies the inputs
    that are not the static ones into them (host span: straight from pinned host memory), replays the graph
    and returns the static outputs, which the next replay overwrites."""

    copies_inputs = True
    WARMUP_CALLS = 3

    def __init__(self, forward, static_inputs):
        self.inputs = static_inputs
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self.WARMUP_CALLS):
                forward(*static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = forward(*static_inputs)

    def __call__(self, *inputs):
        for static, x in zip(self.inputs, inputs):
            if x is not static:
                static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.outputs


# --- model sources -------------------------------------------------------------------------------------

class Model(object):
    """A net to measure. net: an nn.Module whose forward takes the inputs in order and returns a tuple.
    inputs: their declarations {"name", "shape"}, shape with a batch (the default one). returns: the
    outputs' names, None until the first outputs name them. source: netspec, torchvision or torchscript."""

    def __init__(self, net, inputs, returns, name, weights, source, build_s, calibration_s=None):
        self.net = net
        self.inputs = inputs
        self.returns = returns
        self.name = name
        self.weights = weights
        self.source = source
        self.build_s = build_s
        self.calibration_s = calibration_s


def _flatten_outputs(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flatten_outputs(item)]
    return []  # None (an absent auxiliary output) and other non-tensors


class FlatOutputs(nn.Module):
    """A module whose outputs (a tensor, or tuples, lists and dicts of them, as torchvision and TorchScript
    models return) come back as one flat tuple in order, as CaffeNet returns its blobs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return tuple(_flatten_outputs(self.model(*inputs)))


def _output_names(outputs):
    return ["output"] if len(outputs) == 1 else ["output%d" % i for i in range(len(outputs))]


def _image_input(args):
    return [{"name": "input", "shape": [1] + args.input_shape}]


def _load_netspec(args):
    with open(args.spec) as f:
        spec = json.load(f)
    t0 = time.perf_counter()
    net = CaffeNet(spec, [n for n in (args.dump_blobs or "").split(",") if n])
    if args.weights is not None:
        net.load_weights(args.weights)
    else:
        net.init_random(args.seed)
    build_s = time.perf_counter() - t0
    calibration_s = None
    if args.weights is None:
        t0 = time.perf_counter()
        if net.calibrate(_random_inputs(spec["inputs"], 1, args.seed + 2)):
            calibration_s = time.perf_counter() - t0
    if args.save_weights:
        write_tensors(args.save_weights, [({"name": name, "blob": i}, blob)
                                          for name, blobs in net.named_blobs() for i, blob in enumerate(blobs)])
    weights = args.weights if args.weights is not None else "random (seed %d)" % args.seed
    return Model(net, spec["inputs"], list(net.returns), spec.get("name"), weights, "netspec", build_s,
                 calibration_s)


def _load_torchvision(args):
    try:
        import torchvision
    except ImportError as e:
        raise RunnerError("unavailable", "--torchvision: torchvision does not import on this board (%s): install "
                          "the torchvision release that matches torch %s (pip3 install torchvision, or "
                          "NVIDIA's build on Jetsons)" % (e, torch.__version__))
    models = torchvision.models
    if hasattr(models, "get_model"):
        # torchvision 0.14+: a registry of every model, classification and others.
        known = models.list_models()
    else:
        known = [n for n in dir(models) if not n.startswith("_") and inspect.isfunction(getattr(models, n))]
    if args.torchvision not in known:
        raise RunnerError("usage", "--torchvision: torchvision %s has no model %r (it has %s)"
                          % (torchvision.__version__, args.torchvision, ", ".join(sorted(known))))
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    # Random weights: weights=None since torchvision 0.13 (pretrained=False warns there), pretrained=False before.
    if hasattr(models, "get_model"):
        model = models.get_model(args.torchvision, weights=None)
    elif hasattr(models, "get_weight"):
        model = getattr(models, args.torchvision)(weights=None)
    else:
        model = getattr(models, args.torchvision)(pretrained=False)
    return Model(FlatOutputs(model), _image_input(args), None, args.torchvision,
                 "random (seed %d, torchvision %s)" % (args.seed, torchvision.__version__), "torchvision",
                 time.perf_counter() - t0)


def _load_torchscript(args):
    t0 = time.perf_counter()
    try:
        model = torch.jit.load(args.torchscript, map_location="cpu")
    except (RuntimeError, ValueError, OSError) as e:
        raise RunnerError("spec", "--torchscript %s: torch %s cannot load it: %s"
                          % (args.torchscript, torch.__version__, str(e).strip().splitlines()[0]))
    return Model(FlatOutputs(model), _image_input(args), None, os.path.basename(args.torchscript),
                 args.torchscript, "torchscript", time.perf_counter() - t0)


def load_model(args):
    if args.torchvision is not None:
        return _load_torchvision(args)
    if args.torchscript is not None:
        return _load_torchscript(args)
    return _load_netspec(args)


# --- measurement ---------------------------------------------------------------------------------------

def _grad_off():
    # inference_mode (torch 1.9+) skips autograd's bookkeeping that no_grad still does.
    return torch.inference_mode() if hasattr(torch, "inference_mode") else torch.no_grad()


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(forward, device, span, device_inputs, host_inputs):
    """A function running one iteration of `forward` (an inference, a TrainStep, a CudaGraph replay) and
    returning (its time in ms, the outputs)."""
    if device.type == "cuda" and span == "compute":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def step():
            start.record()
            outputs = forward(*device_inputs)
            end.record()
            end.synchronize()
            return start.elapsed_time(end), outputs
        return step
    if device.type == "cuda":
        copies = getattr(forward, "copies_inputs", False)

        def step():
            t0 = time.perf_counter()
            inputs = host_inputs if copies else [x.to(device, non_blocking=True) for x in host_inputs]
            outputs = tuple(o.to("cpu") for o in forward(*inputs))
            torch.cuda.synchronize(device)
            return (time.perf_counter() - t0) * 1e3, outputs
        return step

    def step():
        t0 = time.perf_counter()
        outputs = forward(*device_inputs)
        return (time.perf_counter() - t0) * 1e3, outputs
    return step


def compile_call(forward, inputs, device):
    """The first call of a torch.compile'd forward, which compiles it; returns its seconds. A failure there
    is the board's (no C compiler for Inductor, a Python that dynamo does not support...): kind unsupported."""
    t0 = time.perf_counter()
    try:
        forward(*inputs)
        _synchronize(device)
    except Exception as e:
        if _is_oom(e):
            raise
        traceback.print_exc()
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise RunnerError("unsupported", "--compile: torch.compile failed with torch %s: %s: %s"
                          % (torch.__version__, type(e).__name__, first_line[:500]))
    return time.perf_counter() - t0


def _device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return board_timing.cpu_name()


def nvml_memory(device):
    """nvidia-smi's view of `device` (board_timing.nvml_memory), matched by the UUID torch 2.x gives."""
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    return board_timing.nvml_memory(None if uuid is None else str(uuid))


def _memory_report(device):
    report = {"allocator_peak_bytes": None, "allocator_reserved_bytes": None,
              "process_rss_peak_bytes": board_timing.rss_peak_bytes(), "nvml_process_bytes": None,
              "nvml_device_used_bytes": None}
    if device.type == "cuda":
        # Peaks over the whole run (load included); reserved is what the caching allocator held.
        report["allocator_peak_bytes"] = torch.cuda.max_memory_allocated(device)
        report["allocator_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
        # At the end of the run, with everything still held: the caching allocator's pool, the CUDA
        # context and the libraries' workspaces, which the allocator figures leave out.
        report["nvml_process_bytes"], report["nvml_device_used_bytes"] = nvml_memory(device)
    return report


def _random_inputs(decls, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn([batch] + list(i["shape"][1:]), generator=gen) for i in decls]


def _inputs(decls, args, batch):
    """The input tensors (CPU, float32) in declaration order: from --input, or standard normal from seed + 1."""
    if args.input is None:
        return _random_inputs(decls, batch, args.seed + 1)
    shapes = [[batch] + list(i["shape"][1:]) for i in decls]
    source = open_tensors(args.input)
    try:
        by_name = {e["name"]: e for e in source.entries}
        tensors = []
        for decl, shape in zip(decls, shapes):
            if decl["name"] not in by_name:
                raise RunnerError("input", "%s has no tensor named %r" % (args.input, decl["name"]))
            tensor = source.read(by_name[decl["name"]])
            if list(tensor.shape) != shape:
                raise RunnerError("input", "%s: %r has shape %s, the net needs %s at batch %d"
                                  % (args.input, decl["name"], list(tensor.shape), shape, batch))
            tensors.append(tensor)
        return tensors
    finally:
        source.close()


def _batch(decls, args):
    if args.batch is not None:
        return args.batch
    if args.input is not None:
        source = open_tensors(args.input)
        source.close()
        for entry in source.entries:
            if entry["name"] == decls[0]["name"]:
                return int(entry["shape"][0])
    return int(decls[0]["shape"][0])


def _pinned(x):
    # A pinned copy with x's strides (channels_last stays channels_last): the host-to-device copy keeps them.
    return torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, pin_memory=True).copy_(x)


def _setup_device(args):
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RunnerError("usage", "--device %s: torch sees no CUDA device" % args.device)
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
        # TF32 (Ampere and later) rounds fp32 convolutions and matmuls to 10-bit mantissas: off unless asked.
        if hasattr(torch.backends.cudnn, "allow_tf32"):
            torch.backends.cudnn.allow_tf32 = args.tf32
            torch.backends.cuda.matmul.allow_tf32 = args.tf32
    return device


def run(args):
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = _setup_device(args)
    dtype = check_variant(args, device)
    train = args.mode == "train-step"
    model = load_model(args)
    batch = _batch(model.inputs, args)
    inputs = _inputs(model.inputs, args, batch)
    if args.save_input:
        write_tensors(args.save_input, [({"name": d["name"]}, x) for d, x in zip(model.inputs, inputs)])

    t0 = time.perf_counter()
    net = convert(model.net.to(device), dtype, args.channels_last)
    net.train(train)
    _synchronize(device)
    load_s = model.build_s + time.perf_counter() - t0

    inputs = [_to_net_format(x, dtype, args.channels_last) for x in inputs]
    host_inputs = inputs
    if device.type == "cuda" and args.span == "host":
        host_inputs = [_pinned(x) for x in inputs]
    device_inputs = [x.to(device) for x in inputs]
    _synchronize(device)

    forward = net
    if args.compile is not None:
        forward = torch.compile(net, mode=None if args.compile == "default" else args.compile)
    trainer = None
    if train:
        forward = trainer = TrainStep(forward, args.seed + 3)
    compile_s = capture_s = loss = None
    with (torch.enable_grad() if train else _grad_off()):
        if args.compile is not None:
            compile_s = compile_call(forward, device_inputs, device)
        step = make_step(forward, device, args.span, device_inputs, host_inputs)
        t0 = time.perf_counter()
        first_outputs = step()[1]
        _synchronize(device)
        first_ms = (time.perf_counter() - t0) * 1e3
        returns = model.returns or _output_names(first_outputs)
        if args.dump_output:
            # Now: the outputs of a compiled forward that records CUDA graphs are overwritten by its next call.
            write_tensors(args.dump_output, [({"name": name}, out) for name, out in zip(returns, first_outputs)])
        del first_outputs
        if trainer is not None:
            loss = {"first": trainer.loss.item(), "last": None}
        if args.cuda_graph:
            t0 = time.perf_counter()
            forward = CudaGraph(forward, device_inputs)
            _synchronize(device)
            capture_s = time.perf_counter() - t0
            step = make_step(forward, device, args.span, device_inputs, host_inputs)
        times, window, reason, warmup = board_timing.measure(step, args)
        if trainer is not None and times:
            loss["last"] = trainer.loss.item()

    result = {
        "load_s": load_s,
        "calibration_s": model.calibration_s,
        "compile_s": compile_s,
        "cuda_graph_capture_s": capture_s,
        "first_inference_ms": first_ms,
        "first_inference_timer": "perf_counter",
    }
    result.update(board_timing.timing_report(times, window, reason, warmup, batch))
    result.update({
        "memory": _memory_report(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python_version": platform.python_version(),
        "device": str(device),
        "device_name": _device_name(device),
        "threads": torch.get_num_threads(),
        "span": args.span,
        "timer": "cuda_event" if device.type == "cuda" and args.span == "compute" else "perf_counter",
        "net": model.name,
        "batch": batch,
        "outputs": returns,
        "weights": model.weights,
        "variant": variant(args),
        "loss": loss,
        "settings": dict(
            board_timing.timing_settings(args), batch=batch, seed=args.seed, threads=args.threads,
            span=args.span, precision=args.precision, channels_last=args.channels_last,
            cuda_graph=args.cuda_graph, compile=args.compile, mode=args.mode, source=model.source,
            input_shape=args.input_shape,
            cudnn_benchmark=args.cudnn_benchmark if device.type == "cuda" else None,
            tf32=args.tf32 if device.type == "cuda" else None,
            grad_mode="enabled" if train else "inference_mode" if hasattr(torch, "inference_mode") else "no_grad"),
    })
    return result


def _shape(text):
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        dims = []
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError("%r is not a shape like 3,224,224" % text)
    return dims


def parse_args(argv):
    p = board_timing.JsonUsageParser(description="Time a net in PyTorch: a Caffe net from an edgeprof netspec, "
                                                 "a torchvision model or a TorchScript module.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="netspec JSON written by edgeprof")
    source.add_argument("--torchvision", metavar="NAME", help="torchvision.models.NAME with seeded random weights")
    source.add_argument("--torchscript", metavar="FILE", help="a TorchScript module saved by torch.jit.save")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                   help="input shape without the batch for --torchvision and --torchscript (default 3,224,224)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, help="batch size (default: the input file's, else the spec's, else 1)")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32",
                   help="the module and inputs in this dtype (batch norms keep float32 parameters)")
    p.add_argument("--channels-last", action="store_true", help="module and 4-D inputs in channels_last memory format")
    p.add_argument("--cuda-graph", action="store_true", help="capture one iteration in a CUDA graph and time replays")
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the module (--compile=MODE: %s)" % ", ".join(COMPILE_MODES))
    p.add_argument("--mode", choices=("inference", "train-step"), default="inference",
                   help="time inferences, or training steps (forward, loss, backward, SGD step)")
    board_timing.add_timing_arguments(p)
    p.add_argument("--span", choices=("compute", "host"), default="compute")
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--weights", help="edgeprof tensor file or .npz of Caffe blobs")
    p.add_argument("--seed", type=int, default=0, help="random weights (without --weights) and input")
    p.add_argument("--input", help="edgeprof tensor file holding the inputs by name")
    p.add_argument("--dump-output", help="write the first inference's outputs to this tensor file")
    p.add_argument("--dump-blobs", help="comma-separated blobs to dump with the outputs")
    p.add_argument("--save-weights", help="write the net's weights (Caffe blob order) to this tensor file")
    p.add_argument("--save-input", help="write the input to this tensor file")
    p.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                   help="do not let cuDNN autotune convolutions on the first inference")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for fp32 convolutions and matmuls")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = p.parse_args(argv)
    for name in ("batch", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error("--%s must be at least 1" % name)
    board_timing.check_timing_arguments(p, args)
    if args.spec is not None:
        if args.input_shape is not None:
            p.error("--input-shape is for --torchvision and --torchscript: a netspec declares its inputs")
    else:
        for name in ("weights", "dump_blobs", "save_weights"):
            if getattr(args, name) is not None:
                p.error("--%s is about Caffe blobs: it needs --spec" % name.replace("_", "-"))
        if args.input_shape is None:
            args.input_shape = [3, 224, 224]
    if args.cuda_graph and args.compile in GRAPHING_COMPILE_MODES:
        p.error("--compile=%s records CUDA graphs itself: drop --cuda-graph, or use plain --compile with it"
                % args.compile)
    return args


def _summary_lines(obj):
    return ["%s batch %d on %s (%s), %s, %s, span %s, timer %s"
            % (obj["net"], obj["batch"], obj["device_name"], obj["device"], obj["variant"],
               obj["settings"]["mode"], obj["span"], obj["timer"]),
            "load %.3f s, %sfirst inference %.3f ms"
            % (obj["load_s"], "" if obj["compile_s"] is None else "compile %.3f s, " % obj["compile_s"],
               obj["first_inference_ms"])]


def _is_oom(error):
    text = str(error)
    return isinstance(error, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def _lacks_dtype_kernel(error):
    # Old torch, and torch's CPU kernels still, lack fp16 / bf16 versions of some operations:
    # '"slow_conv2d_cpu" not implemented for 'Half''.
    text = str(error)
    return "not implemented for 'Half'" in text or "not implemented for 'BFloat16'" in text


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except RunnerError as e:
        board_timing.emit({"error": str(e), "kind": e.kind}, args.json, _summary_lines)
        return 1
    except Exception as e:
        traceback.print_exc()
        if args.precision != "fp32" and _lacks_dtype_kernel(e):
            board_timing.emit({"error": "--precision %s on %s: torch %s lacks an operation in that dtype: %s"
                               % (args.precision, args.device, torch.__version__, e), "kind": "unsupported",
                               "torch_version": torch.__version__}, args.json, _summary_lines)
            return 1
        board_timing.emit({"error": "%s: %s" % (type(e).__name__, e), "kind": "oom" if _is_oom(e) else "runtime",
                           "torch_version": torch.__version__}, args.json, _summary_lines)
        return 3 if _is_oom(e) else 1
    board_timing.emit(result, args.json, _summary_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
