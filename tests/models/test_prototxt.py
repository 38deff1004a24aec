"""Tests of the prototxt reader and batch rewriter (edgeprof.models.prototxt)."""
import difflib
from importlib import resources
from pathlib import Path

import pytest

from edgeprof.models.prototxt import PrototxtError, inputs, layers, parse, set_batch

DATA = Path(__file__).parent / "data"


def catalog_text(name: str) -> str:
    return resources.files("edgeprof.prototxts").joinpath(name + ".prototxt").read_text(encoding="utf-8")


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
            if line[:1] in "+-"]


def error_of(text: str, path: str = "net.prototxt") -> PrototxtError:
    with pytest.raises(PrototxtError) as info:
        parse(text, path)
    return info.value


# --- reading -----------------------------------------------------------------------------------------

def test_scalars_keep_value_kind_and_position():
    text = ('name: "net"  # comment with "quotes" and { braces\n'
            "neg: -1.5e-3\n"
            "hexa: 0x1F\n"
            "single: 'it''s'\n"
            'escaped: "a\\"b\\n\\101"\n'
            "pool: MAX\n"
            "flag: true\n"
            "half: .5\n"
            "suffixed: 2.0f\n"
            "count: 42\n")
    msg = parse(text)
    assert [f.name for f in msg.fields] == ["name", "neg", "hexa", "single", "escaped", "pool", "flag", "half",
                                            "suffixed", "count"]
    assert msg.get("name") == "net"
    assert msg.get("neg") == -1.5e-3
    assert msg.get("hexa") == 31
    assert msg.get("single") == "its"  # adjacent literals are one value
    assert msg.get("escaped") == 'a"b\nA'
    assert msg.scalar("pool").kind == "identifier" and msg.get("pool") == "MAX"
    assert msg.get("flag") == "true"
    assert msg.get("half") == 0.5
    assert msg.get("suffixed") == 2.0
    count = msg.scalar("count")
    assert count.value == 42 and isinstance(count.value, int) and count.kind == "number"
    assert (count.span.line, count.span.column) == (10, 8)
    assert text[count.span.start:count.span.end] == "42"
    escaped = msg.scalar("escaped")
    assert text[escaped.span.start:escaped.span.end] == escaped.text == '"a\\"b\\n\\101"'


def test_messages_with_and_without_colon_repeated_fields_and_separators():
    msg = parse('layer { name: "a" top: "x" top: "y" } layer: { name: "b" }, layer < name: "c" >;\n'
                "shape { dim: [1, 3, 224, 224] }\n")
    found = msg.messages("layer")
    assert [m.get("name") for m in found] == ["a", "b", "c"]
    assert [s.value for s in found[0].scalars("top")] == ["x", "y"]
    assert [s.value for s in msg.message("shape").scalars("dim")] == [1, 3, 224, 224]
    assert (found[1].span.line, found[1].span.column) == (1, 39)


def test_column_counts_characters_and_tabs_as_one():
    msg = parse("a {\r\n\tb: 'é'\r\n\tc: 7\r\n}\r\n")
    c = msg.message("a").scalar("c")
    assert (c.span.line, c.span.column) == (3, 5)


def test_deep_nesting_is_not_a_recursion_error():
    depth = 20000
    msg = parse("a { " * depth + "b: 1 " + "} " * depth)
    for _ in range(depth):
        msg = msg.message("a")
    assert msg.get("b") == 1


def test_unknown_layer_types_are_read_like_any_other():
    msg = parse((DATA / "detection_unknown_layers.prototxt").read_text())
    by_name = {layer.get("name"): layer for layer in layers(msg)}
    assert by_name["conv1_mbox_priorbox"].get("type") == "PriorBox"
    assert [s.value for s in by_name["conv1_mbox_priorbox"].message("prior_box_param").scalars("variance")] == \
        [0.1, 0.1, 0.2, 0.2]
    python = by_name["rpn"].message("python_param")
    assert python.get("module") == "rpn.proposal_layer"
    assert python.get("param_str") == "'feat_stride': 16"
    assert by_name["detection_out"].message("detection_output_param").get("confidence_threshold") == -0.01


def test_legacy_v1_layers_blocks_are_layers():
    msg = parse((DATA / "lenet_v1.prototxt").read_text())
    assert [layer.get("type") for layer in layers(msg)][:3] == ["CONVOLUTION", "POOLING", "CONVOLUTION"]


