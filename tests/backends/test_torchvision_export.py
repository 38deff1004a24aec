"""torchvision detectors through the ONNX export (edgeprof/models/onnx_export.py) and ONNX Runtime.

With torch 2.13's TorchScript exporter and torchvision 0.28, all four detectors of issue 19 export at opset 17
(measured by hand, each once: ssdlite320_mobilenet_v3_large, fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn,
keypointrcnn_resnet50_fpn; the R-CNNs take 40 s to minutes here, so only SSDlite runs in the tests).
torchvision's NMS and RoIAlign have ONNX symbolics from opset 11 only: a board whose runtime reads less is refused
before the export, saying so (the exporter itself would fail on the transform's padding first)."""
import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")

from edgeprof.models import resolve  # noqa: E402
from edgeprof.models.onnx_export import ExportError, build, export_onnx  # noqa: E402

SSDLITE = resolve("torchvision:ssdlite320_mobilenet_v3_large")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_ssdlite_exports_and_onnx_runtime_finds_as_many_boxes():
    exported = export_onnx(SSDLITE, 1)
    assert exported.input_names == ["input"] and exported.output_names == ["output0", "output1", "output2"]
    loaded, inputs = build(SSDLITE, 1)
    with torch.no_grad():
        want = loaded.net.eval()(*inputs)
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": inputs[0].numpy()})
    assert [g.shape for g in got] == [tuple(w.shape) for w in want] == [(300, 4), (300,), (300,)]
    # The same scores kept by NMS. Which boxes and labels carry them differs: random weights score every class
    # of every anchor near 1/91, and the two NMS implementations break the many near-ties in another order.
    np.testing.assert_allclose(np.sort(got[1]), np.sort(want[1].numpy()), rtol=1e-4, atol=1e-6)


def test_a_detector_below_opset_11_is_refused_saying_why():
    with pytest.raises(ExportError, match=r"detectors export to ONNX from opset 11 \(its NMS and RoIAlign.*opset 10 "
                                          r"cannot hold them"):
        export_onnx(SSDLITE, 1, opset=10)
