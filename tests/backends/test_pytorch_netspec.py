"""Tests of the host-side net description for the PyTorch backend (edgeprof.models.netspec).

Whether the description builds the same net as Caffe is checked numerically against pycaffe in
test_pytorch_equivalence.py; these tests pin what the description says: Caffe's defaults, the TEST-phase
net, Caffe's outputs, and located errors.
"""
import json
from pathlib import Path

import pytest

from edgeprof.models.netspec import SUPPORTED_TYPES, UnsupportedLayer, netspec
from edgeprof.models.catalog import catalog_names, resolve
from edgeprof.models.prototxt import PrototxtError, parse
from edgeprof.models.stats import analyze

DATA = Path(__file__).parent.parent / "models" / "data"


def spec_of(body: str, shape: str = "dim: 1 dim: 4 dim: 11 dim: 13") -> dict:
    return netspec(parse(f'input: "data"\ninput_shape {{ {shape} }}\n{body}', "net.prototxt"))


def layer_of(body: str, **kw) -> dict:
    return spec_of(body, **kw)["layers"][-1]


def error_of(body: str, kind=PrototxtError, **kw) -> PrototxtError:
    with pytest.raises(kind) as info:
        spec_of(body, **kw)
    return info.value


@pytest.mark.parametrize("name", catalog_names())
def test_catalog_models_are_described_json_ready(name):
    source = resolve(name)
    msg = parse(source.text, source.path)
    spec = netspec(msg)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["format"] == "edgeprof-netspec" and spec["version"] == 1
    assert [o["name"] for o in spec["outputs"]] == ["prob"]
    assert spec["outputs"][0]["shape"] == list(analyze(msg).blob_shapes["prob"])
    # One entry per TEST-phase layer, as edgeprof.models.stats counts them.
    assert len(spec["layers"]) == analyze(msg).layers


def test_defaults_are_filled_in():
    spec = spec_of("""
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 8 kernel_size: 3 } }
        layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
        layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { kernel_size: 3 stride: 2 } }
        layer { name: "norm" type: "LRN" bottom: "pool" top: "norm" }
        layer { name: "bn" type: "BatchNorm" bottom: "norm" top: "norm" }
        layer { name: "sc" type: "Scale" bottom: "norm" top: "norm" }
        layer { name: "fc" type: "InnerProduct" bottom: "norm" top: "fc" inner_product_param { num_output: 5 } }
        layer { name: "sum" type: "Eltwise" bottom: "fc" bottom: "fc" top: "sum" }
        layer { name: "prob" type: "Softmax" bottom: "sum" top: "prob" }
    """)
    by_name = {layer["name"]: layer for layer in spec["layers"]}
    assert by_name["conv"] == {
        "name": "conv", "type": "Convolution", "bottoms": ["data"], "tops": ["conv"], "line": 4,
        "num_output": 8, "in_channels": 4, "kernel": [3, 3], "stride": [1, 1], "pad": [0, 0],
        "dilation": [1, 1], "group": 1, "bias_term": True,
    }
    assert by_name["relu"]["negative_slope"] == 0.0
    assert {k: by_name["pool"][k] for k in ("pool", "kernel", "stride", "pad", "global_pooling", "round_mode",
                                            "input_size", "output_size")} == {
        "pool": "MAX", "kernel": [3, 3], "stride": [2, 2], "pad": [0, 0], "global_pooling": False,
        "round_mode": "CEIL", "input_size": [9, 11], "output_size": [4, 5]}
    assert {k: by_name["norm"][k] for k in ("local_size", "alpha", "beta", "k", "norm_region")} == {
        "local_size": 5, "alpha": 1.0, "beta": 0.75, "k": 1.0, "norm_region": "ACROSS_CHANNELS"}
    assert {k: by_name["bn"][k] for k in ("channels", "eps", "use_global_stats")} == {
        "channels": 8, "eps": 1e-5, "use_global_stats": True}
    assert {k: by_name["sc"][k] for k in ("axis", "ndim", "bias_term", "param_shape")} == {
        "axis": 1, "ndim": 4, "bias_term": False, "param_shape": [8]}
    assert {k: by_name["fc"][k] for k in ("num_output", "in_features", "axis", "bias_term", "transpose")} == {
        "num_output": 5, "in_features": 8 * 4 * 5, "axis": 1, "bias_term": True, "transpose": False}
    assert {k: by_name["sum"][k] for k in ("operation", "coeff")} == {"operation": "SUM", "coeff": [1.0, 1.0]}
    assert by_name["prob"]["axis"] == 1