def test_scalar_where_a_message_is_expected_is_located():
    msg = parse('layer: 3\n', "f.prototxt")
    with pytest.raises(PrototxtError) as info:
        layers(msg)
    assert str(info.value) == "f.prototxt:1:1: 'layer' should be a { ... } block"


# --- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, column, message", [
    # The innermost block still open at the end of the file is the one missing its '}'.
    ('layer {\n  name: "a"\n  convolution_param {\n    num_output: 3\n}\n', 1, 7,
     "'{' is never closed (end of file reached)"),
    ('name: "a"\nlayer { }\n}\n', 3, 1, "unmatched '}'"),
    ('layer <\n  name: "a"\n}\n', 3, 1, "expected '>' to close the '<' of line 1, found '}'"),
    ('layer {\n  convolution_param {\n    num_output:\n    kernel_size: 3\n  }\n}\n', 3, 5,
     "missing value for 'num_output'"),
    ('layer { num_output: }\n', 1, 9, "missing value for 'num_output'"),
    ("num_output:", 1, 1, "missing value for 'num_output'"),
    ('layer {\n  name: "conv1\n  type: "Convolution"\n}\n', 2, 9,
     "unterminated string (strings end on the line they start)"),
    ("layer {\n  num_output: 3 @\n}\n", 2, 17, "unexpected character '@'"),
    ("input_dim: 10x\n", 1, 12, "malformed number '10x'"),
    ("input_dim: 1.2.3\n", 1, 12, "malformed number '1.2.3'"),
    (": 3\n", 1, 1, "expected a field name, found ':'"),
    ("layer {\n  num_output 3\n}\n", 2, 14, "expected ':' or '{' after field name 'num_output'"),
    ("dim: [1, 2\n", 1, 6, "'[' is never closed (end of file reached)"),
    ("dim: [1 2]\n", 1, 9, "expected ',' or ']' in the list of 'dim'"),
    ("shape: [{ dim: 1 }]\n", 1, 9, "lists of messages are not supported ('shape')"),
])
def test_malformed_text_reports_line_and_column(text, line, column, message):
    error = error_of(text)
    assert (error.path, error.line, error.column, error.message) == ("net.prototxt", line, column, message)
    assert str(error) == f"net.prototxt:{line}:{column}: {message}"
    assert isinstance(error, ValueError)


def test_a_brace_deleted_from_a_real_file_is_found():
    lines = catalog_text("vgg16").splitlines(keepends=True)
    # Drop the '}' that closes conv3_1's convolution_param: the layer block it belonged to is the one
    # left open at the end of the file.
    start = next(i for i, line in enumerate(lines) if line == '  name: "conv3_1"\n') - 1
    closing = next(i for i in range(start, len(lines)) if lines[i] == "  }\n")
    del lines[closing]
    error = error_of("".join(lines), "vgg16.prototxt")
    assert (error.line, error.column) == (start + 1, 7)


# --- inputs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, style, dims", [
    ("alexnet", "input_layer", [10, 3, 227, 227]),
    ("googlenet", "input_shape", [10, 3, 224, 224]),
    ("vgg16", "input_dim", [10, 3, 224, 224]),
    ("resnet50", "input_dim", [1, 3, 224, 224]),
])
def test_catalog_inputs(name, style, dims):
    text = catalog_text(name)
    (decl,) = inputs(parse(text))
    assert (decl.name, decl.style, decl.dims) == ("data", style, dims)
    assert [text[s.start:s.end] for s in decl.dim_spans] == [str(d) for d in dims]


def test_input_layer_with_several_tops_and_shapes():
    text = ('layer { name: "in" type: "Input" top: "im" top: "info"\n'
            "  input_param { shape: { dim: 4 dim: 3 dim: 8 dim: 8 } shape { dim: 4 dim: 3 } } }\n")
    decls = inputs(parse(text))
    assert [(d.name, d.dims, d.style) for d in decls] == [("im", [4, 3, 8, 8], "input_layer"),
                                                          ("info", [4, 3], "input_layer")]


def test_several_legacy_inputs_split_input_dim_by_four():
    text = 'input: "a"\ninput: "b"\n' + "".join(f"input_dim: {d}\n" for d in (2, 3, 4, 5, 6, 7, 8, 9))
    assert [(d.name, d.dims) for d in inputs(parse(text))] == [("a", [2, 3, 4, 5]), ("b", [6, 7, 8, 9])]


