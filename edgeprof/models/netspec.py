"""Host side of the PyTorch backend: a Caffe deploy prototxt turned into a JSON-able description of the net.

The PyTorch runner's CaffeNet (edgeprof/onboard/caffe_layers.py) builds the nn.Module from it on the board;
the board has no edgeprof and no prototxt reader, so everything a layer needs is resolved here and the
runner never guesses: Caffe's defaults are filled in, axes are made non-negative, the sizes that weight
shapes depend on are written out (a Convolution's input channels, an InnerProduct's input features), and
Pooling carries its output size as Caffe computes it (ceil rounding, and the rule that drops a last window
starting in the padding), taken from edgeprof.models.stats, whose shape rules were checked against pycaffe.

Shapes are those of the file as declared, its batch included. Channel counts and spatial sizes do not
depend on the batch; the runner replaces the batch of every input.

The description (format "edgeprof-netspec", version 1):

    {"format": "edgeprof-netspec", "version": 1, "name": "AlexNet",
     "inputs":  [{"name": "data", "shape": [10, 3, 227, 227]}],
     "layers":  [{"name": "conv1", "type": "Convolution", "bottoms": ["data"], "tops": ["conv1"],
                  "line": 12, "num_output": 96, ...}, ...],
     "outputs": [{"name": "prob", "shape": [10, 1000]}]}

`layers` is the TEST-phase net in file order (layers that include/exclude rules keep out of `caffe time
-phase TEST` and pycaffe's caffe.TEST are dropped; Input layers are folded into `inputs`). `line` is the
layer's line in the prototxt, for error messages on the board. `outputs` are the blobs no layer consumes,
sorted by name as Caffe's Net orders them (pycaffe's net.outputs). The per-type fields are documented in
_BUILDERS' functions below.
"""
from __future__ import annotations

import math

from edgeprof.models.prototxt import Message, PrototxtError, inputs
# Shared with the shape rules rather than re-implemented: the TEST-phase layers with their types, the
# per-layer value readers with located errors, Convolution's per-axis settings and pooling's rounding.
from edgeprof.models.stats import (Layer, analyze, bias_shape, conv_geometry, crop_offsets, permute_order,
                                   pooling_rounds_up, prior_boxes, reshape_dims, slice_sizes, test_layers,
                                   upsample_size)

__all__ = ["FORMAT", "VERSION", "SUPPORTED_TYPES", "UnsupportedLayer", "netspec"]

FORMAT = "edgeprof-netspec"
VERSION = 1


class UnsupportedLayer(PrototxtError):
    """A layer the PyTorch backend cannot build: a type it does not implement, or an option Caffe has and
    the backend lacks (a shared-weight Convolution over several bottoms...). str() is
    "PATH:LINE:COL: layer 'x' (Type): ..."."""


def _unsupported(layer: Layer, what: str, span=None, note: str = "") -> UnsupportedLayer:
    where = span or layer.msg.span
    return UnsupportedLayer(layer.msg.path, where.line, where.column,
                            f"layer {layer.name!r} ({layer.type}): {what} is not supported by the PyTorch backend{note}")


def _enum(layer: Layer, block: Message, name: str, values: tuple[str, ...], default: str) -> str:
    """An enum field, written as its name or (as the text format also allows) its number; `values` are
    in caffe.proto's numbering ("" for a number the enum leaves unused)."""
    found = block.scalar(name)
    if found is None:
        return default
    if found.kind == "identifier" and found.value in values:
        return found.value
    if found.kind == "number" and isinstance(found.value, int) and 0 <= found.value < len(values) \
            and values[found.value]:
        return values[found.value]
    raise layer.error(f"{name} must be one of {', '.join(v for v in values if v)}, found {found.text!r}", found.span)


