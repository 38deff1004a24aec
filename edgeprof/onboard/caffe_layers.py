"""The Caffe layers and CaffeNet in PyTorch: the net of an edgeprof netspec (edgeprof.models.netspec resolves
the deploy prototxt on the host), built to Caffe's semantics. Runs ON the board, imported by torch_runner.py
from the work folder; the host imports it as edgeprof.onboard.caffe_layers to build the same net for the
ONNX export and for `edgeprof check`. Python 3.6+ and torch (1.x on JetPack 4.6 boards).

The network
    One module per Caffe layer, each written to Caffe's semantics (the class docstrings say how, after
    Caffe's layer sources, https://github.com/BVLC/caffe/tree/master/src/caffe/layers): Caffe's pooling
    sizes and AVE divisor, Caffe's LRN, BatchNorm's stored moving-average factor, Scale, Eltwise
    coefficients, InnerProduct flattening from its axis. Blobs flow by name in file order, so in-place
    layers and Caffe's reading of a blob after an in-place layer rewrote it behave as in Caffe; a blob is
    released after its last reader. A BatchNorm whose output a per-channel Scale rewrites in place runs as
    one affine batch norm with it, as a PyTorch net would write it.

Weights (in Caffe's blob order per layer, e.g. a Convolution's [weight, bias])
    load_weights(FILE): an edgeprof tensor file (tensors.py) with entries {"name": layer, "blob": index}, or
        a .npz whose arrays are named "<layer>/<index>" (np.savez(f, **{"conv1/0": w, "conv1/1": b})).
    init_random(seed): deterministic random weights for a given torch version, generated on the CPU
        whatever the device: Convolution and InnerProduct weights He-normal (std sqrt(2 / fan_in), fan_in =
        input channels / group x kernel area, or input features; He et al. 2015,
        https://arxiv.org/abs/1502.01852), their biases uniform in [-0.1, 0.1); Scale factors uniform in
        [0.5, 1.5) and biases uniform in [-0.1, 0.1). calibrate(inputs): BatchNorm statistics of a random
        image (the per-channel mean and variance of what reaches the layer, so activations stay near unit
        scale through deep nets instead of exploding), stored multiplied by 999.982 with that factor as
        third blob, as trained Caffe models carry it.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

if __package__:
    from .harness import RunnerError
    from .tensors import open_tensors
else:
    from harness import RunnerError
    from tensors import open_tensors

SPEC_FORMAT = "edgeprof-netspec"
SPEC_VERSION = 1
# The moving-average factor stored with random BatchNorm statistics: Caffe accumulates it as
# f = 0.999 f + 1 per training iteration, so trained models carry about 1 / (1 - 0.999).
BN_FACTOR = 999.982
FLT_MAX = 3.4028234663852886e38


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
