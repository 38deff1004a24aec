"""No field that changes the network is dropped (edgeprof.models.stats.PARAM_FIELDS): fork fields with a
defined meaning are honoured by counting and by the build (which share the resolved shapes), fields known
to be irrelevant to inference pass, and any other field is refused at its line, naming the layer and field."""
from pathlib import Path

import pytest

from edgeprof.models import PrototxtError, analyze, parse
from edgeprof.models.catalog import resolve
from edgeprof.models.netspec import netspec
from edgeprof.models.stats import PARAM_FIELDS

CORPUS = Path(__file__).parent / "corpus"


def net(pooling_fields: str, extra: str = "") -> str:
    return f'''name: "t"
input: "data"
input_shape {{ dim: 1 dim: 64 dim: 112 dim: 112 }}
layer {{ name: "pool1" type: "Pooling" bottom: "data" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 3 stride: 2 pad: 1 {pooling_fields} }} }}
{extra}'''


def pooled(text: str) -> tuple:
    return analyze(parse(text, "t.prototxt")).blob_shapes["pool1"][2:]


@pytest.mark.parametrize("fields, size", [
    ("", (57, 57)),                          # Caffe's ceil rounding
    ("ceil_mode: false", (56, 56)),          # the DenseNet/ResNeXt/DPN fork field: floor
    ("ceil_mode: true", (57, 57)),
    ("round_mode: FLOOR", (56, 56)),         # BVLC's own field (2018 on)
    ("round_mode: 1", (56, 56)),             # the enum by number, as the text format allows
    ("round_mode: CEIL ceil_mode: true", (57, 57)),
])
def test_pooling_rounding_fields_are_honoured(fields, size):
    assert pooled(net(fields)) == size


def test_the_build_pools_as_it_counts():
    [layer] = [entry for entry in netspec(parse(net("ceil_mode: false"), "t.prototxt"))["layers"]
               if entry["name"] == "pool1"]
    assert layer["round_mode"] == "FLOOR" and layer["output_size"] == [56, 56]


def position(text: str, field: str) -> tuple[int, int]:
    """1-based line and column of the first `field:` in text."""
    before = text[:text.index(field + ":")]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


@pytest.mark.parametrize("text, field", [
    (net("round_mode: FLOOR ceil_mode: true"), "ceil_mode"),
    (net("foo: 1"), "foo"),
    (net("", 'layer { name: "c" type: "Convolution" bottom: "pool1" top: "c"\n'
             '  convolution_param { num_output: 8 kernel_size: 1 my_fork_field: 2 } }'), "my_fork_field"),
    (net("", 'layer { name: "d" type: "Dropout" bottom: "pool1" top: "pool1"\n'
             '  dropout_param { dropout_ratio: 0.5 scale_train: false } }'), "scale_train"),
])
def test_an_unknown_or_contradicting_field_is_refused_at_its_line(text, field):
    line, column = position(text, field)
    with pytest.raises(PrototxtError) as refused:
        analyze(parse(text, "t.prototxt"))
    assert (refused.value.line, refused.value.column) == (line, column)
    assert field in str(refused.value) and str(refused.value).startswith(f"t.prototxt:{line}:{column}: layer ")


def test_fields_irrelevant_to_inference_pass():
    text = net("engine: CUDNN", 'layer { name: "c" type: "Convolution" bottom: "pool1" top: "c"\n'
               '  convolution_param { num_output: 8 kernel_size: 1 weight_filler { type: "xavier" } engine: CAFFE } }\n'
               'layer { name: "d" type: "Dropout" bottom: "c" top: "c" dropout_param { dropout_ratio: 0.5 } }')
    assert analyze(parse(text, "t.prototxt")).params == 64 * 8 + 8


def test_densenet121_with_ceil_mode_false_counts_as_published():
    model = resolve(str(CORPUS / "densenet121_shicai.prototxt"))
    stats = analyze(parse(model.text, model.path))
    assert stats.blob_shapes["pool1"] == (1, 64, 56, 56)
    assert stats.macs == pytest.approx(2.83e9, rel=0.02) and stats.complete


def test_a_refusal_lists_every_layer_type_it_cannot_build_with_counts_and_first_lines():
    from edgeprof.models.netspec import UnsupportedLayer
    text = net("", "\n".join(f'layer {{ name: "u{i}" type: "{t}" bottom: "pool1" top: "u{i}" }}'
                             for i, t in enumerate(["Interp", "MyFork", "Interp", "ROIPooling"])))
    with pytest.raises(UnsupportedLayer) as refused:
        netspec(parse(text, "t.prototxt"))
    assert str(refused.value).endswith("all it cannot build here: Interp x2 (first at line 6), MyFork x1 (first at "
                                       "line 7), ROIPooling x1 (first at line 9)")


@pytest.mark.parametrize("type_", sorted(PARAM_FIELDS))
def test_every_layer_type_refuses_an_invented_field_in_its_parameter_block(type_):
    block = PARAM_FIELDS[type_][0]
    text = net("", f'layer {{ name: "x" type: "{type_}" bottom: "pool1" top: "x"\n  {block} {{ invented_field: 1 }} }}')
    with pytest.raises(PrototxtError, match=f"{block} field `invented_field` is not one edgeprof knows"):
        analyze(parse(text, "t.prototxt"))


def test_every_built_type_is_counted_and_has_its_fields_listed():
    """One description for counting, building and refusing: a type the build knows has a shape rule and its
    parameter block's fields in PARAM_FIELDS (the types listed here have no parameter block in their caffe.proto)."""
    from edgeprof.models.netspec import SUPPORTED_TYPES
    from edgeprof.models.stats import _RULES
    from edgeprof.onboard.caffe_layers import LAYERS
    assert set(SUPPORTED_TYPES) == set(LAYERS) and set(SUPPORTED_TYPES) <= set(_RULES)
    assert set(SUPPORTED_TYPES) - set(PARAM_FIELDS) == {"Split", "AbsVal", "BNLL", "ReLU6", "Axpy"}