def _convolution(layer: Layer, tops):
    """num_output, in_channels, kernel/stride/pad/dilation as [h, w], group, bias_term. Weight blob
    [num_output, in_channels / group, kh, kw] (Deconvolution: [in_channels, num_output / group, kh, kw]),
    then bias [num_output]."""
    if len(layer.bottoms) > 1:
        raise _unsupported(layer, f"a {layer.type.lower()} over several bottoms (shared weights)")
    shape = layer.bottom()
    geometry = conv_geometry(layer)
    if geometry["axis"] != 1 or len(shape) != 4:
        raise _unsupported(layer, f"{layer.type.lower()} over axis {geometry['axis']} of a {len(shape)}-axis blob "
                                  f"(only 2-D convolution of N x C x H x W blobs is)")
    del geometry["axis"]
    return geometry


def _pooling_pair(layer: Layer, p: Message, name: str, prefix: str, default: int | None) -> list[int]:
    """Caffe's pooling setting: `name` for both axes, or `prefix`_h and `prefix`_w together (Caffe refuses
    one of the pair alone, or the pair with `name`)."""
    h, w = p.scalar(prefix + "_h"), p.scalar(prefix + "_w")
    if h is None and w is None:
        return [layer.integer(p, name, default)] * 2
    if h is None or w is None or p.scalar(name) is not None:
        raise layer.error(f"give {name}, or {prefix}_h and {prefix}_w together (Caffe refuses other combinations)",
                          (h or w).span)
    return [layer.integer(p, prefix + "_h"), layer.integer(p, prefix + "_w")]


def _pooling(layer: Layer, tops):
    """pool (MAX or AVE), kernel/stride/pad as [h, w], global_pooling, round_mode, and input_size and
    output_size ([h, w]) as Caffe computes them. With global_pooling the kernel is the input size."""
    p = layer.param("pooling_param")
    pool = _enum(layer, p, "pool", ("MAX", "AVE", "STOCHASTIC"), "MAX")
    if len(tops) > 1 and pool != "MAX":
        raise layer.error("a second top (the mask) is MAX pooling's only (Caffe refuses it otherwise)")
    if pool == "STOCHASTIC":
        raise _unsupported(layer, "STOCHASTIC pooling", p.scalar("pool").span)
    size = list(layer.bottom()[2:])
    global_pooling = layer.flag(p, "global_pooling", False)
    pad = _pooling_pair(layer, p, "pad", "pad", 0)
    stride = _pooling_pair(layer, p, "stride", "stride", 1)
    if global_pooling:
        if any(p.scalar(f) is not None for f in ("kernel_size", "kernel_h", "kernel_w")):
            raise layer.error("global_pooling takes its kernel from the input; a kernel size is refused by Caffe")
        if pad != [0, 0] or stride != [1, 1]:
            raise layer.error("global_pooling allows only pad 0 and stride 1 (Caffe refuses others)")
        kernel = size
    else:
        kernel = _pooling_pair(layer, p, "kernel_size", "kernel", None)
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise layer.error("pad must be smaller than the kernel (Caffe refuses others)")
    return {
        "pool": pool,
        "kernel": kernel,
        "stride": stride,
        "pad": pad,
        "global_pooling": global_pooling,
        "round_mode": "CEIL" if pooling_rounds_up(layer, p) else "FLOOR",
        "input_size": size,
        "output_size": list(tops[0][2:]),
        "mask": len(tops) > 1,
    }


def _lrn(layer: Layer, tops):
    """local_size (odd), alpha, beta, k, norm_region (ACROSS_CHANNELS or WITHIN_CHANNEL)."""
    p = layer.param("lrn_param")
    size = layer.integer(p, "local_size", 5)
    if size < 1 or size % 2 == 0:
        raise layer.error(f"local_size must be odd (Caffe accepts only odd sizes), found {size}")
    return {
        "local_size": size,
        "alpha": layer.number(p, "alpha", 1.0),
        "beta": layer.number(p, "beta", 0.75),
        "k": layer.number(p, "k", 1.0),
        "norm_region": _enum(layer, p, "norm_region", ("ACROSS_CHANNELS", "WITHIN_CHANNEL"), "ACROSS_CHANNELS"),
    }