@pytest.mark.parametrize("text, line, column, message", [
    ('input: "a"\ninput_dim: 1\ninput_dim: 3\n', 1, 1, "1 input(s) need 4 input_dim values, found 2"),
    ('input: "a"\n', 1, 1, "input 'a' has no input_dim or input_shape"),
    ("input_dim: 1\n", 1, 1, "input_dim/input_shape without an 'input:' name"),
    ('input: "a"\ninput_shape { dim: 1 dim: -3 }\n', 2, 27, "a dimension must be a non-negative integer, found '-3'"),
    ('layer { type: "Input" top: "a" }\n', 1, 1, "Input layer without input_param { shape { dim: ... } }"),
])
def test_inconsistent_input_declarations(text, line, column, message):
    with pytest.raises(PrototxtError) as info:
        inputs(parse(text, "in.prototxt"))
    assert (info.value.line, info.value.column, info.value.message) == (line, column, message)


# --- set_batch ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, before, after", [
    ("alexnet", "  input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } }\n",
                "  input_param { shape: { dim: 32 dim: 3 dim: 227 dim: 227 } }\n"),
    ("googlenet", "  dim: 10\n", "  dim: 32\n"),
    ("vgg16", "input_dim: 10\n", "input_dim: 32\n"),
    ("resnet50", "input_dim: 1\n", "input_dim: 32\n"),
])
def test_set_batch_changes_only_the_batch_line(name, before, after):
    text = catalog_text(name)
    rewritten = set_batch(text, 32)
    assert changed_lines(text, rewritten) == ["- " + before, "+ " + after]
    assert inputs(parse(rewritten))[0].dims[0] == 32
    assert set_batch(rewritten, int(before.split("dim: ")[1].split()[0])) == text


def test_set_batch_keeps_every_other_byte():
    text = ("# header: input_dim: 10 stays\r\n"
            "input:\t'data'   # trailing comment\r\n"
            "input_dim:   10 input_dim: 10\r\n"
            "input_dim: 10\r\n"
            "input_dim: 10\r\n"
            "layer{name:'x'type:'ReLU'bottom:'data'top:'data'}")
    expected = text.replace("input_dim:   10", "input_dim:   7", 1)
    assert set_batch(text, 7) == expected


def test_set_batch_rewrites_every_input_once():
    text = ('layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 1 } } }\n'
            'layer { name: "in2" type: "Input" top: "c" input_param { shape { dim: [2, 5] } } }\n')
    assert set_batch(text, 16) == text.replace("dim: 2 ", "dim: 16 ").replace("[2,", "[16,")


def test_set_batch_on_files_with_unknown_layers_and_v1_layers():
    detection = (DATA / "detection_unknown_layers.prototxt").read_text()
    assert changed_lines(detection, set_batch(detection, 8)) == [
        "- input_shape { dim: 1 dim: 3 dim: 300 dim: 300 }\n", "+ input_shape { dim: 8 dim: 3 dim: 300 dim: 300 }\n"]
    lenet = (DATA / "lenet_v1.prototxt").read_text()
    assert changed_lines(lenet, set_batch(lenet, 1)) == ["- input_dim: 64\n", "+ input_dim: 1\n"]


def test_set_batch_without_input_declaration():
    with pytest.raises(PrototxtError) as info:
        set_batch('layer { name: "data" type: "Data" top: "data" }\n', 4, "train.prototxt")
    assert str(info.value).startswith("train.prototxt:1:1: no input declaration")


@pytest.mark.parametrize("batch", [0, -3])
def test_set_batch_refuses_batch_below_one(batch):
    with pytest.raises(PrototxtError) as info:
        set_batch(catalog_text("vgg16"), batch, "vgg16.prototxt")
    assert (info.value.line, info.value.column) == (11, 12)
    assert info.value.message == f"batch must be at least 1, got {batch}"


def test_set_batch_reports_parse_errors_with_the_path():
    with pytest.raises(PrototxtError) as info:
        set_batch('input: "data\n', 1, "bad.prototxt")
    assert str(info.value) == "bad.prototxt:1:8: unterminated string (strings end on the line they start)"
