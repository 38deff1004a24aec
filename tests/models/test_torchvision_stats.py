"""`edgeprof models torchvision:NAME` (edgeprof/models/torchvision_stats.py): parameters and MACs of the model the
PyTorch runner builds, counted on the host as it runs. The references are torchvision's own model tables
(docs.pytorch.org/vision/stable/models.html: "Params" and "GFLOPS", which torchvision counts as multiply-adds)."""
import pytest

pytest.importorskip("torch")

from edgeprof.errors import InputError  # noqa: E402
from edgeprof.models import describe, resolve  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def torchvision():
    try:
        import torchvision
    except ImportError:
        pytest.fail("torchvision is missing: run tests/setup")
    return torchvision


@pytest.mark.parametrize("name, params, gmacs, shape", [
    # torchvision's table: ResNet-18 11,689,512 params, 1.81 GFLOPS at 224x224.
    ("resnet18", 11_689_512, 1.81, [1, 3, 224, 224]),
    # SSDlite320: 3,440,060 params, 0.58 GFLOPS (its transform resizes any input to 320x320).
    ("ssdlite320_mobilenet_v3_large", 3_440_060, 0.58, [1, 3, 480, 640]),
])
def test_params_and_macs_match_torchvisions_table(name, params, gmacs, shape):
    row = describe(resolve(f"torchvision:{name}"))
    assert row["params"] == params and row["input_shape"] == shape
    assert row["macs"] / 1e9 == pytest.approx(gmacs, abs=0.01)
    assert row["layers"] > 50 and row["weights"].startswith("random (seed 0, torchvision ")


def test_a_detectors_row_says_what_is_not_counted_and_its_settings():
    row = describe(resolve("torchvision:ssdlite320_mobilenet_v3_large"))
    assert "NMS" in row["not_counted"] and row["detector"]["score_threshold"] == 0.0


def test_per_layer_counts_are_a_prototxts():
    with pytest.raises(InputError, match="drop --layers"):
        describe(resolve("torchvision:resnet18"), per_layer=True)