def _inner_product(layer: Layer, tops):
    """num_output, in_features (the bottom flattened from axis), axis, bias_term, transpose. Weight blob
    [num_output, in_features] ([in_features, num_output] with transpose), then bias [num_output]."""
    p = layer.param("inner_product_param")
    shape = layer.bottom()
    axis = layer.axis(layer.integer(p, "axis", 1), len(shape))
    return {
        "num_output": layer.integer(p, "num_output"),
        "in_features": math.prod(shape[axis:]),
        "axis": axis,
        "bias_term": layer.flag(p, "bias_term", True),
        "transpose": layer.flag(p, "transpose", False),
    }


def _relu(layer: Layer, tops):
    """negative_slope (0: plain ReLU)."""
    return {"negative_slope": layer.number(layer.param("relu_param"), "negative_slope", 0.0)}


def _softmax(layer: Layer, tops):
    """axis."""
    return {"axis": layer.axis(layer.integer(layer.param("softmax_param"), "axis", 1), len(layer.bottom()))}


def _concat(layer: Layer, tops):
    """axis (concat_dim, its older spelling, is read too)."""
    p = layer.param("concat_param")
    return {"axis": layer.axis(layer.integer(p, "axis", layer.integer(p, "concat_dim", 1)), len(layer.bottom()))}


def _eltwise(layer: Layer, tops):
    """operation (PROD, SUM or MAX) and coeff (one per bottom; SUM only, 1.0 each when not given)."""
    p = layer.param("eltwise_param")
    operation = _enum(layer, p, "operation", ("PROD", "SUM", "MAX"), "SUM")
    coeff = p.scalars("coeff")
    for c in coeff:
        if c.kind != "number":
            raise layer.error(f"coeff must be a number, found {c.text!r}", c.span)
    if coeff and operation != "SUM":
        raise layer.error("coeff is for operation SUM only (Caffe refuses it otherwise)", coeff[0].span)
    if coeff and len(coeff) != len(layer.bottoms):
        raise layer.error(f"{len(coeff)} coeff values for {len(layer.bottoms)} bottoms", coeff[0].span)
    return {"operation": operation, "coeff": [float(c.value) for c in coeff] or [1.0] * len(layer.bottoms)}


def _batch_norm(layer: Layer, tops):
    """channels (axis 1), eps, use_global_stats (true unless the file says false: Caffe's default in the
    TEST phase). Blobs: mean x f, variance x f, and [f], the moving-average factor f the other two are
    divided by (0 reads as 1/f = 0)."""
    p = layer.param("batch_norm_param")
    shape = layer.bottom()
    return {
        "channels": shape[1] if len(shape) > 1 else 1,
        "eps": layer.number(p, "eps", 1e-5),
        "use_global_stats": layer.flag(p, "use_global_stats", True),
    }


def _scale(layer: Layer, tops):
    """axis, ndim (the first bottom's axis count), bias_term, and param_shape: the shape of the learned
    scale (one bottom) or of the second bottom that is the scale (two bottoms), laid along the first
    bottom from axis. Blobs: scale (one bottom only), then bias (with bias_term), both of param_shape."""
    p = layer.param("scale_param")
    shape = layer.bottom()
    return {"axis": layer.axis(layer.integer(p, "axis", 1), len(shape)), "ndim": len(shape),
            "bias_term": layer.flag(p, "bias_term", False), "param_shape": list(bias_shape(layer, "scale_param"))}


def _bias(layer: Layer, tops):
    """axis, ndim, param_shape as Scale's; the learned bias [param_shape] is the one blob with one bottom."""
    shape = layer.bottom()
    return {"axis": layer.axis(layer.integer(layer.param("bias_param"), "axis", 1), len(shape)), "ndim": len(shape),
            "param_shape": list(bias_shape(layer, "bias_param"))}


