"""Parameter and multiply-accumulate counts of a Caffe net, from its deploy prototxt alone.

Blob shapes are propagated the way Caffe 1.0 reshapes its layers (Caffe's pooling rounds up, for
instance), so the figures describe the net Caffe builds, not a framework's re-implementation of it.

Conventions
- params: the learnable blobs as Caffe stores them for the file as declared, so the total equals
  pycaffe's `sum(b.data.size for v in net.params.values() for b in v)` exactly (checked on the catalog
  and the test fixtures): Convolution and InnerProduct weights plus their bias when bias_term is on;
  BatchNorm's three blobs (running mean C, running variance C, and the 1-element moving-average scale
  factor: 2C + 1, although none of them is learned by gradient); Scale's scale and optional bias.
- macs: multiply-accumulates of Convolution and InnerProduct for ONE image: the net with every input's
  batch set to 1, whatever batch the file declares. A convolution output element costs
  (C_in / group) x kernel volume MACs, an InnerProduct output costs its input size. Bias additions,
  BatchNorm, Scale, pooling, LRN and activations are not counted. (FLOPs are often quoted as 2 x MACs.)
- layers: layers of the TEST-phase net as the file declares them. The input declaration (an Input layer)
  is not counted; pycaffe's `len(net.layers)` is this plus one Input layer plus one Split layer per blob
  read by several layers, which Caffe inserts itself.
- A layer type whose output shape is not known here (SSD's PriorBox, a `Python` layer...) is listed in
  unknown_layers; its outputs and everything computed from them are then left out, and `complete` is
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


def _convolution(layer: Layer):
    p = layer.param("convolution_param")
    shape = layer.bottom()
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    n = len(shape) - axis - 1
    out_channels = layer.integer(p, "num_output")
    group = layer.integer(p, "group", 1)
    if n < 1:
        raise layer.error(f"a {len(shape)}-axis bottom has no spatial axes")
    kernel = spatial(layer, p, "kernel_size", "kernel", n, 0)
    stride = spatial(layer, p, "stride", "stride", n, 1)
    pad = spatial(layer, p, "pad", "pad", n, 0)
    dilation = spatial(layer, p, "dilation", None, n, 1)
    in_channels = shape[axis]
    if group < 1 or in_channels % group or out_channels % group:
        raise layer.error(f"group {group} must divide both {in_channels} input and {out_channels} output channels")
    out = []
    for size, k, s, pad_, d in zip(shape[axis + 1:], kernel, stride, pad, dilation):
        if k < 1 or s < 1 or d < 1:
            raise layer.error("kernel_size, stride and dilation must be positive (kernel_size is required)")
        o = (size + 2 * pad_ - (d * (k - 1) + 1)) // s + 1
        if o < 1:
            raise layer.error(f"kernel {k} stride {s} pad {pad_} on size {size} gives no output")
        out.append(o)
    top = shape[:axis] + (out_channels,) + tuple(out)
    per_output = in_channels // group * math.prod(kernel)
    params = out_channels * per_output + (out_channels if layer.flag(p, "bias_term", True) else 0)
    return [top], params, math.prod(top) * per_output


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
    return [shape[:2] + tuple(out)], 0, 0


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
    p = layer.param("scale_param")
    shape = layer.bottom()
    bias = layer.flag(p, "bias_term", False)
    if len(layer.bottoms) > 1:
        # The scale comes from the second bottom; only the optional bias is learned.
        return [shape], math.prod(layer.bottoms[1]) if bias else 0, 0
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    num_axes = layer.integer(p, "num_axes", 1)
    scaled = shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes]
    return [shape], math.prod(scaled) * (2 if bias else 1), 0


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
    **{t: _same_shape for t in ("ReLU", "Sigmoid", "TanH", "LRN", "Dropout", "Softmax", "Split")},
}


# The fields of each counted layer's parameter block in BVLC Caffe 1.0's caffe.proto
# (https://github.com/BVLC/caffe/blob/master/src/caffe/proto/caffe.proto), plus fork fields with a defined
# meaning, as (honoured: they shape the network and are read, irrelevant to inference). Any other field is
# refused at its line: it may change the network (as ceil_mode did before it was read), and edgeprof does not
# guess. Irrelevant: *filler (weight initialization for training; edgeprof's weights or --weights replace
# it), engine and force_nd_im2col (which implementation computes the same thing), moving_average_fraction
# and stable_prod_grad (training and gradients only), dropout_ratio (Dropout passes data through at test).
_SPATIAL = {"pad", "pad_h", "pad_w", "kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w"}
PARAM_FIELDS: dict[str, tuple[str, set[str], set[str]]] = {
    "Convolution": ("convolution_param", _SPATIAL | {"num_output", "bias_term", "dilation", "group", "axis"},
                    {"weight_filler", "bias_filler", "engine", "force_nd_im2col"}),
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
    "Dropout": ("dropout_param", set(), {"dropout_ratio"}),
}


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