def test_explicit_settings_and_h_w_forms():
    conv = layer_of("""layer { name: "c" type: "Convolution" bottom: "data" top: "c"
        convolution_param { num_output: 8 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0
                            dilation: 2 group: 2 bias_term: false } }""")
    assert (conv["kernel"], conv["stride"], conv["pad"], conv["dilation"], conv["group"], conv["bias_term"]) == (
        [3, 1], [2, 1], [1, 0], [2, 2], 2, False)
    conv = layer_of("""layer { name: "c" type: "Convolution" bottom: "data" top: "c"
        convolution_param { num_output: 8 kernel_size: 3 kernel_size: 1 pad: 1 pad: 0 } }""")
    assert (conv["kernel"], conv["pad"]) == ([3, 1], [1, 0])
    pool = layer_of("""layer { name: "p" type: "Pooling" bottom: "data" top: "p"
        pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0 round_mode: FLOOR } }""")
    assert (pool["pool"], pool["kernel"], pool["stride"], pool["pad"], pool["round_mode"]) == (
        "AVE", [3, 2], [2, 3], [1, 0], "FLOOR")
    lrn = layer_of("""layer { name: "n" type: "LRN" bottom: "data" top: "n"
        lrn_param { local_size: 3 alpha: 2 beta: 0.5 k: 2 norm_region: WITHIN_CHANNEL } }""")
    assert (lrn["local_size"], lrn["alpha"], lrn["beta"], lrn["k"], lrn["norm_region"]) == (3, 2.0, 0.5, 2.0,
                                                                                         "WITHIN_CHANNEL")
    relu = layer_of('layer { name: "r" type: "ReLU" bottom: "data" top: "r" relu_param { negative_slope: 0.1 } }')
    assert relu["negative_slope"] == 0.1
    elt = layer_of("""layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e"
        eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }""")
    assert elt["coeff"] == [0.5, -2.0]
    # Enum values may also be written as numbers (caffe.proto's numbering: PROD 0, SUM 1, MAX 2).
    assert layer_of('layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e" '
                    'eltwise_param { operation: 2 } }')["operation"] == "MAX"
    bn = layer_of('layer { name: "b" type: "BatchNorm" bottom: "data" top: "b" '
                  'batch_norm_param { use_global_stats: false eps: 0.001 } }')
    assert (bn["use_global_stats"], bn["eps"]) == (False, 0.001)


def test_axes_are_made_non_negative():
    spec = spec_of("""
        layer { name: "f" type: "Flatten" bottom: "data" top: "f" flatten_param { axis: -2 } }
        layer { name: "s" type: "Softmax" bottom: "f" top: "s" softmax_param { axis: -1 } }
        layer { name: "c" type: "Concat" bottom: "data" bottom: "data" top: "c" concat_param { concat_dim: -3 } }
        layer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" inner_product_param { num_output: 2 axis: -2 } }
    """)
    f, s, c, fc = spec["layers"]
    assert (f["axis"], f["end_axis"], s["axis"], c["axis"], fc["axis"], fc["in_features"]) == (2, 3, 2, 1, 2, 143)


def test_global_pooling_kernel_is_the_input():
    pool = layer_of('layer { name: "g" type: "Pooling" bottom: "data" top: "g" '
                    'pooling_param { pool: AVE global_pooling: true } }')
    assert (pool["kernel"], pool["output_size"], pool["global_pooling"]) == ([11, 13], [1, 1], True)


def test_pooling_sizes_are_caffes():
    # The shapes fixture's pooling sizes were printed by pycaffe (see tests/models/test_stats.py).
    spec = netspec(parse((DATA / "shapes.prototxt").read_text(), "shapes.prototxt"))
    sizes = {layer["name"]: layer["output_size"] for layer in spec["layers"] if layer["type"] == "Pooling"}
    assert sizes == {"ceil": [3, 10], "floor": [2, 9], "guard": [3, 10], "global": [1, 1]}


def test_test_phase_net_inputs_outputs_and_two_bottom_scale():
    spec = netspec(parse((DATA / "shapes.prototxt").read_text(), "shapes.prototxt"))
    names = [layer["name"] for layer in spec["layers"]]
    assert "train_only" not in names and "not_test" not in names
    assert names[:3] == ["sum", "rect", "dil"]
    assert spec["inputs"] == [{"name": "a", "shape": [2, 8, 17, 23]}, {"name": "b", "shape": [2, 8, 17, 23]}]
    # Blobs nobody reads, sorted by name as Caffe's std::set orders them.
    assert [o["name"] for o in spec["outputs"]] == ["floor", "global", "guard", "prob"]
    mul = next(layer for layer in spec["layers"] if layer["name"] == "mul")
    assert (mul["axis"], mul["bias_term"], mul["param_shape"]) == (0, True, [2, 6, 7])


