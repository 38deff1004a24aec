"""The Caffe layers and CaffeNet in PyTorch: the net of an edgeprof netspec (edgeprof.models.netspec resolves
the deploy prototxt on the host), built to Caffe's semantics. Runs ON the board, imported by torch_runner.py
from the work folder; the host imports it as edgeprof.onboard.caffe_layers to build the same net for the
ONNX export and for `edgeprof check`. Python 3.6+ and torch (1.x on JetPack 4.6 boards).

The network
    One module per Caffe layer, each written to Caffe's semantics (the class docstrings say how, after
    Caffe's layer sources, https://github.com/BVLC/caffe/tree/master/src/caffe/layers): Caffe's pooling
    sizes and AVE divisor, Caffe's LRN, BatchNorm's stored moving-average factor, Scale, Eltwise
    coefficients, InnerProduct flattening from its axis. The fork layers (BN, Upsample, Permute, Normalize,
    PriorBox, DetectionOutput, ShuffleChannel, Axpy, ReLU6) follow their forks' published sources, cited
    in each class. Blobs flow by name in file order, so in-place layers and Caffe's reading of a blob after
    an in-place layer rewrote it behave as in Caffe; a blob is released after its last reader. A BatchNorm whose output a per-channel Scale rewrites in place runs as
    one affine batch norm with it, as a PyTorch net would write it.

Weights (in Caffe's blob order per layer, e.g. a Convolution's [weight, bias])
    load_weights(FILE): an edgeprof tensor file (tensors.py) with entries {"name": layer, "blob": index}, or
        a .npz whose arrays are named "<layer>/<index>" (np.savez(f, **{"conv1/0": w, "conv1/1": b})).
    init_random(seed): deterministic random weights for a given torch version, generated on the CPU
        whatever the device: Convolution and InnerProduct weights He-normal (std sqrt(2 / fan_in), fan_in =
        input channels / group x kernel area, or input features; He et al. 2015,
        https://arxiv.org/abs/1502.01852), their biases uniform in [-0.1, 0.1); Scale factors uniform in
        [0.5, 1.5) and biases uniform in [-0.1, 0.1); Deconvolution, PReLU, Bias, BN and Normalize as their
        class docstrings say. calibrate(inputs): BatchNorm statistics of a random
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


class Deconvolution(Convolution):
    """nn.ConvTranspose2d: Caffe's DeconvolutionLayer is the convolution's backward pass with the same
    weight layout as torch's, [in, out / group, kh, kw], and output stride (in - 1) + dilation (k - 1) + 1 -
    2 pad. Random weights: He-normal over what reaches one output, in / group x kernel area / stride area
    (about the taps that overlap), biases as Convolution's."""

    def __init__(self, spec):
        CaffeLayer.__init__(self, spec)
        self.conv = nn.ConvTranspose2d(spec["in_channels"], spec["num_output"], tuple(spec["kernel"]),
                                       stride=tuple(spec["stride"]), padding=tuple(spec["pad"]),
                                       dilation=tuple(spec["dilation"]), groups=spec["group"],
                                       bias=spec["bias_term"])
        overlap = max(1, spec["kernel"][0] // spec["stride"][0]) * max(1, spec["kernel"][1] // spec["stride"][1])
        self.fan_in = spec["in_channels"] // spec["group"] * overlap


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
        self.mask = spec.get("mask", False)
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
        if self.mask:
            return self._with_mask(x)
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

    def _with_mask(self, x):
        """MAX pooling and Caffe's mask top: the position h * W + w in the input plane of each maximum (as
        a float blob), the first one in a window on ties, as torch's indices are."""
        if self.explicit_pad is None:
            out, index = F.max_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil_mode,
                                      return_indices=True)
            return out, index.to(x.dtype)
        left, top = self.explicit_pad[0], self.explicit_pad[2]
        padded = F.pad(x, self.explicit_pad, value=torch.finfo(x.dtype).min)
        out, index = F.max_pool2d(padded, self.kernel, self.stride, return_indices=True)
        # Indices into the padded plane, back to the input's (a window past the edge keeps Caffe's -1 there).
        row, col = index // padded.shape[3] - top, index % padded.shape[3] - left
        inside = (row >= 0) & (row < x.shape[2]) & (col >= 0) & (col < x.shape[3])
        return out, torch.where(inside, row * x.shape[3] + col, torch.full_like(index, -1)).to(x.dtype)


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


