"""Parameter and multiply-accumulate counts of a Caffe net, from its deploy prototxt alone.

Blob shapes are propagated the way Caffe 1.0 reshapes its layers (Caffe's pooling rounds up, for
instance), so the figures describe the net Caffe builds, not a framework's re-implementation of it.

Conventions
- params: the learnable blobs as Caffe stores them for the file as declared, so the total equals
  pycaffe's `sum(b.data.size for v in net.params.values() for b in v)` exactly (checked on the catalog
  and the test fixtures): Convolution, Deconvolution and InnerProduct weights plus their bias when
  bias_term is on; BatchNorm's three blobs (running mean C, running variance C, and the 1-element
  moving-average scale factor: 2C + 1, although none of them is learned by gradient); Scale's and Bias's
  learned blobs; PReLU's slopes; the forks' BN (scale and shift, 2C) and Normalize (its scale).
- macs: multiply-accumulates of Convolution, Deconvolution and InnerProduct for ONE image: the net with
  every input's batch set to 1, whatever batch the file declares. A convolution output element costs
  (C_in / group) x kernel volume MACs, a deconvolution input element (C_out / group) x kernel volume, an
  InnerProduct output its input size. Bias additions, batch norms, Scale, pooling, LRN, activations and
  the SSD head's box decoding and NMS are not counted. (FLOPs are often quoted as 2 x MACs.)
- layers: layers of the TEST-phase net as the file declares them. The input declaration (an Input layer)
  is not counted; pycaffe's `len(net.layers)` is this plus one Input layer plus one Split layer per blob
  read by several layers, which Caffe inserts itself.
- A layer type whose output shape is not known here (a `Python` layer, Faster R-CNN's ROIPooling...) is
  listed in unknown_layers; its outputs and everything computed from them are then left out, and `complete` is
  False: the counts are a lower bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from .prototxt import Message, Scalar, inputs, layers

__all__ = ["NetStats", "analyze"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class NetStats:
    """What `analyze` found; the module docstring says what each count includes."""

    input_shape: Shape | None  # the first input, as declared (declared batch included)
    params: int
    macs: int  # per image
    layers: int
    unknown_layers: tuple[str, ...]  # layer types, in order of first appearance
    complete: bool
    blob_shapes: dict[str, Shape]  # at the declared batch, as the blobs end up (in-place layers overwrite)
    # Per layer of the TEST net, in file order: what it makes of one image (batch 1), and where it is.
    per_layer: tuple["LayerCount", ...] = ()
    # Layer types without a counting rule: {type: (how many, first line)}.
    unknown_where: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LayerCount:
    name: str
    type: str
    line: int
    output_shape: Shape | None   # the first top's, at batch 1; None when the layer was not counted
    params: int
    macs: int


# Legacy V1 `layers { type: CONVOLUTION }` enum names for the types below.
V1_TYPES = {
    "CONVOLUTION": "Convolution", "POOLING": "Pooling", "INNER_PRODUCT": "InnerProduct", "RELU": "ReLU",
    "SIGMOID": "Sigmoid", "TANH": "TanH", "LRN": "LRN", "DROPOUT": "Dropout", "SOFTMAX": "Softmax",
    "CONCAT": "Concat", "ELTWISE": "Eltwise", "FLATTEN": "Flatten", "SPLIT": "Split",
    "SLICE": "Slice", "DECONVOLUTION": "Deconvolution", "ABSVAL": "AbsVal", "BNLL": "BNLL", "POWER": "Power",
    "EXP": "Exp", "THRESHOLD": "Threshold", "ARGMAX": "ArgMax",
}


class Layer:
    def __init__(self, msg: Message, type_: str, bottoms: list[Shape], n_tops: int):
        self.msg = msg
        self.type = type_
        self.name = msg.get("name", "?")
        self.bottoms = bottoms
        self.n_tops = n_tops

    def error(self, text: str, span=None):
        return self.msg.error(f"layer {self.name!r} ({self.type}): {text}", span)

    def param(self, name: str) -> Message:
        return self.msg.message(name) or Message(self.msg.path, self.msg.span)

    def integer(self, block: Message, name: str, default: int | None = None) -> int:
        found = block.scalar(name)
        if found is None:
            if default is None:
                raise self.error(f"{name} is required")
            return default
        return self._int(found, name)

    def integers(self, block: Message, name: str) -> list[int]:
        return [self._int(s, name) for s in block.scalars(name)]

    def number(self, block: Message, name: str, default: float | None = None) -> float:
        found = block.scalar(name)
        if found is None:
            if default is None:
                raise self.error(f"{name} is required")
            return float(default)
        if found.kind != "number":
            raise self.error(f"{name} must be a number, found {found.text!r}", found.span)
        return float(found.value)

    def numbers(self, block: Message, name: str) -> list[float]:
        for s in block.scalars(name):
            if s.kind != "number":
                raise self.error(f"{name} must be a number, found {s.text!r}", s.span)
        return [float(s.value) for s in block.scalars(name)]

    def flag(self, block: Message, name: str, default: bool) -> bool:
        value = block.get(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise self.error(f"{name} must be true or false", block.scalar(name).span)
        return value == "true"

    def axis(self, value: int, ndim: int, name: str = "axis") -> int:
        if not -ndim <= value < ndim:
            raise self.error(f"{name} {value} is out of range for a {ndim}-axis blob")
        return value % ndim

    def bottom(self) -> Shape:
        if not self.bottoms:
            raise self.error("needs a bottom blob")
        return self.bottoms[0]

    def _int(self, s: Scalar, name: str) -> int:
        if not isinstance(s.value, int):
            raise self.error(f"{name} must be an integer, found {s.text!r}", s.span)
        return s.value


# Each rule returns (top shapes, params, macs).
Rule = Callable[[Layer], tuple[list[Shape], int, int]]


def spatial(layer: Layer, block: Message, repeated: str, prefix: str | None, n: int, default: int) -> list[int]:
    """Caffe's per-axis convolution settings: `prefix_h` + `prefix_w` (where Caffe has them), else the
    repeated field with 0 values (default), 1 value (every axis) or one value per spatial axis."""
    h = w = None
    if prefix is not None:
        h, w = block.scalar(prefix + "_h"), block.scalar(prefix + "_w")
    if h is not None or w is not None:
        if n != 2 or h is None or w is None:
            raise layer.error(f"{prefix}_h and {prefix}_w go together and only with 2 spatial axes")
        return [layer._int(h, prefix + "_h"), layer._int(w, prefix + "_w")]
    values = layer.integers(block, repeated)
    if not values:
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise layer.error(f"{repeated} has {len(values)} values for {n} spatial axes")
    return values


def conv_geometry(layer: Layer) -> dict:
    """Convolution and Deconvolution's convolution_param, checked as Caffe's BaseConvolutionLayer checks it:
    axis, the spatial settings per axis, num_output, group."""
    p = layer.param("convolution_param")
    shape = layer.bottom()
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    n = len(shape) - axis - 1
    out_channels = layer.integer(p, "num_output")
    group = layer.integer(p, "group", 1)
    if n < 1:
        raise layer.error(f"a {len(shape)}-axis bottom has no spatial axes")
    geometry = {"axis": axis, "num_output": out_channels, "group": group, "in_channels": shape[axis],
                "kernel": spatial(layer, p, "kernel_size", "kernel", n, 0),
                "stride": spatial(layer, p, "stride", "stride", n, 1),
                "pad": spatial(layer, p, "pad", "pad", n, 0),
                "dilation": spatial(layer, p, "dilation", None, n, 1),
                "bias_term": layer.flag(p, "bias_term", True)}
    if group < 1 or shape[axis] % group or out_channels % group:
        raise layer.error(f"group {group} must divide both {shape[axis]} input and {out_channels} output channels")
    if any(v < 1 for v in geometry["kernel"] + geometry["stride"] + geometry["dilation"]):
        raise layer.error("kernel_size, stride and dilation must be positive (kernel_size is required)")
    return geometry


def _convolution(layer: Layer):
    g = conv_geometry(layer)
    shape, axis = layer.bottom(), g["axis"]
    out = []
    for size, k, s, pad_, d in zip(shape[axis + 1:], g["kernel"], g["stride"], g["pad"], g["dilation"]):
        o = (size + 2 * pad_ - (d * (k - 1) + 1)) // s + 1
        if o < 1:
            raise layer.error(f"kernel {k} stride {s} pad {pad_} on size {size} gives no output")
        out.append(o)
    top = shape[:axis] + (g["num_output"],) + tuple(out)
    per_output = g["in_channels"] // g["group"] * math.prod(g["kernel"])
    params = g["num_output"] * per_output + (g["num_output"] if g["bias_term"] else 0)
    return [top], params, math.prod(top) * per_output


def _deconvolution(layer: Layer):
    """Caffe's DeconvolutionLayer: output stride (in - 1) + dilation (k - 1) + 1 - 2 pad per axis; weight
    [C_in, num_output / group, k...]; each input element is spread over (num_output / group) x kernel volume
    outputs, which is its MAC count."""
    g = conv_geometry(layer)
    shape, axis = layer.bottom(), g["axis"]
    out = []
    for size, k, s, pad_, d in zip(shape[axis + 1:], g["kernel"], g["stride"], g["pad"], g["dilation"]):
        o = s * (size - 1) + d * (k - 1) + 1 - 2 * pad_
        if o < 1:
            raise layer.error(f"kernel {k} stride {s} pad {pad_} on size {size} gives no output")
        out.append(o)
    top = shape[:axis] + (g["num_output"],) + tuple(out)
    per_input = g["num_output"] // g["group"] * math.prod(g["kernel"])
    params = g["in_channels"] * per_input + (g["num_output"] if g["bias_term"] else 0)
    return [top], params, math.prod(shape) * per_input


def _pooling(layer: Layer):
    p = layer.param("pooling_param")
    shape = layer.bottom()
    if len(shape) != 4:
        raise layer.error(f"Caffe pools 4-axis blobs only, got {len(shape)} axes")
    height, width = shape[2], shape[3]
    if layer.flag(p, "global_pooling", False):
        return [shape[:2] + (1, 1)], 0, 0
    if p.scalar("kernel_h") is not None or p.scalar("kernel_w") is not None:
        kh, kw = layer.integer(p, "kernel_h"), layer.integer(p, "kernel_w")
    else:
        kh = kw = layer.integer(p, "kernel_size")
    ph = layer.integer(p, "pad_h", layer.integer(p, "pad", 0))
    pw = layer.integer(p, "pad_w", layer.integer(p, "pad", 0))
    sh = layer.integer(p, "stride_h", layer.integer(p, "stride", 1))
    sw = layer.integer(p, "stride_w", layer.integer(p, "stride", 1))
    ceil = pooling_rounds_up(layer, p)
    out = []
    for size, k, s, pad in ((height, kh, sh, ph), (width, kw, sw, pw)):
        if k < 1 or s < 1:
            raise layer.error("kernel and stride must be positive")
        span = size + 2 * pad - k
        pooled = (-(-span // s) if ceil else span // s) + 1
        # Caffe's guard: the last window must start inside the image, not in the padding.
        if (ph or pw) and (pooled - 1) * s >= size + pad:
            pooled -= 1
        if pooled < 1:
            raise layer.error(f"kernel {k} stride {s} pad {pad} on size {size} gives no output")
        out.append(pooled)
    # A second top is MAX pooling's mask (the argmax positions SegNet's Upsample reads), of the same shape.
    return [shape[:2] + tuple(out)] * max(layer.n_tops, 1), 0, 0


def pooling_rounds_up(layer: Layer, p: Message) -> bool:
    """Whether the pooled size rounds up (Caffe's historic behaviour) or down. BVLC Caffe says it with
    round_mode (CEIL or FLOOR, from 2018: the Caffe Debian ships); forks from before it say it with
    `ceil_mode: false` (the DenseNet, ResNeXt and DPN deploy files, converted from Torch's floor-rounding
    pooling). Both are honoured; both given and disagreeing is refused."""
    round_mode, ceil_mode = p.scalar("round_mode"), p.scalar("ceil_mode")
    by_round = None
    if round_mode is not None:
        names = ("CEIL", "FLOOR")   # caffe.proto's numbering
        value = names[round_mode.value] if isinstance(round_mode.value, int) and 0 <= round_mode.value < 2 \
            else round_mode.value
        if value not in names:
            raise layer.error(f"round_mode must be CEIL or FLOOR, found {round_mode.text!r}", round_mode.span)
        by_round = value == "CEIL"
    by_ceil = layer.flag(p, "ceil_mode", True) if ceil_mode is not None else None
    if by_round is not None and by_ceil is not None and by_round != by_ceil:
        raise layer.error("round_mode and the fork field ceil_mode disagree: keep one of them", p.find("ceil_mode").span)
    return next((v for v in (by_round, by_ceil) if v is not None), True)


def _inner_product(layer: Layer):
    p = layer.param("inner_product_param")
    shape = layer.bottom()
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    outputs = layer.integer(p, "num_output")
    inputs_ = math.prod(shape[axis:])
    params = inputs_ * outputs + (outputs if layer.flag(p, "bias_term", True) else 0)
    return [shape[:axis] + (outputs,)], params, math.prod(shape[:axis]) * inputs_ * outputs


def _concat(layer: Layer):
    p = layer.param("concat_param")
    first = layer.bottom()
    # concat_dim is the pre-axis spelling, still read by Caffe 1.0.
    axis = layer.axis(layer.integer(p, "axis", layer.integer(p, "concat_dim", 1)), len(first))
    for other in layer.bottoms[1:]:
        if len(other) != len(first) or other[:axis] + other[axis + 1:] != first[:axis] + first[axis + 1:]:
            raise layer.error(f"bottom shapes {first} and {other} differ outside the concat axis {axis}")
    total = sum(b[axis] for b in layer.bottoms)
    return [first[:axis] + (total,) + first[axis + 1:]], 0, 0


def _eltwise(layer: Layer):
    first = layer.bottom()
    for other in layer.bottoms[1:]:
        if other != first:
            raise layer.error(f"bottom shapes {first} and {other} differ")
    return [first], 0, 0


def _flatten(layer: Layer):
    p = layer.param("flatten_param")
    shape = layer.bottom()
    start = layer.axis(layer.integer(p, "axis", 1), len(shape))
    end = layer.axis(layer.integer(p, "end_axis", -1), len(shape), "end_axis")
    return [shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]], 0, 0


def _batch_norm(layer: Layer):
    shape = layer.bottom()
    channels = shape[1] if len(shape) > 1 else 1
    return [shape], 2 * channels + 1, 0


def _scale(layer: Layer):
    operand = bias_shape(layer, "scale_param")
    bias = layer.flag(layer.param("scale_param"), "bias_term", False)
    if len(layer.bottoms) > 1:
        # The scale comes from the second bottom; only the optional bias is learned.
        return [layer.bottom()], math.prod(operand) if bias else 0, 0
    return [layer.bottom()], math.prod(operand) * (2 if bias else 1), 0


def slice_sizes(layer: Layer) -> tuple[int, list[int]]:
    """Slice's axis (slice_dim, its older spelling, is read too) and the size of each top along it: cut at
    the slice_points (one fewer than the tops), or in equal parts without them, as Caffe's SliceLayer."""
    p = layer.param("slice_param")
    shape = layer.bottom()
    axis = layer.axis(layer.integer(p, "axis", layer.integer(p, "slice_dim", 1)), len(shape))
    points, n, size = layer.integers(p, "slice_point"), max(layer.n_tops, 1), shape[axis]
    if points:
        if len(points) != n - 1 or any(b <= a for a, b in zip([0] + points, points + [size])):
            raise layer.error(f"slice_point needs {n - 1} increasing values inside 0..{size} for {n} tops")
        return axis, [b - a for a, b in zip([0] + points, points + [size])]
    if size % n:
        raise layer.error(f"axis {axis} of size {size} does not split into {n} equal tops")
    return axis, [size // n] * n


def _slice(layer: Layer):
    axis, sizes = slice_sizes(layer)
    shape = layer.bottom()
    return [shape[:axis] + (size,) + shape[axis + 1:] for size in sizes], 0, 0


def reshape_dims(layer: Layer) -> tuple[int, int, list[int]]:
    """Reshape's axis and num_axes made non-negative (the span of the bottom's axes replaced) and the
    shape's dims (0: copy the bottom's, -1: inferred), checked as Caffe's ReshapeLayer."""
    p = layer.param("reshape_param")
    shape = layer.bottom()
    block = p.message("shape")
    dims = layer.integers(block, "dim") if block is not None else []
    axis = layer.integer(p, "axis", 0)
    # Caffe: a negative axis counts from the end, -1 being after the last axis.
    start = axis + len(shape) + 1 if axis < 0 else axis
    num_axes = layer.integer(p, "num_axes", -1)
    if not 0 <= start <= len(shape) or num_axes < -1 or (num_axes != -1 and start + num_axes > len(shape)):
        raise layer.error(f"axis {axis} and num_axes {num_axes} do not fit a {len(shape)}-axis bottom")
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise layer.error("shape allows at most one -1 and no other negative dims")
    return start, len(shape) if num_axes == -1 else start + num_axes, dims


def reshaped(shape: Shape, start: int, end: int, dims: list[int]) -> Shape | None:
    """The reshaped shape, or None when the counts do not match."""
    new = [shape[start + i] if d == 0 else d for i, d in enumerate(dims)]
    total = math.prod(shape)
    known = math.prod(d for d in new if d != -1) * math.prod(shape[:start]) * math.prod(shape[end:])
    if -1 in new:
        if known == 0 or total % known:
            return None
        new[new.index(-1)] = total // known
    out = shape[:start] + tuple(new) + shape[end:]
    return out if math.prod(out) == total else None


def _reshape(layer: Layer):
    start, end, dims = reshape_dims(layer)
    if any(d == 0 and start + i >= len(layer.bottom()) for i, d in enumerate(dims)):
        raise layer.error("a dim of 0 copies a bottom axis the bottom does not have")
    out = reshaped(layer.bottom(), start, end, dims)
    if out is None:
        raise layer.error(f"shape {dims} does not hold the {math.prod(layer.bottom())} values of {layer.bottom()}")
    return [out], 0, 0


def crop_offsets(layer: Layer) -> tuple[int, list[int]]:
    """Crop's axis and one offset per cropped axis (none given: 0; one: every axis), checked as Caffe's
    CropLayer: the second bottom's extent from the offset must fit in the first bottom."""
    p = layer.param("crop_param")
    if len(layer.bottoms) != 2:
        raise layer.error("takes 2 bottoms (the blob to crop, and one of the wanted shape)")
    shape, like = layer.bottoms
    axis = layer.axis(layer.integer(p, "axis", 2), len(shape))
    n = len(shape) - axis
    offsets = layer.integers(p, "offset")
    offsets = offsets * n if len(offsets) == 1 else offsets or [0] * n
    if len(offsets) != n or len(like) != len(shape):
        raise layer.error(f"{len(offsets)} offsets for {n} cropped axes, or bottoms of different axis counts")
    for i, off in enumerate(offsets):
        if off < 0 or off + like[axis + i] > shape[axis + i]:
            raise layer.error(f"offset {off} and size {like[axis + i]} exceed axis {axis + i} of size {shape[axis + i]}")
    return axis, offsets


def _crop(layer: Layer):
    axis, _ = crop_offsets(layer)
    return [layer.bottoms[0][:axis] + layer.bottoms[1][axis:]], 0, 0


def _prelu(layer: Layer):
    shape = layer.bottom()
    shared = layer.flag(layer.param("prelu_param"), "channel_shared", False)
    return [shape], 1 if shared else shape[1] if len(shape) > 1 else 1, 0


def bias_shape(layer: Layer, param: str) -> Shape:
    """Bias's (and Scale's) operand shape: the second bottom's, or the learned blob's, shape[axis:axis +
    num_axes] (num_axes -1: to the end)."""
    shape = layer.bottom()
    p = layer.param(param)
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    if len(layer.bottoms) > 1:
        operand = layer.bottoms[1]
        if shape[axis:axis + len(operand)] != operand:
            raise layer.error(f"the second bottom {operand} does not match {shape} from axis {axis}")
        return operand
    num_axes = layer.integer(p, "num_axes", 1)
    if num_axes < -1 or (num_axes != -1 and axis + num_axes > len(shape)):
        raise layer.error(f"num_axes {num_axes} from axis {axis} exceeds a {len(shape)}-axis bottom")
    return shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes]


def _bias(layer: Layer):
    operand = bias_shape(layer, "bias_param")
    return [layer.bottom()], 0 if len(layer.bottoms) > 1 else math.prod(operand), 0


def _argmax(layer: Layer):
    """Caffe's ArgMaxLayer: along axis, top_k values; without axis, over everything but the batch, to
    [N, 1 (2 with out_max_val), top_k] padded with 1s to the bottom's axis count."""
    p = layer.param("argmax_param")
    shape = layer.bottom()
    top_k = layer.integer(p, "top_k", 1)
    if p.scalar("axis") is not None:
        axis = layer.axis(layer.integer(p, "axis"), len(shape))
        if not 1 <= top_k <= shape[axis]:
            raise layer.error(f"top_k {top_k} must be in 1..{shape[axis]}")
        return [shape[:axis] + (top_k,) + shape[axis + 1:]], 0, 0
    if not 1 <= top_k <= math.prod(shape[1:]):
        raise layer.error(f"top_k {top_k} must be in 1..{math.prod(shape[1:])}")
    top = [shape[0], 2 if layer.flag(p, "out_max_val", False) else 1, top_k] + [1] * (len(shape) - 3)
    return [tuple(top)], 0, 0


def _reduction(layer: Layer):
    """Caffe's ReductionLayer reduces every axis from axis on: the top is the bottom's leading axes."""
    shape = layer.bottom()
    axis = layer.axis(layer.integer(layer.param("reduction_param"), "axis", 0), len(shape))
    return [shape[:axis]], 0, 0


def _tile(layer: Layer):
    p = layer.param("tile_param")
    shape = layer.bottom()
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    tiles = layer.integer(p, "tiles")
    if tiles < 1:
        raise layer.error(f"tiles must be positive, found {tiles}")
    return [shape[:axis] + (shape[axis] * tiles,) + shape[axis + 1:]], 0, 0


def _bn(layer: Layer):
    """The SegNet/ENet fork's BN layer: a [1, C, 1, 1] scale and a [1, C, 1, 1] shift."""
    shape = layer.bottom()
    if len(shape) != 4:
        raise layer.error(f"BN takes 4-axis blobs, got {len(shape)} axes")
    return [shape], 2 * shape[1], 0


def upsample_size(layer: Layer) -> list[int]:
    """SegNet's Upsample output [h, w]: upsample_h and upsample_w, else input x scale (scale, or scale_h
    and scale_w) less 1 per pad_out_h / pad_out_w, as its LayerSetUp and Reshape check them."""
    p = layer.param("upsample_param")
    shape, mask = layer.bottoms if len(layer.bottoms) == 2 else (layer.bottom(), None)
    if mask != shape or len(shape) != 4:
        raise layer.error("takes a 4-axis blob and a pooling mask of the same shape")
    if p.scalar("upsample_h") is not None or p.scalar("upsample_w") is not None:
        size = [layer.integer(p, "upsample_h"), layer.integer(p, "upsample_w")]
    else:
        if p.scalar("scale_h") is not None or p.scalar("scale_w") is not None:
            if p.scalar("scale") is not None:
                raise layer.error("give scale, or scale_h and scale_w (the fork refuses both)")
            scale = [layer.integer(p, "scale_h"), layer.integer(p, "scale_w")]
        else:
            scale = [layer.integer(p, "scale", 2)] * 2
        pad_out = [layer.flag(p, "pad_out_h", False), layer.flag(p, "pad_out_w", False)]
        if any(s < 2 for s in scale) or any(o and s != 2 for o, s in zip(pad_out, scale)):
            raise layer.error("scales must be above 1, and pad_out needs scale 2 (the fork refuses others)")
        size = [n * s - int(o) for n, s, o in zip(shape[2:], scale, pad_out)]
    if any(s < n for s, n in zip(size, shape[2:])):
        raise layer.error(f"output {size} is smaller than the input {list(shape[2:])}")
    return size


def _upsample(layer: Layer):
    return [layer.bottom()[:2] + tuple(upsample_size(layer))], 0, 0


def permute_order(layer: Layer) -> list[int]:
    """SSD's Permute: the given axes first, then the others in their order (weiliu89/caffe's
    PermuteLayer); each axis once."""
    ndim = len(layer.bottom())
    order = [layer.axis(a, ndim, "order") for a in layer.integers(layer.param("permute_param"), "order")]
    if len(set(order)) != len(order):
        raise layer.error(f"order {order} repeats an axis")
    return order + [a for a in range(ndim) if a not in order]


def _permute(layer: Layer):
    shape = layer.bottom()
    return [tuple(shape[a] for a in permute_order(layer))], 0, 0


def _normalize(layer: Layer):
    shape = layer.bottom()
    shared = layer.flag(layer.param("norm_param"), "channel_shared", True)
    return [shape], 1 if shared else shape[1], 0


def prior_boxes(layer: Layer) -> dict:
    """SSD's PriorBox settings resolved as weiliu89/caffe's PriorBoxLayer::LayerSetUp does: the aspect
    ratios (1 first, each given ratio once, and its inverse with flip), sizes, variance (none: 0.1),
    image size (img_size or img_h/img_w, else the second bottom's) and step (else image / layer size)."""
    p = layer.param("prior_box_param")
    if len(layer.bottoms) != 2 or len(layer.bottoms[0]) != 4 or len(layer.bottoms[1]) != 4:
        raise layer.error("takes 2 four-axis bottoms (the feature map and the image)")
    min_sizes, max_sizes = layer.numbers(p, "min_size"), layer.numbers(p, "max_size")
    if not min_sizes or any(m <= 0 for m in min_sizes):
        raise layer.error("needs positive min_size values")
    if max_sizes and (len(max_sizes) != len(min_sizes) or any(b <= a for a, b in zip(min_sizes, max_sizes))):
        raise layer.error("max_size needs one value per min_size, each greater")
    flip = layer.flag(p, "flip", True)
    ratios = [1.0]
    for ar in layer.numbers(p, "aspect_ratio"):
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios += [ar, 1.0 / ar] if flip else [ar]
    variance = layer.numbers(p, "variance") or [0.1]
    if len(variance) not in (1, 4) or any(v <= 0 for v in variance):
        raise layer.error("variance takes 1 or 4 positive values")
    layer_h, layer_w = layer.bottoms[0][2:]
    if p.scalar("img_h") is not None or p.scalar("img_w") is not None:
        image = [layer.integer(p, "img_h"), layer.integer(p, "img_w")]
    else:
        size = layer.integer(p, "img_size", 0)
        image = [size, size] if size else list(layer.bottoms[1][2:])
    if p.scalar("step_h") is not None or p.scalar("step_w") is not None:
        step = [layer.number(p, "step_h"), layer.number(p, "step_w")]
    else:
        one = layer.number(p, "step", 0)
        step = [one, one] if one else [image[0] / layer_h, image[1] / layer_w]
    # Caffe's int min_size_ = min_sizes_[s] truncates fractional sizes.
    return {"min_sizes": [int(m) for m in min_sizes], "max_sizes": [int(m) for m in max_sizes],
            "aspect_ratios": ratios, "clip": layer.flag(p, "clip", False), "variance": variance,
            "layer_size": [layer_h, layer_w], "image_size": image, "step": step,
            "offset": layer.number(p, "offset", 0.5)}


def _prior_box(layer: Layer):
    b = prior_boxes(layer)
    per_position = len(b["aspect_ratios"]) * len(b["min_sizes"]) + len(b["max_sizes"])
    return [(1, 2, b["layer_size"][0] * b["layer_size"][1] * per_position * 4)], 0, 0


def _detection_output(layer: Layer):
    # The number of detections is known only after NMS; Caffe's Reshape declares one row, as here.
    return [(1, 1, 1, 7)], 0, 0


def _axpy(layer: Layer):
    """SENet's Axpy (https://github.com/hujie-frank/SENet, src/caffe/layers/axpy_layer.cpp): a [N, C(, 1, 1)]
    scale times the second bottom, plus the third, both of one shape."""
    if len(layer.bottoms) != 3:
        raise layer.error("takes 3 bottoms: the scale, x and y")
    a, x, y = layer.bottoms
    if x != y or a[:2] != x[:2] or any(d != 1 for d in a[2:]):
        raise layer.error(f"bottoms {list(a)}, {list(x)}, {list(y)}: the scale must be [N, C, 1, 1] of x, and x and y "
                          f"of one shape")
    return [x], 0, 0


def _shuffle_channel(layer: Layer):
    shape = layer.bottom()
    group = layer.integer(layer.param("shuffle_channel_param"), "group", 1)
    if group < 1 or len(shape) < 2 or shape[1] % group:
        raise layer.error(f"group {group} must divide the {shape[1] if len(shape) > 1 else 0} channels")
    return [shape], 0, 0


def _same_shape(layer: Layer):
    return [layer.bottom()] * max(layer.n_tops, 1), 0, 0


_RULES: dict[str, Rule] = {
    "Convolution": _convolution,
    "Pooling": _pooling,
    "InnerProduct": _inner_product,
    "Concat": _concat,
    "Eltwise": _eltwise,
    "Flatten": _flatten,
    "BatchNorm": _batch_norm,
    "Scale": _scale,
    "Deconvolution": _deconvolution,
    "Slice": _slice,
    "Reshape": _reshape,
    "Crop": _crop,
    "PReLU": _prelu,
    "Bias": _bias,
    "ArgMax": _argmax,
    "Reduction": _reduction,
    "Tile": _tile,
    "BN": _bn,
    "Upsample": _upsample,
    "Permute": _permute,
    "Normalize": _normalize,
    "PriorBox": _prior_box,
    "DetectionOutput": _detection_output,
    "ShuffleChannel": _shuffle_channel,
    "Axpy": _axpy,
    **{t: _same_shape for t in ("ReLU", "Sigmoid", "TanH", "LRN", "Dropout", "Softmax", "Split", "ELU", "Power",
                                "AbsVal", "BNLL", "Exp", "Log", "Threshold", "Clip", "Swish", "ReLU6")},
}


# The fields of each counted layer's parameter block in BVLC Caffe 1.0's caffe.proto
# (https://github.com/BVLC/caffe/blob/master/src/caffe/proto/caffe.proto), and in the forks' caffe.proto for
# their layers (BN and Upsample: https://github.com/alexgkendall/caffe-segnet/blob/master/src/caffe/proto/caffe.proto;
# Permute, Normalize, PriorBox, DetectionOutput: https://github.com/weiliu89/caffe/blob/ssd/src/caffe/proto/caffe.proto;
# ShuffleChannel: https://github.com/farmingyard/ShuffleNet; Axpy, which has none: https://github.com/hujie-frank/SENet), plus fork fields with a defined meaning, as
# (honoured: they shape the network and are read, irrelevant to inference). Any other field is refused at its
# line: it may change the network (as ceil_mode did before it was read), and edgeprof does not guess.
# Irrelevant: *filler (weight initialization for training; edgeprof's weights or --weights replace it), engine
# and force_nd_im2col (which implementation computes the same thing), moving_average_fraction and
# stable_prod_grad (training and gradients only), dropout_ratio (Dropout passes data through at test), and
# DetectionOutput's save_output_param, visualize, visualize_threshold and save_file (writing results to
# files and drawing them, after the output is computed).
_SPATIAL = {"pad", "pad_h", "pad_w", "kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w"}
_CONVOLUTION = ("convolution_param", _SPATIAL | {"num_output", "bias_term", "dilation", "group", "axis"},
                {"weight_filler", "bias_filler", "engine", "force_nd_im2col"})
_AFFINE = {"base", "scale", "shift"}
PARAM_FIELDS: dict[str, tuple[str, set[str], set[str]]] = {
    "Convolution": _CONVOLUTION,
    "Deconvolution": _CONVOLUTION,
    "Pooling": ("pooling_param", _SPATIAL | {"pool", "global_pooling", "round_mode", "ceil_mode"}, {"engine"}),
    "InnerProduct": ("inner_product_param", {"num_output", "bias_term", "axis", "transpose"},
                     {"weight_filler", "bias_filler"}),
    "LRN": ("lrn_param", {"local_size", "alpha", "beta", "norm_region", "k"}, {"engine"}),
    "ReLU": ("relu_param", {"negative_slope"}, {"engine"}),
    "Sigmoid": ("sigmoid_param", set(), {"engine"}),
    "TanH": ("tanh_param", set(), {"engine"}),
    "Softmax": ("softmax_param", {"axis"}, {"engine"}),
    "Concat": ("concat_param", {"axis", "concat_dim"}, set()),
    "Eltwise": ("eltwise_param", {"operation", "coeff"}, {"stable_prod_grad"}),
    "Flatten": ("flatten_param", {"axis", "end_axis"}, set()),
    "BatchNorm": ("batch_norm_param", {"use_global_stats", "eps"}, {"moving_average_fraction"}),
    "Scale": ("scale_param", {"axis", "num_axes", "bias_term"}, {"filler", "bias_filler"}),
    "Bias": ("bias_param", {"axis", "num_axes"}, {"filler"}),
    "Dropout": ("dropout_param", set(), {"dropout_ratio"}),
    "Slice": ("slice_param", {"axis", "slice_point", "slice_dim"}, set()),
    "Reshape": ("reshape_param", {"shape", "axis", "num_axes"}, set()),
    "Crop": ("crop_param", {"axis", "offset"}, set()),
    "PReLU": ("prelu_param", {"channel_shared"}, {"filler"}),
    "ELU": ("elu_param", {"alpha"}, set()),
    "Power": ("power_param", {"power", "scale", "shift"}, set()),
    "Exp": ("exp_param", _AFFINE, set()),
    "Log": ("log_param", _AFFINE, set()),
    "Threshold": ("threshold_param", {"threshold"}, set()),
    "ArgMax": ("argmax_param", {"out_max_val", "top_k", "axis"}, set()),
    "Reduction": ("reduction_param", {"operation", "axis", "coeff"}, set()),
    "Tile": ("tile_param", {"axis", "tiles"}, set()),
    "Clip": ("clip_param", {"min", "max"}, set()),
    "Swish": ("swish_param", {"beta"}, set()),
    "BN": ("bn_param", {"bn_mode"}, {"scale_filler", "shift_filler"}),
    "Upsample": ("upsample_param", {"scale", "scale_h", "scale_w", "pad_out_h", "pad_out_w", "upsample_h",
                                    "upsample_w"}, set()),
    "Permute": ("permute_param", {"order"}, set()),
    "Normalize": ("norm_param", {"across_spatial", "channel_shared", "eps"}, {"scale_filler"}),
    "PriorBox": ("prior_box_param", {"min_size", "max_size", "aspect_ratio", "flip", "clip", "variance",
                                     "img_size", "img_h", "img_w", "step", "step_h", "step_w", "offset"}, set()),
    "DetectionOutput": ("detection_output_param", {"num_classes", "share_location", "background_label_id",
                                                   "nms_param", "code_type", "variance_encoded_in_target",
                                                   "keep_top_k", "confidence_threshold"},
                        {"save_output_param", "visualize", "visualize_threshold", "save_file"}),
    "ShuffleChannel": ("shuffle_channel_param", {"group"}, set()),
}


# Fork layer types with their fork and parameter block: BVLC Caffe and the Caffe Debian ships have none of
# them, so caffe refuses such a file while parsing it (protobuf: `has no field named "prior_box_param"`) or
# building it (`Unknown layer type: PriorBox`).
FORKS = {"SSD": "https://github.com/weiliu89/caffe/tree/ssd", "SegNet": "https://github.com/alexgkendall/caffe-segnet",
         "ShuffleNet": "https://github.com/farmingyard/ShuffleNet", "SENet": "https://github.com/hujie-frank/SENet"}
FORK_LAYERS = {"Permute": ("SSD", "permute_param"), "Normalize": ("SSD", "norm_param"),
               "PriorBox": ("SSD", "prior_box_param"), "DetectionOutput": ("SSD", "detection_output_param"),
               "BN": ("SegNet", "bn_param"), "Upsample": ("SegNet", "upsample_param"),
               "ShuffleChannel": ("ShuffleNet", "shuffle_channel_param"), "Axpy": ("SENet", None)}


def caffe_lacks_fork_layers(msg: Message, caffe_log: str) -> str | None:
    """What to tell a user whose Caffe refused the net `msg` for lacking a fork's layers ("this Caffe lacks
    SSD's layers: ..."), from caffe's log; None when the log shows another failure."""
    used: dict[str, dict[str, int]] = {}    # fork -> {type: first line}
    for layer_msg, type_ in test_layers(msg):
        if type_ in FORK_LAYERS:
            used.setdefault(FORK_LAYERS[type_][0], {}).setdefault(type_, layer_msg.span.line)

    def refused(type_: str) -> bool:
        block = FORK_LAYERS[type_][1]
        return ((block is not None and f'no field named "{block}"' in caffe_log)
                or f"Unknown layer type: {type_} " in caffe_log or caffe_log.rstrip().endswith(f"Unknown layer type: {type_}"))
    lacking = [fork for fork, types in used.items() if any(refused(t) for t in types)]
    if not lacking:
        return None
    said = "; ".join(f"this Caffe lacks {fork}'s layers: the net uses "
                     f"{', '.join(f'{t} (first at line {line})' for t, line in used[fork].items())}, which {fork}'s "
                     f"Caffe has ({FORKS[fork]})" for fork in lacking)
    return (f"{said}. Run it with a Caffe built from that fork, or measure it with --backend pytorch or "
            f"onnxruntime, which build these layers")


def check_fields(layer: Layer) -> None:
    """Refuse a field of the layer's parameter block that edgeprof neither honours nor knows to be irrelevant."""
    block_name, honoured, irrelevant = PARAM_FIELDS.get(layer.type, ("", set(), set()))
    for block in layer.msg.messages(block_name) if block_name else []:
        for f in block.fields:
            if f.name not in honoured and f.name not in irrelevant:
                raise layer.error(
                    f"{block_name} field `{f.name}` is not one edgeprof knows (it reads "
                    f"{', '.join(sorted(honoured)) or 'none'}; ignores {', '.join(sorted(irrelevant)) or 'none'}). It may "
                    f"change the network, so edgeprof will not measure a guess: remove it if your Caffe ignores it, "
                    f"or ask for it to be supported", f.span)


def _rule_matches(rule: Message) -> bool:
    """NetStateRule against the state `caffe time -phase TEST` runs in: phase TEST, level 0, no stages."""
    return (rule.get("phase", "TEST") == "TEST"
            and rule.get("min_level", 0) <= 0 <= rule.get("max_level", 0)
            and not rule.scalars("stage"))


def in_test_net(layer: Message) -> bool:
    include, exclude = layer.messages("include"), layer.messages("exclude")
    if include and not any(_rule_matches(r) for r in include):
        return False
    return not any(_rule_matches(r) for r in exclude)


@dataclass
class _Pass:
    shapes: dict[str, Shape]
    params: int = 0
    macs: int = 0
    layers: int = 0
    unknown: list[str] = field(default_factory=list)
    complete: bool = True
    per_layer: list[LayerCount] = field(default_factory=list)
    unknown_where: dict = field(default_factory=dict)


def test_layers(msg: Message) -> Iterator[tuple[Message, str]]:
    """The layers `caffe time -phase TEST` runs, Input layers aside, each with its type (V1 names mapped)."""
    for layer_msg in layers(msg):
        type_ = str(layer_msg.get("type", ""))
        type_ = V1_TYPES.get(type_, type_)
        if in_test_net(layer_msg) and type_ != "Input":
            yield layer_msg, type_


def _propagate(msg: Message, inputs_: dict[str, Shape]) -> _Pass:
    run = _Pass(dict(inputs_), complete=bool(inputs_))
    shapes = run.shapes
    for layer_msg, type_ in test_layers(msg):
        run.layers += 1
        bottoms = [str(s.value) for s in layer_msg.scalars("bottom")]
        tops = [str(s.value) for s in layer_msg.scalars("top")]
        rule = _RULES.get(type_)
        name = str(layer_msg.get("name", "?"))
        if rule is None or any(b not in shapes for b in bottoms):
            if rule is None:
                if type_ not in run.unknown:
                    run.unknown.append(type_)
                count, line = run.unknown_where.get(type_, (0, layer_msg.span.line))
                run.unknown_where[type_] = (count + 1, line)
            run.complete = False
            run.per_layer.append(LayerCount(name, type_, layer_msg.span.line, None, 0, 0))
            for top in tops:
                shapes.pop(top, None)
            continue
        layer = Layer(layer_msg, type_, [shapes[b] for b in bottoms], len(tops))
        check_fields(layer)
        top_shapes, params, macs = rule(layer)
        run.params += params
        run.macs += macs
        run.per_layer.append(LayerCount(name, type_, layer_msg.span.line, top_shapes[0] if top_shapes else None,
                                        params, macs))
        for top, shape in zip(tops, top_shapes):
            shapes[top] = shape
    return run


def analyze(msg: Message) -> NetStats:
    """Counts for the net `msg` (a parsed deploy prototxt). Raises PrototxtError, located at the layer,
    for layers Caffe itself would refuse (a Convolution without num_output, a kernel larger than its
    input...)."""
    decls = inputs(msg)
    declared = _propagate(msg, {d.name: tuple(d.dims) for d in decls})
    # MACs come from a second pass at batch 1 rather than dividing by the batch: a net may fold the
    # batch axis into others (Flatten axis 0), and params that are shaped by the batch (a two-bottom
    # Scale's bias) must still be counted as the file declares them, as pycaffe does.
    single = _propagate(msg, {d.name: (1,) + tuple(d.dims[1:]) for d in decls})
    input_shape = tuple(decls[0].dims) if decls else None
    # Params as the file declares them, MACs and shapes per image.
    per_layer = tuple(replace(one, params=declared_one.params)
                      for one, declared_one in zip(single.per_layer, declared.per_layer))
    return NetStats(input_shape, declared.params, single.macs, declared.layers, tuple(declared.unknown),
                    declared.complete, declared.shapes, per_layer, dict(declared.unknown_where))
