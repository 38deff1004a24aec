"""The table of what each runtime's ONNX parser reads (edgeprof/models/onnx_versions.py): the rows the boards
meet, the versions without a row, and the per-operator limits. The figures are the cited sources' (the
module docstring); these tests pin them so a change to the table is a change someone meant."""
import pytest

from edgeprof.errors import InputError
from edgeprof.models.onnx_versions import ONNXRUNTIME, TENSORRT, _ONNXRUNTIME, _TENSORRT, reader, unreadable


@pytest.mark.parametrize("version, opset, ir", [
    ("8.2.1", 13, 7),     # JetPack 4.6 (TX2, Nano): onnx-tensorrt 8.2-GA, ONNX 1.8.0
    ("8.5.2", 17, 8),     # JetPack 5.1
    ("8.6.2", 17, 8),     # JetPack 6.0
    ("10.3.0", 20, 10),   # JetPack 6.1/6.2
    ("7.1.3", 11, 6),     # JetPack 4.4/4.5 (github.com/NVIDIA/TensorRT/issues/1346: "7.1.3 only supports up to opset 11")
    ("10.15.1", 24, 10),
])
def test_tensorrt_rows_the_boards_meet(version, opset, ir):
    found = reader(TENSORRT, version)
    assert (found.opset, found.ir_version, found.enforced) == (opset, ir, False)


@pytest.mark.parametrize("version, opset, ir", [
    ("1.10.0", 15, 8), ("1.11.0", 16, 8),     # the Jetson Zoo's builds for JetPack 4.6's Python 3.6
    ("1.14.1", 18, 8),                         # refuses IR 9 (github.com/microsoft/onnxruntime/issues/15874)
    ("1.16.3", 19, 9), ("1.17.1", 20, 9), ("1.20.1", 21, 10),
])
def test_onnxruntime_rows(version, opset, ir):
    found = reader(ONNXRUNTIME, version)
    assert (found.opset, found.ir_version, found.enforced) == (opset, ir, True)


def test_an_onnxruntime_newer_than_the_table_gets_its_last_row_and_says_so():
    found = reader(ONNXRUNTIME, "1.32.0")
    assert (found.row, found.opset, found.ir_version) == ("1.18", 21, 10)
    assert "newer than its last row" in found.sources


@pytest.mark.parametrize("runtime, version, reason", [
    (TENSORRT, "9.2.0", "LLM-only"), (TENSORRT, "12.0.0", "no source"), (TENSORRT, "4.0.1", "below 5.1"),
    (ONNXRUNTIME, "0.5.0", "older than 1.0"), (TENSORRT, "trt", "no version number"),
])
def test_versions_without_a_row_are_refused(runtime, version, reason):
    with pytest.raises(InputError, match=reason):
        reader(runtime, version)


@pytest.mark.parametrize("rows", [_TENSORRT, _ONNXRUNTIME])
def test_later_rows_never_read_less(rows):
    known = [(row[1], row[2]) for row in rows if row[1] is not None]
    assert known == sorted(known) and [row[0] for row in rows] == sorted(row[0] for row in rows)


def test_unreadable_names_the_operator_its_layers_and_the_version_that_has_it():
    ops = {"Conv": ["/0/Conv"], "LayerNormalization": ["/2/LayerNormalization"]}
    [reason] = unreadable(reader(TENSORRT, "8.5.2"), ops)
    assert reason == ("LayerNormalization (layer /2/LayerNormalization) needs TensorRT 8.6 or newer; "
                      "TensorRT 8.5.2's parser has no importer for it")
    assert unreadable(reader(TENSORRT, "8.6.2"), ops) == []
    assert unreadable(reader(ONNXRUNTIME, "1.10.0"), ops) == []   # ORT's limit is the opset, checked apart


def test_describe_says_whether_the_runtime_refuses_newer_files():
    assert "refuses files above them" in reader(ONNXRUNTIME, "1.10.0").describe()
    assert "may import a node with an older opset's meaning" in reader(TENSORRT, "8.2.1").describe()