class Slice(CaffeLayer):
    """The bottom cut along axis into the tops' sizes (torch.split)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]
        self.sizes = list(spec["sizes"])

    def forward(self, x):
        return tuple(torch.split(x, self.sizes, dim=self.axis))


class Reshape(CaffeLayer):
    """Caffe's ReshapeLayer on the bottom's actual shape: axes [start, end) become dims, a 0 copying the
    bottom's axis at that place and a -1 taking what the count leaves."""

    def __init__(self, spec):
        super().__init__(spec)
        self.start, self.end, self.dims = spec["start"], spec["end"], list(spec["dims"])

    def forward(self, x):
        shape = list(x.shape)
        middle = [shape[self.start + i] if d == 0 else d for i, d in enumerate(self.dims)]
        return x.reshape(shape[:self.start] + middle + shape[self.end:])


class Crop(CaffeLayer):
    """The first bottom cut to the second's extent on every axis from axis, starting at the offsets."""

    def __init__(self, spec):
        super().__init__(spec)
        self.axis = spec["axis"]
        self.offsets = list(spec["offsets"])

    def forward(self, x, like):
        for i, offset in enumerate(self.offsets):
            x = x.narrow(self.axis + i, offset, like.shape[self.axis + i])
        return x


class PReLU(CaffeLayer):
    """max(x, 0) + a_c min(x, 0) with a learned slope per channel (one for all with channel_shared).
    Random slopes uniform in [0.1, 0.4), around Caffe's default filler 0.25."""

    def __init__(self, spec):
        super().__init__(spec)
        self.weight = nn.Parameter(torch.full((spec["channels"],), 0.25))

    def caffe_blobs(self):
        return [self.weight]

    def init_random(self, gen):
        self.weight.copy_(_uniform(gen, self.weight.shape, 0.1, 0.4))

    def forward(self, x):
        slope = self.weight.view((1, -1) + (1,) * (x.dim() - 2)) if x.dim() > 1 else self.weight
        return torch.where(x > 0, x, x * slope)


class ELU(CaffeLayer):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""

    def __init__(self, spec):
        super().__init__(spec)
        self.alpha = spec["alpha"]

    def forward(self, x):
        return F.elu(x, self.alpha)


class Power(CaffeLayer):
    """(shift + scale x) ^ power."""

    def __init__(self, spec):
        super().__init__(spec)
        self.power, self.scale, self.shift = spec["power"], spec["scale"], spec["shift"]

    def forward(self, x):
        y = x * self.scale + self.shift if (self.scale, self.shift) != (1.0, 0.0) else x
        return y if self.power == 1.0 else torch.pow(y, self.power)


def _affine(x, scale, shift):
    return x * scale + shift if (scale, shift) != (1.0, 0.0) else x


class Exp(CaffeLayer):
    """base ^ (shift + scale x), base e when -1."""

    def __init__(self, spec):
        super().__init__(spec)
        self.log_base = 1.0 if spec["base"] == -1 else math.log(spec["base"])
        self.scale, self.shift = spec["scale"], spec["shift"]

    def forward(self, x):
        return torch.exp(_affine(x, self.scale * self.log_base, self.shift * self.log_base))


class Log(CaffeLayer):
    """log_base(shift + scale x), natural when base is -1."""

    def __init__(self, spec):
        super().__init__(spec)
        self.inv_log_base = 1.0 if spec["base"] == -1 else 1.0 / math.log(spec["base"])
        self.scale, self.shift = spec["scale"], spec["shift"]

    def forward(self, x):
        y = torch.log(_affine(x, self.scale, self.shift))
        return y if self.inv_log_base == 1.0 else y * self.inv_log_base


class AbsVal(CaffeLayer):
    def forward(self, x):
        return torch.abs(x)


class BNLL(CaffeLayer):
    """log(1 + exp(x)), as Caffe computes it for large x (x + log(1 + exp(-x)))."""

    def forward(self, x):
        return torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(torch.min(x, torch.zeros_like(x)))))


class Threshold(CaffeLayer):
    """1 where x > threshold, else 0."""

    def __init__(self, spec):
        super().__init__(spec)
        self.threshold = spec["threshold"]

    def forward(self, x):
        return (x > self.threshold).to(x.dtype)


class Clip(CaffeLayer):
    def __init__(self, spec):
        super().__init__(spec)
        self.min, self.max = spec["min"], spec["max"]

    def forward(self, x):
        return torch.clamp(x, self.min, self.max)


