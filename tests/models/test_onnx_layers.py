"""Every layer the PyTorch build has goes through the ONNX export (the path of ONNX Runtime and TensorRT) as
the same computation: the export of the layer fixtures, run in ONNX Runtime, gives the PyTorch build's outputs
for the same weights and input (torch's exporter traces each module; a layer it rewrote into other operators,
or dropped an argument of, would show here)."""
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from edgeprof.models.catalog import resolve  # noqa: E402
from edgeprof.models.onnx_export import build, export_onnx  # noqa: E402

from .test_fork_layers import FORK_NET  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("fixture", ["caffe_layers", "fork_layers"])
def test_onnx_runtime_computes_what_the_pytorch_build_does(fixture, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = DATA / "caffe_layers.prototxt"
    if fixture == "fork_layers":
        path = tmp_path / "fork_layers.prototxt"
        path.write_text(FORK_NET)
    model = resolve(str(path))
    exported = export_onnx(model, 2, "fp32", seed=0)
    loaded, inputs = build(model, 2, 0)
    with torch.no_grad():
        ours = loaded.net(*inputs)
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)})
    assert len(theirs) == len(ours) == len(loaded.net.returns)
    for name, a, b in zip(loaded.net.returns, ours, theirs):
        b = torch.from_numpy(b)
        assert tuple(b.shape) == tuple(a.shape), name
        assert (a - b).abs().max() <= 1e-5 * max(1.0, float(a.abs().max())), name
