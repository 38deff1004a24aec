"""ONNX export of the PyTorch build (edgeprof/models/onnx_export.py): the file passes onnx's checker, holds
the runner's net at the batch and precision asked for, and a second export of the same content comes from
the cache. Every test has a cache folder of its own (XDG_CACHE_HOME)."""
import builtins
import hashlib
import json
import os
import sys

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
np = pytest.importorskip("numpy")

from edgeprof.backends import BackendUnavailable  # noqa: E402
from edgeprof.models.onnx_export import ExportError, export_onnx  # noqa: E402
from edgeprof.models.onnx_export import build, cache_dir, export_for, exporter_max_opset, target_for  # noqa: E402
from edgeprof.models.onnx_versions import ONNXRUNTIME, TENSORRT, reader  # noqa: E402
from edgeprof.models import resolve  # noqa: E402

# A BatchNorm + Scale pair, LRN, MAX pooling with explicit padding (pad > kernel / 2) and AVE pooling, two
# branches joined by Concat.
NET = """
name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "norm1" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "cat" type: "Concat" bottom: "pool1" bottom: "pool2" top: "cat" }
layer { name: "fc" type: "InnerProduct" bottom: "cat" top: "fc" inner_product_param { num_output: 6 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.prototxt"
    path.write_text(NET)
    return resolve(str(path))


def ort_outputs(path, inputs: dict) -> list:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def test_export_checks_and_matches_the_pytorch_build(small, tmp_path):
    model = export_onnx(small, 3)
    assert (model.batch, model.precision, model.opset, model.seed) == (3, "fp32", 17, 0)
    assert (model.input_names, model.output_names, model.cached) == (["data"], ["prob"], False)
    assert model.torch_version == torch.__version__ and model.export_s > 0
    # Content-addressed: the file is named by its own hash, in the host's cache.
    data = open(model.path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == model.sha256
    assert model.path == str(tmp_path / "cache" / "edgeprof" / "onnx" / f"{model.sha256}.onnx")
    assert cache_dir() == tmp_path / "cache" / "edgeprof" / "onnx"
    graph = onnx.load(model.path)
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version == 17
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [3, 3, 16, 16]
    # The runner's net with its default seeded weights: ONNX Runtime computes what torch computes.
    loaded, inputs = build(small, 3)
    with torch.no_grad():
        expected = loaded.net.eval()(*inputs)[0].numpy()
    got = ort_outputs(model.path, {"data": inputs[0].numpy()})[0]
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-5


def test_second_export_comes_from_the_cache(small):
    first = export_onnx(small, 2)
    again = export_onnx(small, 2)
    assert again.cached and again.export_s is None
    assert (again.path, again.sha256, again.output_names) == (first.path, first.sha256, first.output_names)
    # Anything that changes the file is part of the key.
    for other in (export_onnx(small, 1), export_onnx(small, 2, seed=5), export_onnx(small, 2, opset=13)):
        assert not other.cached and other.sha256 != first.sha256
    # A file gone from the cache is exported again.
    os.unlink(first.path)
    redone = export_onnx(small, 2)
    assert not redone.cached and redone.sha256 == first.sha256  # the export is deterministic


def test_fp16_module_and_input_in_half(small):
    model = export_onnx(small, 2, "fp16")
    graph = onnx.load(model.path)
    onnx.checker.check_model(graph)
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert graph.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    loaded, inputs = build(small, 2)
    with torch.no_grad():
        expected = loaded.net.eval()(*inputs)[0].numpy()
    got = ort_outputs(model.path, {"data": inputs[0].numpy().astype(np.float16)})[0]
    assert got.dtype == np.float16
    assert np.abs(got.astype(np.float32) - expected).max() < 1e-2  # probabilities, to fp16's 3 digits


def test_precisions_onnx_lacks_are_refused(small):
    with pytest.raises(ExportError, match="precision 'bf16' is not one of fp32, fp16"):
        export_onnx(small, 1, "bf16")


def test_torchscript_source(tmp_path):
    module = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                                  torch.nn.AdaptiveAvgPool2d(1)))
    module.save(str(tmp_path / "tiny.pt"))
    model = export_onnx(resolve(str(tmp_path / "tiny.pt")), 2)
    assert (model.input_names, model.output_names) == (["input"], ["output"])
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(ort_outputs(model.path, {"input": x.numpy()})[0], expected, rtol=1e-4, atol=1e-5)


def test_unsupported_layer_is_an_export_error(tmp_path):
    path = tmp_path / "odd.prototxt"
    path.write_text(NET.replace('type: "LRN"', 'type: "SPP"'))
    with pytest.raises(ExportError, match="SPP"):
        export_onnx(resolve(str(path)), 1)


def test_ave_pooling_with_caffe_divisors_is_refused(tmp_path):
    # pad > kernel / 2: the runner pads explicitly and divides by Caffe's divisors (divisor_override),
    # which the exporter would drop.
    path = tmp_path / "ave.prototxt"
    path.write_text(NET.replace("stride: 2 pad: 1", "stride: 2 pad: 2"))
    with pytest.raises(ExportError, match="AVE pooling pool2 divides by Caffe's clipped window sizes"):
        export_onnx(resolve(str(path)), 1)


def test_torchvision_needs_torchvision_on_the_host(monkeypatch):
    real_import = builtins.__import__

    def without_torchvision(name, *args, **kwargs):
        if name == "torchvision":
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_torchvision)
    with pytest.raises(ExportError, match="torchvision does not import on this host"):
        export_onnx(resolve("torchvision:resnet18"), 1)


def test_host_without_onnx_says_how_to_install(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(BackendUnavailable,
                       match=r"needs torch and onnx on this host .*pip install 'edgeprof\[local\]'"):
        export_onnx(small, 1)


def test_cache_entry_records_what_was_exported(small, tmp_path):
    model = export_onnx(small, 1)
    [entry] = (tmp_path / "cache" / "edgeprof" / "onnx" / "keys").glob("*.json")
    assert json.loads(entry.read_text()) == {
        "sha256": model.sha256, "opset": 17, "ir_version": model.ir_version, "batch": 1, "precision": "fp32",
        "input_names": ["data"], "output_names": ["prob"], "seed": 0, "torch_version": torch.__version__}


# --- for a board: opset and IR version from its runtime (edgeprof/models/onnx_versions.py) ---------------

def test_a_tensorrt_8_2_and_a_10_3_board_get_different_files(small):
    old = export_for(small, 1, "fp32", target_for(reader(TENSORRT, "8.2.1")))
    new = export_for(small, 1, "fp32", target_for(reader(TENSORRT, "10.3.0")))
    assert (old.opset, old.ir_version) == (13, 7)      # onnx-tensorrt 8.2-GA: opset 13, ONNX 1.8.0
    assert new.opset == min(20, exporter_max_opset()) and new.ir_version <= 10
    assert old.sha256 != new.sha256
    written = onnx.load(old.path)
    assert (written.ir_version, written.opset_import[0].version) == (7, 13)
    onnx.checker.check_model(written)


def test_ir_version_is_lowered_and_cached_apart(small):
    as_written = export_onnx(small, 1, opset=13)
    lowered = export_onnx(small, 1, opset=13, ir_version=6)
    assert as_written.ir_version > 6 and lowered.ir_version == 6 and not lowered.cached
    assert onnx.load(lowered.path).ir_version == 6
    assert export_onnx(small, 1, opset=13, ir_version=6).cached


def test_opset_override_keeps_the_boards_ir_version(small):
    target = target_for(reader(ONNXRUNTIME, "1.10.0"), opset=12)
    assert (target.opset, target.ir_version) == (12, 8) and target.chosen.startswith("--opset 12")
    assert export_for(small, 1, "fp32", target).opset == 12


def test_the_exporters_highest_opset_caps_the_table():
    target = target_for(reader(TENSORRT, "10.15.1"))
    assert target.opset == exporter_max_opset() < 24 and "writes at most" in target.chosen


def test_an_onnxruntime_1_10_board_reads_the_file_edgeprof_writes_for_it(small):
    """The real onnxruntime here checks the IR version and opset as 1.10 would against its own limits: the file
    for 1.10 (opset 15, IR 8) is within both, and loads."""
    exported = export_for(small, 1, "fp32", target_for(reader(ONNXRUNTIME, "1.10.0")))
    assert (exported.opset, exported.ir_version) == (15, 8)
    ort_outputs(exported.path, {"data": np.zeros((1, 3, 16, 16), np.float32)})


def test_real_onnxruntime_refuses_a_file_above_its_ir_version(small, tmp_path):
    """What the table's 'enforced' means, on the real onnxruntime of this host: a file stamped one IR version
    above what its onnx knows fails at load, with the message users report (issues cited in onnx_versions)."""
    written = onnx.load(export_onnx(small, 1).path)
    written.ir_version = onnx.IR_VERSION + 1
    path = tmp_path / "newer.onnx"
    onnx.save(written, path)
    with pytest.raises(Exception, match=r"Unsupported model IR version: \d+, max supported IR version: \d+"):
        ort_outputs(str(path), {"data": np.zeros((1, 3, 16, 16), np.float32)})


def test_ceil_pooling_below_opset_10_is_refused_naming_the_layer(tmp_path):
    path = tmp_path / "ceil.prototxt"
    # 16 - 3 = 13 is odd: Caffe's (13 / 2) rounded up gives 8 outputs, rounding down 7.
    path.write_text(NET.split('layer { name: "bn1"')[0] + 'layer { name: "pool1" type: "Pooling" bottom: "conv1" '
                    'top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n')
    model = resolve(str(path))
    assert export_onnx(model, 1, opset=10).opset == 10
    with pytest.raises(ExportError, match=r"pooling pool1 rounds its output size up .* from opset 10"):
        export_onnx(model, 1, opset=9)


def layer_norm_model(tmp_path):
    # The runner's default input is 3x224x224: pooled to 4x6x6 whatever the size, then normalized.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(6), torch.nn.LayerNorm([4, 6, 6]))
    path = tmp_path / "ln.pt"
    torch.jit.script(net.eval()).save(str(path))
    return resolve(str(path))


def test_an_operator_the_boards_tensorrt_lacks_is_refused_naming_it(tmp_path):
    model = layer_norm_model(tmp_path)
    # At the opset TensorRT 8.2 reads, torch writes layer norm as elementary operators: the file builds.
    assert "LayerNormalization" not in {n.op_type for n in onnx.load(
        export_for(model, 1, "fp32", target_for(reader(TENSORRT, "8.2.1"))).path).graph.node}
    # Forced to opset 17, it is one LayerNormalization node, which 8.2's parser has no importer for.
    with pytest.raises(ExportError, match=r"LayerNormalization \(layer .+\) needs TensorRT 8\.6 or newer; "
                                          r"TensorRT 8\.2\.1's parser has no importer for it"):
        export_for(model, 1, "fp32", target_for(reader(TENSORRT, "8.2.1"), opset=17))
    assert export_for(model, 1, "fp32", target_for(reader(TENSORRT, "8.6.2"), opset=17)).opset == 17