class ReLU6(CaffeLayer):
    """min(max(x, 0), 6), the forks' ReLU6 layer (as in MobileNet v2 ports)."""

    def forward(self, x):
        return torch.clamp(x, 0.0, 6.0)


class Swish(CaffeLayer):
    def __init__(self, spec):
        super().__init__(spec)
        self.beta = spec["beta"]

    def forward(self, x):
        return x * torch.sigmoid(x * self.beta)


class Bias(CaffeLayer):
    """x plus a bias laid along x from axis: learned, or the second bottom."""

    def __init__(self, spec):
        super().__init__(spec)
        self.axis, self.ndim = spec["axis"], spec["ndim"]
        self.param_shape = tuple(spec["param_shape"])
        self.bias = None if len(spec["bottoms"]) == 2 else nn.Parameter(torch.zeros(self._broadcast(self.param_shape)))

    def _broadcast(self, shape):
        return (1,) * self.axis + tuple(shape) + (1,) * (self.ndim - self.axis - len(shape))

    def caffe_blobs(self):
        return [] if self.bias is None else [self.bias.view(self.param_shape)]

    def init_random(self, gen):
        if self.bias is not None:
            self.bias.copy_(_uniform(gen, self.bias.shape, -0.1, 0.1))

    def forward(self, x, bias=None):
        return x + (self.bias if bias is None else bias.reshape(self._broadcast(bias.shape)))


class ArgMax(CaffeLayer):
    """The top_k largest values' indices (or, with out_max_val, the values themselves) along axis, largest
    first; without axis over each image's values flattened, indices then (out_max_val) values in
    [N, 2, top_k]. Caffe sorts (value, index) pairs, so equal values come by descending index; torch.topk
    leaves ties in no stated order, which only random data without ties makes agree."""

    def __init__(self, spec):
        super().__init__(spec)
        self.top_k, self.out_max_val, self.axis = spec["top_k"], spec["out_max_val"], spec["axis"]
        self.top_shape = list(spec["top_shape"])

    def forward(self, x):
        if self.axis is not None:
            values, index = torch.topk(x, self.top_k, dim=self.axis)
            return values if self.out_max_val else index.to(x.dtype)
        values, index = torch.topk(x.reshape(x.shape[0], -1), self.top_k, dim=1)
        out = torch.stack([index.to(x.dtype), values], 1) if self.out_max_val else index.to(x.dtype).unsqueeze(1)
        return out.reshape([x.shape[0]] + self.top_shape)


class Reduction(CaffeLayer):
    """coeff x (SUM, ASUM: sum of |x|, SUMSQ: sum of x^2, or MEAN) over every axis from axis."""

    def __init__(self, spec):
        super().__init__(spec)
        self.operation, self.axis, self.coeff = spec["operation"], spec["axis"], spec["coeff"]

    def forward(self, x):
        flat = x.reshape(list(x.shape[:self.axis]) + [-1])
        if self.operation == "ASUM":
            flat = flat.abs()
        elif self.operation == "SUMSQ":
            flat = flat * flat
        out = flat.mean(-1) if self.operation == "MEAN" else flat.sum(-1)
        return out * self.coeff if self.coeff != 1 else out