def _slice(layer: Layer, tops):
    """axis and sizes: each top's extent along axis, in top order."""
    axis, sizes = slice_sizes(layer)
    return {"axis": axis, "sizes": sizes}


def _reshape(layer: Layer, tops):
    """start, end (the bottom's axes [start, end) are replaced) and dims (0: copy, -1: infer), applied to
    the bottom's shape at run time, so a batch other than the file's goes through as in Caffe."""
    start, end, dims = reshape_dims(layer)
    return {"start": start, "end": end, "dims": dims}


def _crop(layer: Layer, tops):
    """axis and offsets (one per axis from axis); the sizes are the second bottom's."""
    axis, offsets = crop_offsets(layer)
    return {"axis": axis, "offsets": offsets}


def _prelu(layer: Layer, tops):
    """channels (1 when channel_shared); blob [channels] (Caffe stores a shared slope as a 1-value blob)."""
    shape = layer.bottom()
    shared = layer.flag(layer.param("prelu_param"), "channel_shared", False)
    return {"channels": 1 if shared else shape[1]}


def _elu(layer: Layer, tops):
    """alpha."""
    return {"alpha": layer.number(layer.param("elu_param"), "alpha", 1.0)}


def _power(layer: Layer, tops):
    """power, scale, shift: (shift + scale x) ^ power."""
    p = layer.param("power_param")
    return {"power": layer.number(p, "power", 1.0), "scale": layer.number(p, "scale", 1.0),
            "shift": layer.number(p, "shift", 0.0)}


def _exp_log(layer: Layer, tops):
    """base (-1: e), scale, shift: Exp base ^ (shift + scale x), Log log_base(shift + scale x)."""
    p = layer.param("exp_param" if layer.type == "Exp" else "log_param")
    base = layer.number(p, "base", -1.0)
    if base != -1 and base <= 0:
        raise layer.error(f"base must be -1 (e) or positive, found {base:g}")
    return {"base": base, "scale": layer.number(p, "scale", 1.0), "shift": layer.number(p, "shift", 0.0)}


def _threshold(layer: Layer, tops):
    """threshold: 1 where x > threshold, else 0."""
    return {"threshold": layer.number(layer.param("threshold_param"), "threshold", 0.0)}


def _clip(layer: Layer, tops):
    """min and max (both required by Caffe's ClipLayer)."""
    p = layer.param("clip_param")
    return {"min": layer.number(p, "min"), "max": layer.number(p, "max")}


def _swish(layer: Layer, tops):
    """beta: x sigmoid(beta x)."""
    return {"beta": layer.number(layer.param("swish_param"), "beta", 1.0)}


def _argmax(layer: Layer, tops):
    """top_k, out_max_val, axis (None: over all but the batch axis, into the [N, 1 or 2, top_k, 1...] top)."""
    p = layer.param("argmax_param")
    has_axis = p.scalar("axis") is not None
    return {"top_k": layer.integer(p, "top_k", 1), "out_max_val": layer.flag(p, "out_max_val", False),
            "axis": layer.axis(layer.integer(p, "axis"), len(layer.bottom())) if has_axis else None,
            "top_shape": list(tops[0][1:])}


def _reduction(layer: Layer, tops):
    """operation (SUM, ASUM, SUMSQ or MEAN), axis (every axis from it is reduced), coeff."""
    p = layer.param("reduction_param")
    return {"operation": _enum(layer, p, "operation", ("", "SUM", "ASUM", "SUMSQ", "MEAN"), "SUM"),
            "axis": layer.axis(layer.integer(p, "axis", 0), len(layer.bottom())), "coeff": layer.number(p, "coeff", 1.0)}


def _tile(layer: Layer, tops):
    """axis, tiles."""
    p = layer.param("tile_param")
    return {"axis": layer.axis(layer.integer(p, "axis", 1), len(layer.bottom())), "tiles": layer.integer(p, "tiles")}


