"""Which torchvision:NAME is a detector on the host (edgeprof.models.catalog), and what that changes for --span
end-to-end (edgeprof.image_inputs): 0..1 RGB into the detector's own transform, and the detector's post step."""
import pytest

from edgeprof.image_inputs import DETECTOR_NORMALIZATION, normalization, post_kind
from edgeprof.models import resolve


@pytest.mark.parametrize("name", ["fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
                                  "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn", "retinanet_resnet50_fpn",
                                  "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large"])
def test_detectors_take_0_to_1_rgb_and_the_detector_post_step(name):
    model = resolve(f"torchvision:{name}")
    assert model.is_detector and post_kind(model) == "detector"
    assert normalization(model) == DETECTOR_NORMALIZATION and DETECTOR_NORMALIZATION["scale"] == [1 / 255] * 3


@pytest.mark.parametrize("name", ["torchvision:resnet50", "torchvision:ssd", "alexnet"])
def test_others_are_classifiers(name):
    model = resolve(name)
    assert not model.is_detector and post_kind(model) == "classifier"
