#!/usr/bin/env python3
"""edgeprof's PyTorch runner: builds a Caffe net from edgeprof's netspec JSON and times it. Runs ON the board.

Uploaded as this single file next to the JSON (edgeprof.backends.pytorch.netspec writes it) and run as

    python3 board_runner.py --spec net.json --device cpu|cuda --batch N [--iterations N] --json

It needs Python 3.6+, the standard library and torch (1.x on JetPack 4.6 boards, 2.x elsewhere) and
nothing else: no numpy, no edgeprof. So: no dataclasses, no `from __future__ import annotations`, no
f-strings with `=`, nothing from the standard library newer than 3.6.

The network
    One module per Caffe layer, each written to Caffe's semantics (the class docstrings say how): Caffe's
    pooling sizes and AVE divisor, Caffe's LRN, BatchNorm's stored moving-average factor, Scale, Eltwise
    coefficients, InnerProduct flattening from its axis. Blobs flow by name in file order, so in-place
    layers and Caffe's reading of a blob after an in-place layer rewrote it behave as in Caffe; a blob is
    released after its last reader. Runs in float32 with TF32 off unless --tf32.

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

Timing (FIELD.md section 1)
    first inference: the first forward after load, host clock + synchronize, reported on its own.
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

Output: one JSON object on stdout (--json), or a short summary. Any error (an op the runner lacks, out
of memory, a bad file) is a JSON object {"error", "kind", ...} on stdout and a non-zero exit status.
"""
import argparse
import ast
import ctypes
import json
import math
import platform
import statistics
import sys
import time
import traceback
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

SPEC_FORMAT = "edgeprof-netspec"
SPEC_VERSION = 1
TENSOR_FORMAT = "edgeprof-tensors"
TENSOR_VERSION = 1
# The moving-average factor stored with random BatchNorm statistics: Caffe accumulates it as
# f = 0.999 f + 1 per training iteration, so trained models carry about 1 / (1 - 0.999).
BN_FACTOR = 999.982
FLT_MAX = 3.4028234663852886e38


class RunnerError(Exception):
    """An error reported as JSON; kind is one of spec, unsupported, weights, input, usage."""

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
    explicitly (-FLT_MAX for MAX, the value Caffe starts from; 0 for AVE, then divided by Caffe's
    divisors) and pooled without padding."""

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
            counts = [[min(o * s - p + k, n + p) - (o * s - p) for o in range(out)] for n, k, s, p, out in axes]
            self.register_buffer("divisor", torch.tensor(counts[0], dtype=torch.float32)[:, None]
                                 * torch.tensor(counts[1], dtype=torch.float32)[None, :])

    def forward(self, x):
        if self.explicit_pad is None:
            if self.is_max:
                return F.max_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil_mode)
            return F.avg_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil_mode,
                                count_include_pad=True)
        if self.is_max:
            return F.max_pool2d(F.pad(x, self.explicit_pad, value=-FLT_MAX), self.kernel, self.stride)
        summed = F.avg_pool2d(F.pad(x, self.explicit_pad), self.kernel, self.stride, divisor_override=1)
        return summed / self.divisor


class LRN(CaffeLayer):
    """ACROSS_CHANNELS: x / (k + alpha / n * sum of x^2 over the n channels centred on c, zero beyond the
    edges)^beta: torch's local_response_norm, which pads size // 2 before and (size - 1) // 2 after, the
    same for the odd sizes Caffe allows. WITHIN_CHANNEL: Caffe ignores k there and computes
    x * (1 + alpha * mean of x^2 over the n x n window, padding counted)^-beta."""

    def __init__(self, spec):
        super().__init__(spec)
        self.size = spec["local_size"]
        self.alpha = spec["alpha"]
        self.beta = spec["beta"]
        self.k = spec["k"]
        self.across = spec["norm_region"] == "ACROSS_CHANNELS"

    def forward(self, x):
        if self.across:
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        mean = F.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, count_include_pad=True)
        return x * torch.pow(1 + self.alpha * mean, -self.beta)


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
        if self.use_global_stats:
            return F.batch_norm(x, self.mean, self.var, None, None, False, 0.0, self.eps)
        return F.batch_norm(x, None, None, None, None, True, 0.0, self.eps)


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
    """The identity: Caffe's dropout scales during training only."""

    def forward(self, x):
        return x


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