def _bn(layer: Layer, tops):
    """channels, bn_mode (LEARN: normalize with the batch's statistics, then scale and shift, in training and
    test alike; INFERENCE: scale and shift only, the statistics folded in). Blobs scale, shift [1, C, 1, 1]."""
    return {"channels": layer.bottom()[1],
            "bn_mode": _enum(layer, layer.param("bn_param"), "bn_mode", ("LEARN", "INFERENCE"), "LEARN")}


def _upsample(layer: Layer, tops):
    """output_size [h, w]; the second bottom is the MAX pooling mask that says where each value goes."""
    return {"output_size": upsample_size(layer)}


def _permute(layer: Layer, tops):
    """order: every axis, the given ones first."""
    return {"order": permute_order(layer)}


def _normalize(layer: Layer, tops):
    """across_spatial, channel_shared, eps; blob: the scale, [1] shared or [channels]."""
    p = layer.param("norm_param")
    if len(layer.bottom()) != 4:
        raise layer.error("Normalize takes 4-axis blobs")
    shared = layer.flag(p, "channel_shared", True)
    return {"across_spatial": layer.flag(p, "across_spatial", True), "channels": 1 if shared else layer.bottom()[1],
            "eps": layer.number(p, "eps", 1e-10)}


def _prior_box(layer: Layer, tops):
    """The resolved prior_box_param (edgeprof.models.stats.prior_boxes): the boxes depend on shapes only."""
    return prior_boxes(layer)


def _detection_output(layer: Layer, tops):
    """num_classes, background_label_id, code_type (CORNER or CENTER_SIZE), variance_encoded_in_target,
    confidence_threshold (None: every score), nms_threshold, top_k (per class before NMS, -1: all),
    keep_top_k (per image after NMS, -1: all), num_priors. The bottoms are the location predictions
    [N, priors x 4], the class confidences [N, priors x num_classes] and PriorBox's output."""
    p = layer.param("detection_output_param")
    nms = layer.msg.message("detection_output_param")
    nms = nms.message("nms_param") if nms is not None else None
    nms = nms or Message(layer.msg.path, layer.msg.span)
    for f in nms.fields:
        if f.name not in ("nms_threshold", "top_k", "eta"):
            raise layer.error(f"nms_param field `{f.name}` is not one edgeprof knows (it reads nms_threshold, "
                              f"top_k, eta)", f.span)
    if layer.number(nms, "eta", 1.0) != 1.0:
        raise _unsupported(layer, "adaptive NMS (eta below 1)", nms.scalar("eta").span)
    if not layer.flag(p, "share_location", True):
        raise _unsupported(layer, "share_location: false (a box per class)", p.scalar("share_location").span)
    code = _enum(layer, p, "code_type", ("", "CORNER", "CENTER_SIZE", "CORNER_SIZE"), "CORNER")
    if code == "CORNER_SIZE":
        raise _unsupported(layer, "code_type CORNER_SIZE", p.scalar("code_type").span)
    loc, conf, prior = layer.bottoms
    classes = layer.integer(p, "num_classes")
    priors = prior[2] // 4 if len(prior) == 3 else 0
    if len(prior) != 3 or prior[:2] != (1, 2) or math.prod(loc[1:]) != priors * 4 \
            or math.prod(conf[1:]) != priors * classes:
        raise layer.error(f"bottoms {list(loc)}, {list(conf)}, {list(prior)} are not the location predictions, "
                          f"the {classes}-class confidences and the priors of the same boxes")
    threshold = p.scalar("confidence_threshold")
    return {"num_classes": classes, "background_label_id": layer.integer(p, "background_label_id", 0),
            "code_type": code, "variance_encoded_in_target": layer.flag(p, "variance_encoded_in_target", False),
            "confidence_threshold": None if threshold is None else layer.number(p, "confidence_threshold"),
            "nms_threshold": layer.number(nms, "nms_threshold", 0.3), "top_k": layer.integer(nms, "top_k", -1),
            "keep_top_k": layer.integer(p, "keep_top_k", -1), "num_priors": priors}