class Tile(CaffeLayer):
    """The bottom repeated tiles times along axis, whole (Caffe's TileLayer copies the inner block)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.axis, self.tiles = spec["axis"], spec["tiles"]

    def forward(self, x):
        repeats = [1] * x.dim()
        repeats[self.axis] = self.tiles
        return x.repeat(repeats)


class BN(CaffeLayer):
    """The BN layer of SegNet's and ENet's Caffe forks (BNLayer::Forward_cpu,
    https://github.com/TimoSaemann/caffe-segnet-cudnn5/blob/a210a9e45ce3852016f709e2737a970e063ee94e/src/caffe/layers/bn_layer.cpp):
    blobs scale and shift [1, C, 1, 1]. bn_mode INFERENCE: x scale + shift. LEARN (the default, kept by
    deploy files that were not passed through compute_bn_statistics.py): the batch's mean and variance
    (E(x^2) - E(x)^2) per channel over N, H and W, then (x - mean) / sqrt(variance + 1e-9) scale + shift,
    in the test phase too. Random weights: scale uniform in [0.5, 1.5), shift in [-0.1, 0.1)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.learn = spec["bn_mode"] == "LEARN"
        self.scale = nn.Parameter(torch.ones(1, spec["channels"], 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, spec["channels"], 1, 1))

    def caffe_blobs(self):
        return [self.scale, self.shift]

    def init_random(self, gen):
        self.scale.copy_(_uniform(gen, self.scale.shape, 0.5, 1.5))
        self.shift.copy_(_uniform(gen, self.shift.shape, -0.1, 0.1))

    def forward(self, x):
        if self.learn:
            mean = x.mean((0, 2, 3), keepdim=True)
            var = (x * x).mean((0, 2, 3), keepdim=True) - mean * mean
            x = (x - mean) / torch.sqrt(var + 1e-9)
        return x * self.scale + self.shift


class Upsample(CaffeLayer):
    """SegNet's Upsample (https://github.com/alexgkendall/caffe-segnet/blob/master/src/caffe/layers/upsample_layer.cpp):
    a zero output of output_size where each input value goes to the position its pooling mask names (h * W
    + w of the output plane); a scatter, which ONNX has as ScatterElements."""

    def __init__(self, spec):
        super().__init__(spec)
        self.size = list(spec["output_size"])

    def forward(self, x, mask):
        n, c = x.shape[0], x.shape[1]
        out = x.new_zeros((n, c, self.size[0] * self.size[1]))
        out = out.scatter(2, mask.reshape(n, c, -1).long(), x.reshape(n, c, -1))
        return out.reshape(n, c, self.size[0], self.size[1])


class Permute(CaffeLayer):
    """The axes in order (SSD's PermuteLayer)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.order = list(spec["order"])

    def forward(self, x):
        return x.permute(self.order).contiguous()


class Normalize(CaffeLayer):
    """SSD's NormalizeLayer (https://github.com/weiliu89/caffe/blob/ssd/src/caffe/layers/normalize_layer.cpp):
    x / sqrt(sum of x^2 + eps) times a learned scale per channel (one for all with channel_shared); the
    sum over each image's C, H and W with across_spatial, else over the channels at each position. Random
    scale uniform in [10, 30), around SSD's conv4_3 initial 20."""

    def __init__(self, spec):
        super().__init__(spec)
        self.across, self.eps = spec["across_spatial"], spec["eps"]
        self.weight = nn.Parameter(torch.full((spec["channels"],), 20.0))

    def caffe_blobs(self):
        return [self.weight]

    def init_random(self, gen):
        self.weight.copy_(_uniform(gen, self.weight.shape, 10.0, 30.0))

    def forward(self, x):
        square = x * x
        total = square.sum((1, 2, 3), keepdim=True) if self.across else square.sum(1, keepdim=True)
        return x / torch.sqrt(total + self.eps) * self.weight.view(1, -1, 1, 1)


def prior_boxes(spec):
    """SSD's PriorBoxLayer::Forward_cpu
    (https://github.com/weiliu89/caffe/blob/ssd/src/caffe/layers/prior_box_layer.cpp): for each position
    (h, w), centre ((w + offset) step_w, (h + offset) step_h); per min_size a square of that side, a square of
    sqrt(min_size x max_size) with max_size, then one box per other aspect ratio r (sides s sqrt(r) and s /
    sqrt(r), s being sqrt(min x max) with max_size, else min_size); corners divided by the image size, clipped
    to [0, 1] with clip. Returns [1, 2, positions x priors x 4]: the boxes, then the variances."""
    layer_h, layer_w = spec["layer_size"]
    img_h, img_w = spec["image_size"]
    step_h, step_w = spec["step"]
    sides = []
    for i, size in enumerate(spec["min_sizes"]):
        sides.append((size, size))
        if spec["max_sizes"]:
            sides.append((math.sqrt(size * spec["max_sizes"][i]),) * 2)
        base = math.sqrt(size * spec["max_sizes"][i]) if spec["max_sizes"] else size
        sides += [(base * math.sqrt(r), base / math.sqrt(r)) for r in spec["aspect_ratios"] if abs(r - 1) >= 1e-6]
    ys = (torch.arange(layer_h, dtype=torch.float64) + spec["offset"]) * step_h
    xs = (torch.arange(layer_w, dtype=torch.float64) + spec["offset"]) * step_w
    cy, cx = ys.view(-1, 1, 1).expand(layer_h, layer_w, 1), xs.view(1, -1, 1).expand(layer_h, layer_w, 1)
    width = torch.tensor([w for w, _ in sides], dtype=torch.float64).view(1, 1, -1)
    height = torch.tensor([h for _, h in sides], dtype=torch.float64).view(1, 1, -1)
    boxes = torch.stack([(cx - width / 2) / img_w, (cy - height / 2) / img_h,
                         (cx + width / 2) / img_w, (cy + height / 2) / img_h], -1).reshape(-1).float()
    if spec["clip"]:
        boxes = boxes.clamp(0, 1)
    variance = torch.tensor(spec["variance"] * (4 if len(spec["variance"]) == 1 else 1))
    return torch.stack([boxes, variance.repeat(boxes.numel() // 4)]).unsqueeze(0)


class PriorBox(CaffeLayer):
    """The prior boxes (prior_boxes above), fixed by the shapes: computed once, returned whatever the input."""

    def __init__(self, spec):
        super().__init__(spec)
        self.register_buffer("priors", prior_boxes(spec))

    def forward(self, x, image):
        return self.priors


class DetectionOutput(CaffeLayer):
    """SSD's DetectionOutputLayer::Forward_cpu
    (https://github.com/weiliu89/caffe/blob/ssd/src/caffe/layers/detection_output_layer.cpp, with
    DecodeBBoxes, ApplyNMSFast and JaccardOverlap of src/caffe/util/bbox_util.cpp), shared locations:
      decode: CENTER_SIZE centre = prior centre + v0 dx prior width (v1 dy height), size = exp(v2 dw) prior
        width (exp(v3 dh) height); CORNER corner = prior corner + v dcorner; v the prior's variances, 1 when
        variance_encoded_in_target; boxes are not clipped.
      per image, per class but the background: the scores above confidence_threshold, the top_k highest,
        then greedy NMS: a box is kept when its overlap (intersection / union, zero for boxes that do not
        meet) with every kept box of its class is at most nms_threshold.
      keep_top_k: the highest-scoring keep_top_k of an image's kept boxes.
      output [1, 1, kept, 7]: rows (image, label, score, xmin, ymin, xmax, ymax) by image, label, then
        descending score; none kept in the whole batch: one row (image, -1, ... -1) per image.
    Written with fixed-size tensors and one boolean selection at the end, so the ONNX export traces it as a
    graph (the NMS loop unrolled over the top_k candidates) whose output size follows the data. Equal scores
    rank by prior (Caffe's stable_sort), and at the keep_top_k cut by label then rank (Caffe's std::sort
    leaves that order open); see _ranked. fp16 and bf16 inputs are computed in float32."""

    def __init__(self, spec):
        super().__init__(spec)
        self.classes = [c for c in range(spec["num_classes"]) if c != spec["background_label_id"]]
        self.num_classes, self.center_size = spec["num_classes"], spec["code_type"] == "CENTER_SIZE"
        self.encoded = spec["variance_encoded_in_target"]
        self.threshold = spec["confidence_threshold"]
        self.nms_threshold, self.keep_top_k = spec["nms_threshold"], spec["keep_top_k"]
        priors = spec["num_priors"]
        self.top_k = priors if spec["top_k"] < 0 else min(spec["top_k"], priors)
        self.register_buffer("labels", torch.tensor(self.classes, dtype=torch.float32).view(-1, 1))

    def decode(self, loc, prior):
        boxes, variance = prior[0, 0].view(-1, 4), prior[0, 1].view(-1, 4)
        if self.encoded:
            variance = torch.ones_like(variance)
        if not self.center_size:
            return boxes + variance * loc
        size = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + variance[:, :2] * loc[..., :2] * size
        half = torch.exp(variance[:, 2:] * loc[..., 2:]) * size / 2
        return torch.cat([centre - half, centre + half], -1)

    @staticmethod
    def overlaps(boxes):
        """[..., k, k] intersection over union of boxes [..., k, 4] (bbox_util.cpp's JaccardOverlap)."""
        a, b = boxes.unsqueeze(-2), boxes.unsqueeze(-3)
        inter = (torch.min(a[..., 2:], b[..., 2:]) - torch.max(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
        area = (boxes[..., 2:] - boxes[..., :2]).clamp(min=0).prod(-1)
        union = area.unsqueeze(-1) + area.unsqueeze(-2) - inter
        return torch.where(inter > 0, inter / union, torch.zeros_like(inter))

    @staticmethod
    def _ranked(scores):
        """Keys whose top-k order puts equal scores by position, first first, as Caffe's stable_sort does.
        torch.topk leaves ties in no stated order, so in PyTorch they are float64 scores times 1 - i 2^-40,
        which moves a score by under 2^-29 of itself, less than the gap between two float32 values: unequal
        scores keep their order. ONNX's TopK breaks ties by the lower index
        (https://onnx.ai/onnx/operators/onnx__TopK.html), so the export keeps the float32 scores (TensorRT
        has no float64)."""
        if torch.onnx.is_in_onnx_export():
            return scores
        position = torch.arange(scores.shape[-1], dtype=torch.float64)
        return scores.double() * (1 - position * 2.0 ** -40)

    def _image(self, index, boxes, scores):
        """Candidate rows [classes x top_k, 7] of one image and which of them are kept."""
        scores = scores[:, self.classes].t()                       # [classes, priors]
        order = torch.topk(self._ranked(scores), self.top_k, dim=1).indices   # each class, highest first
        top = scores.gather(1, order)
        candidates = boxes[order]                                    # [classes, top_k, 4]
        valid = top > self.threshold if self.threshold is not None else torch.ones_like(top, dtype=torch.bool)
        over = self.overlaps(candidates) > self.nms_threshold
        kept = []
        for j in range(self.top_k):
            if j == 0:
                kept.append(valid[:, 0])
            else:
                suppressed = (torch.stack(kept, 1) & over[:, j, :j]).any(1)
                kept.append(valid[:, j] & ~suppressed)
        keep = torch.stack(kept, 1).reshape(-1)
        if -1 < self.keep_top_k < len(self.classes) * self.top_k:
            ranked = self._ranked(top.reshape(-1))
            ranked = torch.where(keep, ranked, torch.full_like(ranked, -math.inf))
            best = torch.topk(ranked, self.keep_top_k).indices
            keep = keep & torch.zeros_like(keep).scatter(0, best, torch.ones_like(best, dtype=torch.bool))
        labels = self.labels.to(boxes.dtype).expand_as(top)
        rows = torch.cat([torch.full_like(top, float(index)).unsqueeze(-1), labels.unsqueeze(-1),
                          top.unsqueeze(-1), candidates], -1).reshape(-1, 7)
        return rows, keep

    def forward(self, loc, conf, prior):
        dtype, n = loc.dtype, loc.shape[0]
        boxes = self.decode(loc.float().reshape(n, -1, 4), prior.float())
        scores = conf.float().reshape(n, -1, self.num_classes)
        rows, keeps = zip(*[self._image(i, boxes[i], scores[i]) for i in range(n)])
        keep = torch.cat(keeps)
        fake = torch.full((n, 7), -1.0)
        fake[:, 0] = torch.arange(n, dtype=torch.float32)
        none = (keep.sum() == 0).expand(n)
        out = torch.cat(list(rows) + [fake])[torch.cat([keep, none])]
        return out.reshape(1, 1, -1, 7).to(dtype)


class Axpy(CaffeLayer):
    """SENet's Axpy (AxpyLayer::Forward_cpu, https://github.com/hujie-frank/SENet): scale[n, c] x + y, the
    scale [N, C, 1, 1] (or [N, C]) from the squeeze-excitation branch."""

    def forward(self, scale, x, y):
        return torch.addcmul(y, scale.reshape(scale.shape[:2] + (1,) * (x.dim() - 2)), x)


class ShuffleChannel(CaffeLayer):
    """ShuffleNet's channel shuffle (ShuffleChannelLayer of https://github.com/farmingyard/ShuffleNet):
    input channel i x (C / group) + j goes to output channel j x group + i."""

    def __init__(self, spec):
        super().__init__(spec)
        self.group = spec["group"]

    def forward(self, x):
        n, c = x.shape[0], x.shape[1]
        rest = list(x.shape[2:])
        return x.reshape([n, self.group, c // self.group] + rest).transpose(1, 2).reshape([n, c] + rest)


LAYERS = {cls.__name__: cls for cls in (Convolution, Deconvolution, Pooling, LRN, InnerProduct, BatchNorm, Scale,
                                        Bias, ReLU, PReLU, ELU, ReLU6, Clip, Swish, Sigmoid, TanH, AbsVal, BNLL,
                                        Power, Exp, Log, Threshold, Dropout, Softmax, Concat, Slice, Eltwise,
                                        Flatten, Reshape, Crop, Split, ArgMax, Reduction, Tile, BN, Upsample,
                                        Permute, Normalize, PriorBox, DetectionOutput, ShuffleChannel, Axpy)}


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
