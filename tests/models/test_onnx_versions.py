"""The table of what each runtime's ONNX parser reads (edgeprof/models/onnx_versions.py): the rows the boards
meet, the versions without a row, and the per-operator limits. The figures are the cited sources' (the
module docstring); these tests pin them so a change to the table is a change someone meant."""
import os
import subprocess
from pathlib import Path

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
    ("1.15.1", 19, 9),                         # the compatibility page says IR 8; the release reads 9
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


# --- the ONNX Runtime rows against real ONNX Runtime releases ------------------------------------------------

# Real onnxruntime releases in virtual environments of the Pythons they were built for (tests/setup makes them
# where pyenv has those Pythons): 1.10.0 on Python 3.6 is what the Jetson Zoo lists for JetPack 4.6. x86 builds
# of the same releases: the limits are the release's, whatever the build.
ORT_ENVS = Path(os.environ.get("EDGEPROF_ORT_ENVS", "/var/cache/edgeprof-lab/ort"))
ORT_RELEASES = ("1.10.0", "1.11.1", "1.14.1", "1.15.1", "1.16.3")
NET = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "prob" type: "Softmax" bottom: "pool" top: "prob" }
"""
# Loads and runs a file with the release's own onnxruntime; prints "ok" or the error.
LOAD = """import sys, numpy, onnxruntime
try:
    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    session.run(None, {"data": numpy.zeros((1, 3, 16, 16), numpy.float32)})
    print("ok")
except Exception as e:
    print(e)
"""


@pytest.mark.parametrize("release", ORT_RELEASES)
def test_a_real_onnxruntime_takes_its_rows_file_and_refuses_one_opset_or_ir_version_more(release, tmp_path,
                                                                                          monkeypatch):
    python = ORT_ENVS / release / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no onnxruntime {release} environment at {python.parent.parent} (tests/setup)")
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from edgeprof.models import resolve
    from edgeprof.models.onnx_export import export_for, export_onnx, target_for
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "tiny.prototxt").write_text(NET)
    model = resolve(str(tmp_path / "tiny.prototxt"))
    row = reader(ONNXRUNTIME, release)

    def load(path):
        return subprocess.run([str(python), "-c", LOAD, str(path)], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert load(export_for(model, 1, "fp32", target_for(row)).path) == "ok"
    newer_opset = export_onnx(model, 1, opset=row.opset + 1, ir_version=row.ir_version)
    assert load(newer_opset.path).endswith(f"Opset {row.opset + 1} is under development and support for this is "
                                           f"limited. The operator schemas and or other functionality may change "
                                           f"before next ONNX release and in this case ONNX Runtime will not "
                                           f"guarantee backward compatibility. Current official support for domain "
                                           f"ai.onnx is till opset {row.opset}.")
    newer_ir = onnx.load(export_for(model, 1, "fp32", target_for(row)).path)
    newer_ir.ir_version = row.ir_version + 1
    onnx.save(newer_ir, str(tmp_path / "newer_ir.onnx"))
    assert f"Unsupported model IR version: {row.ir_version + 1}, max supported IR version: {row.ir_version}" in \
        load(tmp_path / "newer_ir.onnx")