def _shuffle_channel(layer: Layer, tops):
    """group."""
    return {"group": layer.integer(layer.param("shuffle_channel_param"), "group", 1)}


def _flatten(layer: Layer, tops):
    """axis and end_axis (inclusive)."""
    p = layer.param("flatten_param")
    ndim = len(layer.bottom())
    return {"axis": layer.axis(layer.integer(p, "axis", 1), ndim),
            "end_axis": layer.axis(layer.integer(p, "end_axis", -1), ndim, "end_axis")}


def _dropout(layer: Layer, tops):
    """dropout_ratio (the identity in the TEST phase; train-step drops with it)."""
    ratio = layer.number(layer.param("dropout_param"), "dropout_ratio", 0.5)
    if not 0 <= ratio < 1:
        raise layer.error(f"dropout_ratio must be in [0, 1), found {ratio:g}")
    return {"dropout_ratio": ratio}


def _no_params(layer: Layer, tops):
    """Sigmoid, TanH, Split, AbsVal, BNLL, ReLU6, Axpy: nothing to fill in."""
    return {}


_BUILDERS = {
    "Convolution": _convolution,
    "Pooling": _pooling,
    "LRN": _lrn,
    "InnerProduct": _inner_product,
    "ReLU": _relu,
    "Softmax": _softmax,
    "Concat": _concat,
    "Eltwise": _eltwise,
    "BatchNorm": _batch_norm,
    "Scale": _scale,
    "Flatten": _flatten,
    "Dropout": _dropout,
    "Sigmoid": _no_params,
    "TanH": _no_params,
    "Split": _no_params,
    "AbsVal": _no_params,
    "BNLL": _no_params,
    "ReLU6": _no_params,
    "Deconvolution": _convolution,
    "Bias": _bias,
    "Slice": _slice,
    "Reshape": _reshape,
    "Crop": _crop,
    "PReLU": _prelu,
    "ELU": _elu,
    "Power": _power,
    "Exp": _exp_log,
    "Log": _exp_log,
    "Threshold": _threshold,
    "Clip": _clip,
    "Swish": _swish,
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
    "Axpy": _no_params,
}
SUPPORTED_TYPES = tuple(sorted(_BUILDERS))

# Bottom and top counts as Caffe's layers check them: (min bottoms, max bottoms, min tops, max tops),
# None for no limit. Options past these that Caffe has and the backend lacks are refused by the builders.
_ARITY = {
    "Axpy": (3, 3, 1, 1),
    "Convolution": (1, None, 1, None),
    "Deconvolution": (1, None, 1, None),
    "Pooling": (1, 1, 1, 2),
    "Concat": (1, None, 1, 1),
    "Eltwise": (2, None, 1, 1),
    "Scale": (1, 2, 1, 1),
    "Bias": (1, 2, 1, 1),
    "Split": (1, 1, 1, None),
    "Slice": (1, 1, 1, None),
    "Crop": (2, 2, 1, 1),
    "Upsample": (2, 2, 1, 1),     # SegNet's: the blob and the pooling mask
    "PriorBox": (2, 2, 1, 1),
    "DetectionOutput": (3, 3, 1, 1),
}


def _check_arity(layer: Layer, bottoms: list[str], tops: list[str]) -> None:
    low_b, high_b, low_t, high_t = _ARITY.get(layer.type, (1, 1, 1, 1))
    for what, count, low, high in (("bottom", len(bottoms), low_b, high_b), ("top", len(tops), low_t, high_t)):
        if count < low or (high is not None and count > high):
            wanted = str(low) if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise layer.error(f"takes {wanted} {what} blob(s), found {count}")
    if layer.type in ("Convolution", "Deconvolution") and len(bottoms) != len(tops):
        raise layer.error(f"needs as many tops as bottoms, found {len(bottoms)} bottoms and {len(tops)} tops")