class CaffeNet(nn.Module):
    """The net of a netspec. forward(*inputs) takes the inputs in spec order and returns the blobs named
    in `returns` (the net's outputs, then `extra` blobs), as a tuple."""

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
        self.plan = [(layer["bottoms"], layer["tops"]) for layer in spec["layers"]]
        # Blobs to drop after each layer: those no later layer reads and that are not returned.
        last_read = {}
        for index, (bottoms, _) in enumerate(self.plan):
            for name in bottoms:
                last_read[name] = index
        self.release = [[] for _ in self.plan]
        for name, index in last_read.items():
            if name not in self.returns:
                self.release[index].append(name)

    def forward(self, *inputs):
        blobs = dict(zip(self.input_names, inputs))
        for layer, (bottoms, tops), release in zip(self.layers, self.plan, self.release):
            out = layer(*[blobs[name] for name in bottoms])
            if isinstance(out, tuple):
                blobs.update(zip(tops, out))
            else:
                blobs[tops[0]] = out
            for name in release:
                # A name read here may have been rewritten here (in place) and be read no more.
                blobs.pop(name, None)
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


# --- statistics ----------------------------------------------------------------------------------------

def percentile(ordered, p):
    """Linear interpolation between closest ranks (numpy's default) of a sorted list."""
    rank = (len(ordered) - 1) * p / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_ci(ordered, confidence=0.95):
    """Distribution-free confidence interval of the median: [x(k), x(n-k+1)] (1-based) with k the largest
    rank such that P(B <= k - 1) <= (1 - confidence) / 2 for B ~ binomial(n, 1/2); its coverage is at least
    `confidence`. None when n is too small (under 6 samples at 95 %)."""
    n = len(ordered)
    tail = (1 - confidence) / 2
    log_half_n = n * math.log(0.5)
    cumulative = 0.0
    k = 0
    while k < n:
        cumulative += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)
        if cumulative > tail:
            break
        k += 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def summarize(times):
    ordered = sorted(times)
    median = percentile(ordered, 50)
    ci = median_ci(ordered)
    return {
        "latency_ms": {
            "median": median,
            "mean": statistics.mean(ordered),
            "p90": percentile(ordered, 90),
            "p95": percentile(ordered, 95),
            "p99": percentile(ordered, 99),
            "min": ordered[0],
            "max": ordered[-1],
            "stdev": statistics.stdev(ordered) if len(ordered) > 1 else None,
            "iqr": percentile(ordered, 75) - percentile(ordered, 25),
        },
        "ci95_ms": list(ci) if ci else None,
        "ci_rel": max(median - ci[0], ci[1] - median) / median if ci and median > 0 else None,
    }


# --- measurement ---------------------------------------------------------------------------------------

def _grad_off():
    # inference_mode (torch 1.9+) skips autograd's bookkeeping that no_grad still does.
    return torch.inference_mode() if hasattr(torch, "inference_mode") else torch.no_grad()


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(net, device, span, device_inputs, host_inputs):
    """A function running one inference and returning (its time in ms, the outputs)."""
    if device.type == "cuda" and span == "compute":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def step():
            start.record()
            outputs = net(*device_inputs)
            end.record()
            end.synchronize()
            return start.elapsed_time(end), outputs
        return step
    if device.type == "cuda":
        def step():
            t0 = time.perf_counter()
            inputs = [x.to(device, non_blocking=True) for x in host_inputs]
            outputs = tuple(o.to("cpu") for o in net(*inputs))
            torch.cuda.synchronize(device)
            return (time.perf_counter() - t0) * 1e3, outputs
        return step

    def step():
        t0 = time.perf_counter()
        outputs = net(*device_inputs)
        return (time.perf_counter() - t0) * 1e3, outputs
    return step


