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
from edgeprof.models.onnx_export import build, cache_dir  # noqa: E402
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
        "sha256": model.sha256, "opset": 17, "batch": 1, "precision": "fp32", "input_names": ["data"],
        "output_names": ["prob"], "seed": 0, "torch_version": torch.__version__}