def _refuse_unbuildable_types(msg: Message) -> None:
    """Every layer type the backend cannot build, with its count and first line, in one refusal (at the first
    one's type field): a user learns the whole list at once, not one run at a time."""
    found: dict[str, list] = {}   # type -> [count, first layer message]
    for layer_msg, type_ in test_layers(msg):
        if type_ not in _BUILDERS:
            found.setdefault(type_, [0, layer_msg])[0] += 1
    if not found:
        return
    first_type, (_, first) = next(iter(found.items()))
    listed = ", ".join(f"{type_} x{count} (first at line {m.span.line})" for type_, (count, m) in found.items())
    type_field = first.scalar("type")
    python = found.get("Python")
    # A Python layer is the user's own code (Faster R-CNN's proposal layer is one): nothing in the file says
    # what it computes, so it is named with its module rather than guessed at.
    note = "" if python is None else (
        f". The Python layer runs {_python_code(python[1])}, code of your own that edgeprof cannot translate "
        f"(Faster R-CNN's proposal layer is one): measure the net up to the layer before it")
    raise _unsupported(Layer(first, first_type, [], 0), f"layer type {first_type!r}",
                       type_field.span if type_field else None,
                       f" (it supports {', '.join(SUPPORTED_TYPES)}); all it cannot build here: {listed}{note}")


def _python_code(layer_msg: Message) -> str:
    p = layer_msg.message("python_param")
    module, cls = (p.get("module"), p.get("layer")) if p is not None else (None, None)
    return f"{module}.{cls}" if module and cls else "a class its python_param does not name"


def netspec(msg: Message) -> dict:
    """The description of the TEST-phase net `msg` (a parsed deploy prototxt) that caffe_layers.CaffeNet builds.

    Raises UnsupportedLayer for a layer the backend cannot build, and PrototxtError (located at the
    layer) for a net Caffe itself would refuse: a bottom no earlier layer produces, a kernel larger than
    its input, an even LRN size..."""
    decls = inputs(msg)
    if not decls:
        raise msg.error("no input declaration: expected 'input:' with input_dim or input_shape, "
                        "or an Input layer with input_param { shape { dim: ... } }")
    # The shape pass refuses what Caffe's reshape would; its blob shapes are final, which is every
    # blob's only shape here since the in-place layers among the supported ones keep the shape.
    _refuse_unbuildable_types(msg)
    shapes = analyze(msg).blob_shapes
    produced = {d.name for d in decls}
    unconsumed = set(produced)
    spec_layers = []
    for layer_msg, type_ in test_layers(msg):
        bottoms = [str(s.value) for s in layer_msg.scalars("bottom")]
        tops = [str(s.value) for s in layer_msg.scalars("top")]
        layer = Layer(layer_msg, type_, [], len(tops))
        build = _BUILDERS.get(type_)
        if build is None:
            type_field = layer_msg.scalar("type")
            raise _unsupported(layer, f"layer type {type_!r}", type_field.span if type_field else None,
                               f" (it supports {', '.join(SUPPORTED_TYPES)})")
        for bottom in bottoms:
            if bottom not in produced:
                raise layer.error(f"bottom {bottom!r} is not produced by an input or an earlier layer")
        _check_arity(layer, bottoms, tops)
        layer.bottoms = [shapes[b] for b in bottoms]
        entry = {"name": layer.name, "type": type_, "bottoms": bottoms, "tops": tops, "line": layer_msg.span.line}
        entry.update(build(layer, [shapes.get(t) for t in tops]))
        spec_layers.append(entry)
        produced.update(tops)
        # Caffe's outputs: blobs produced and not consumed since (an in-place layer consumes and
        # produces its blob).
        unconsumed.difference_update(bottoms)
        unconsumed.update(tops)
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": str(msg.get("name", "")),
        "inputs": [{"name": d.name, "shape": list(d.dims)} for d in decls],
        "layers": spec_layers,
        "outputs": [{"name": name, "shape": list(shapes[name])} for name in sorted(unconsumed)],
    }