def test_legacy_v1_layers():
    spec = netspec(parse((DATA / "lenet_v1.prototxt").read_text(), "lenet_v1.prototxt"))
    assert [layer["type"] for layer in spec["layers"]] == [
        "Convolution", "Pooling", "Convolution", "Pooling", "InnerProduct", "ReLU", "InnerProduct", "Softmax"]
    assert spec["layers"][4]["in_features"] == 50 * 4 * 4


def test_unsupported_type_names_layer_type_and_line():
    path = DATA / "detection_unknown_layers.prototxt"
    with pytest.raises(UnsupportedLayer) as info:
        netspec(parse(path.read_text(), str(path)))
    error = info.value
    assert (error.line, error.column) == (55, 9)  # the `type: "Python"` value; SSD's layers are built
    assert str(error).startswith(f"{path}:55:9: layer 'rpn' (Python): layer type 'Python' is "
                                 f"not supported by the PyTorch backend (it supports AbsVal, ArgMax, ")
    assert str(error).endswith("all it cannot build here: Python x1 (first at line 53). The Python layer runs "
                               "rpn.proposal_layer.ProposalLayer, code of your own that edgeprof cannot translate "
                               "(Faster R-CNN's proposal layer is one): measure the net up to the layer before it")
    assert isinstance(error, PrototxtError)


@pytest.mark.parametrize("body, kind, message", [
    ('layer { name: "c" type: "Convolution" bottom: "data" bottom: "data" top: "c1" top: "c2" '
     'convolution_param { num_output: 2 kernel_size: 1 } }',
     UnsupportedLayer, "a convolution over several bottoms (shared weights) is not supported"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "mask" pooling_param { pool: AVE kernel_size: 2 } }',
     PrototxtError, "a second top (the mask) is MAX pooling's only"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: STOCHASTIC kernel_size: 2 } }',
     UnsupportedLayer, "STOCHASTIC pooling is not supported"),
    ('layer { name: "n" type: "LRN" bottom: "data" top: "n" lrn_param { local_size: 4 } }',
     PrototxtError, "local_size must be odd"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 2 pad: 2 } }',
     PrototxtError, "pad must be smaller than the kernel"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { global_pooling: true stride: 2 } }',
     PrototxtError, "global_pooling allows only pad 0 and stride 1"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 3 pad_h: 1 } }',
     PrototxtError, "give pad, or pad_h and pad_w together"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 3 kernel_h: 3 kernel_w: 1 } }',
     PrototxtError, "give kernel_size, or kernel_h and kernel_w together"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { global_pooling: true kernel_size: 2 } }',
     PrototxtError, "global_pooling takes its kernel from the input"),
    ('layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e" '
     'eltwise_param { operation: PROD coeff: 1 coeff: 2 } }', PrototxtError, "coeff is for operation SUM only"),
    ('layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e" eltwise_param { coeff: 1 } }',
     PrototxtError, "1 coeff values for 2 bottoms"),
    ('layer { name: "e" type: "Eltwise" bottom: "data" top: "e" }', PrototxtError, "takes 2 or more bottom blob(s)"),
    ('layer { name: "r" type: "ReLU" bottom: "nope" top: "r" }', PrototxtError,
     "bottom 'nope' is not produced by an input or an earlier layer"),
    ('layer { name: "r" type: "ReLU" bottom: "data" top: "r" relu_param { negative_slope: "x" } }',
     PrototxtError, "negative_slope must be a number"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 } }',
     PrototxtError, "kernel_size, stride and dilation must be positive"),
])
def test_located_errors(body, kind, message):
    error = error_of(body, kind)
    assert error.path == "net.prototxt" and error.line == 3
    assert message in str(error)


def test_three_dimensional_convolution_is_refused():
    error = error_of('layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                     'convolution_param { num_output: 2 kernel_size: 1 } }', UnsupportedLayer,
                     shape="dim: 1 dim: 2 dim: 3 dim: 4 dim: 5")
    assert "convolution over axis 1 of a 5-axis blob" in str(error)


def test_net_without_input_is_an_error():
    with pytest.raises(PrototxtError, match="no input declaration"):
        netspec(parse('layer { name: "r" type: "ReLU" bottom: "x" top: "x" }', "net.prototxt"))


def test_supported_types():
    assert set(SUPPORTED_TYPES) >= {"Convolution", "ReLU", "Pooling", "LRN", "InnerProduct", "Dropout", "Softmax",
                                    "Concat", "Eltwise", "BatchNorm", "Scale", "Flatten", "Split"}