def measure(step, args):
    """Warm-up, then the timed iterations; returns (times in ms, window dict, stop reason, warm-up count).
    With --iterations 0 nothing runs."""
    if args.iterations == 0:
        return [], None, None, 0
    warmup = 0
    t0 = time.perf_counter()
    while warmup < args.warmup or time.perf_counter() - t0 < args.warmup_s:
        step()
        warmup += 1
    times = []
    window = {"start_s": time.time()}
    start = time.perf_counter()
    next_check = args.min_iterations
    reason = "forced"
    while args.iterations is None or len(times) < args.iterations:
        times.append(step()[0])
        if args.iterations is not None:
            continue
        elapsed = time.perf_counter() - start
        if elapsed >= args.max_time_s:
            reason = "time_cap"
            break
        if len(times) >= next_check and elapsed >= args.min_time_s:
            stats = summarize(times)
            if stats["ci_rel"] is not None and stats["ci_rel"] <= args.target_ci:
                reason = "converged"
                break
            # Sorting every iteration would cost O(n log n) each time: check as n grows by a tenth.
            next_check = len(times) + max(1, len(times) // 10)
    window["end_s"] = time.time()
    window["wall_s"] = time.perf_counter() - start
    return times, window, reason, warmup


def _device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("model name", "Hardware"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rss_peak_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_report(device):
    report = {"allocator_peak_bytes": None, "allocator_reserved_bytes": None,
              "process_rss_peak_bytes": _rss_peak_bytes()}
    if device.type == "cuda":
        # Peaks over the whole run (load included); reserved is what the caching allocator held.
        report["allocator_peak_bytes"] = torch.cuda.max_memory_allocated(device)
        report["allocator_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
    return report


def _random_inputs(spec, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn([batch] + list(i["shape"][1:]), generator=gen) for i in spec["inputs"]]


def _inputs(spec, args, batch):
    """The input tensors (CPU, float32) in spec order: from --input, or standard normal from seed + 1."""
    if args.input is None:
        return _random_inputs(spec, batch, args.seed + 1)
    shapes = [[batch] + list(i["shape"][1:]) for i in spec["inputs"]]
    source = open_tensors(args.input)
    try:
        by_name = {e["name"]: e for e in source.entries}
        tensors = []
        for decl, shape in zip(spec["inputs"], shapes):
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


def _batch(spec, args):
    if args.batch is not None:
        return args.batch
    if args.input is not None:
        source = open_tensors(args.input)
        source.close()
        for entry in source.entries:
            if entry["name"] == spec["inputs"][0]["name"]:
                return int(entry["shape"][0])
    return int(spec["inputs"][0]["shape"][0])


def run(args):
    with open(args.spec) as f:
        spec = json.load(f)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
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
    batch = _batch(spec, args)
    extra = [n for n in (args.dump_blobs or "").split(",") if n]
    inputs = _inputs(spec, args, batch)

    t0 = time.perf_counter()
    net = CaffeNet(spec, extra).eval()
    if args.weights is not None:
        net.load_weights(args.weights)
    else:
        net.init_random(args.seed)
    build_s = time.perf_counter() - t0
    calibration_s = None
    if args.weights is None:
        t0 = time.perf_counter()
        if net.calibrate(_random_inputs(spec, 1, args.seed + 2)):
            calibration_s = time.perf_counter() - t0
    if args.save_weights:
        write_tensors(args.save_weights, [({"name": name, "blob": i}, blob)
                                          for name, blobs in net.named_blobs() for i, blob in enumerate(blobs)])
    if args.save_input:
        write_tensors(args.save_input, [({"name": d["name"]}, x) for d, x in zip(spec["inputs"], inputs)])

    t0 = time.perf_counter()
    net.to(device)
    _synchronize(device)
    load_s = build_s + time.perf_counter() - t0

    host_inputs = inputs
    if device.type == "cuda" and args.span == "host":
        host_inputs = [x.pin_memory() for x in inputs]
    device_inputs = [x.to(device) for x in inputs]
    _synchronize(device)
    step = make_step(net, device, args.span, device_inputs, host_inputs)

    with _grad_off():
        t0 = time.perf_counter()
        first_outputs = step()[1]
        _synchronize(device)
        first_ms = (time.perf_counter() - t0) * 1e3
        times, window, reason, warmup = measure(step, args)
        if args.dump_output:
            write_tensors(args.dump_output, [({"name": name}, out) for name, out in zip(net.returns, first_outputs)])

    result = {
        "load_s": load_s,
        "calibration_s": calibration_s,
        "first_inference_ms": first_ms,
        "first_inference_timer": "perf_counter",
    }
    result.update(summarize(times) if times else {"latency_ms": None, "ci95_ms": None, "ci_rel": None})
    result.update({
        "iterations": len(times),
        "warmup_iterations": warmup,
        "stop_reason": reason,
        "timed_window": {"start_s": window["start_s"], "end_s": window["end_s"]} if times else None,
        "throughput_ips": batch * len(times) / window["wall_s"] if times else None,
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
        "net": spec.get("name"),
        "batch": batch,
        "outputs": net.returns,
        "weights": args.weights if args.weights is not None else "random (seed %d)" % args.seed,
        "settings": {
            "batch": batch, "iterations": args.iterations, "warmup": args.warmup, "warmup_s": args.warmup_s,
            "min_iterations": args.min_iterations, "min_time_s": args.min_time_s,
            "max_time_s": args.max_time_s, "target_ci": args.target_ci, "seed": args.seed,
            "threads": args.threads, "span": args.span, "precision": "fp32",
            "cudnn_benchmark": args.cudnn_benchmark if device.type == "cuda" else None,
            "tf32": args.tf32 if device.type == "cuda" else None,
            "grad_mode": "inference_mode" if hasattr(torch, "inference_mode") else "no_grad",
        },
    })
    return result


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # Usage errors come back as JSON too, so the host parses one format.
        _emit({"error": message, "kind": "usage"}, True)
        sys.exit(2)


def parse_args(argv):
    p = _Parser(description="Build a Caffe net from an edgeprof netspec in PyTorch and time it.")
    p.add_argument("--spec", required=True, help="netspec JSON written by edgeprof")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, help="batch size (default: the input file's, else the spec's)")
    p.add_argument("--iterations", type=int, help="run exactly N timed iterations (0: none)")
    p.add_argument("--warmup", type=int, default=3, help="minimum warm-up iterations")
    p.add_argument("--warmup-s", type=float, default=1.0, help="minimum warm-up seconds")
    p.add_argument("--min-iterations", type=int, default=20)
    p.add_argument("--min-time-s", type=float, default=1.0)
    p.add_argument("--max-time-s", type=float, default=30.0, help="stop the timed iterations after this")
    p.add_argument("--target-ci", type=float, default=0.01,
                   help="stop once the median's 95%% CI is within this fraction of the median")
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
    if args.iterations is not None and args.iterations < 0:
        p.error("--iterations must be at least 0")
    if args.min_iterations < 1 or args.max_time_s <= 0 or args.target_ci <= 0:
        p.error("--min-iterations, --max-time-s and --target-ci must be positive")
    return args


def _emit(obj, as_json):
    if as_json:
        print(json.dumps(obj))
    elif "error" in obj:
        print("error (%s): %s" % (obj["kind"], obj["error"]))
    else:
        lat = obj["latency_ms"] or {}
        print("%s batch %d on %s (%s), span %s, timer %s" % (obj["net"], obj["batch"], obj["device_name"],
                                                           obj["device"], obj["span"], obj["timer"]))
        print("load %.3f s, first inference %.3f ms" % (obj["load_s"], obj["first_inference_ms"]))
        if lat:
            print("median %.3f ms (95%% CI %s), p90 %.3f, p99 %.3f, %d iterations (%s), %.1f inferences/s"
                  % (lat["median"], obj["ci95_ms"], lat["p90"], lat["p99"], obj["iterations"],
                     obj["stop_reason"], obj["throughput_ips"]))
    sys.stdout.flush()


def _is_oom(error):
    text = str(error)
    return isinstance(error, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except RunnerError as e:
        _emit({"error": str(e), "kind": e.kind}, args.json)
        return 1
    except Exception as e:
        traceback.print_exc()
        _emit({"error": "%s: %s" % (type(e).__name__, e), "kind": "oom" if _is_oom(e) else "runtime",
               "torch_version": torch.__version__}, args.json)
        return 3 if _is_oom(e) else 1
    _emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
