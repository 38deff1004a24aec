"""torchvision's detectors in the PyTorch runner (edgeprof/onboard/torchvision_models.py): random weights with no
download (the backbone's too), the score threshold that makes NMS see every candidate, the batch as a list of
images, the result's "detector" figures, scripting for TorchScript. SSDlite on a small image keeps it quick; Faster
R-CNN is only built, not run, here (tests/integration/test_measure_detectors.py measures it on the lab)."""
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from edgeprof.onboard import torch_models, torch_runner, torchvision_models  # noqa: E402

from .test_pytorch_variants import QUICK, RUNNER, run_runner  # noqa: E402

SSDLITE = "ssdlite320_mobilenet_v3_large"


@pytest.fixture(scope="module")
def torchvision():
    try:
        import torchvision
    except ImportError:
        pytest.fail("torchvision is missing: run tests/setup")
    return torchvision


def load(*argv):
    return torch_models.load_model(torch_runner.parse_args(list(argv)))


def test_a_detector_takes_a_camera_frame_by_default_and_a_classifier_224(torchvision):
    assert load("--torchvision", SSDLITE).inputs == [{"name": "input", "shape": [1, 3, 480, 640]}]
    assert load("--torchvision", SSDLITE, "--input-shape", "3,120,160").inputs[0]["shape"] == [1, 3, 120, 160]
    classifier = load("--torchvision", "mobilenet_v3_small")
    assert classifier.inputs[0]["shape"] == [1, 3, 224, 224] and classifier.detector is None


def test_random_weights_for_the_backbone_too(torchvision):
    # Faster R-CNN's builder defaults weights_backbone to ImageNet weights fetched from download.pytorch.org,
    # which the boards cannot reach: the build passes None for both.
    builder = torchvision.models.get_model_builder("fasterrcnn_resnet50_fpn")
    assert torchvision_models._random_weights(builder, True) == {"weights": None, "weights_backbone": None}
    classifier = torchvision.models.get_model_builder("resnet18")
    assert torchvision_models._random_weights(classifier, True) == {"weights": None}


@pytest.mark.parametrize("name, holder, default", [
    ("fasterrcnn_resnet50_fpn", lambda m: m.roi_heads, 0.05),
    (SSDLITE, lambda m: m, 0.001),
])
def test_score_threshold_lets_every_candidate_reach_nms(torchvision, name, holder, default):
    model = load("--torchvision", name)
    assert holder(model.net.model).score_thresh == 0.0
    assert model.detector["score_threshold"] == 0.0 and model.detector["torchvision_score_threshold"] == default


def test_ssdlite_measured_with_its_detections(torchvision, tmp_path):
    out, _ = run_runner("--torchvision", SSDLITE, "--input-shape", "3,120,160", "--batch", 2, *QUICK)
    # Per image boxes, scores, labels (SSD's order), image 0's then image 1's.
    assert out["outputs"] == ["output%d" % i for i in range(6)]
    detector = out["detector"]
    # Threshold 0: NMS keeps up to the cap per image, which random weights reach.
    assert detector["detections"] == [300, 300] and detector["detections_per_image"] == 300
    assert detector["input"] == "a list of 2 image(s) of 3x120x160" and "NMS" in detector["span"]
    assert out["settings"]["input_shape"] == [3, 120, 160] and out["latency_ms"]["median"] > 0


def test_a_detector_scripts_to_the_same_outputs(torchvision):
    model = load("--torchvision", SSDLITE, "--input-shape", "3,96,128")
    net = model.net.eval()
    x = torch_models.random_inputs(model.inputs, 1, 1)[0]
    with torch.no_grad():
        eager, scripted = net(x), torch.jit.script(net)(x)
    assert len(eager) == len(scripted) == 3
    assert all(torch.equal(a, b) for a, b in zip(eager, scripted))


def test_detections_counts_each_images_boxes():
    boxes = [torch.zeros(n, 4) for n in (3, 0)]
    outputs = [boxes[0], torch.zeros(3), torch.zeros(3), boxes[1], torch.zeros(0), torch.zeros(0)]
    assert torchvision_models.detections(outputs, 2) == [3, 0]


def test_a_scripted_detector_file_runs_from_the_torchscript_source(torchvision, tmp_path):
    model = load("--torchvision", SSDLITE, "--input-shape", "3,96,128")
    torch.jit.script(model.net.eval()).save(str(tmp_path / "ssdlite.pt"))
    out, _ = run_runner("--torchscript", tmp_path / "ssdlite.pt", "--input-shape", "3,96,128", *QUICK)
    assert out["outputs"] == ["output0", "output1", "output2"] and out["settings"]["source"] == "torchscript"


def test_libtorch_refuses_a_detector_saying_why(torchvision, tmp_path):
    runner = os.path.join(os.path.dirname(RUNNER), "libtorch_runner.py")
    done = subprocess.run([sys.executable, runner, "export", "--output", str(tmp_path / "m.pt"), "--",
                           "--torchvision", SSDLITE, "--input-shape", "3,96,128"], capture_output=True, text=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1 and out["kind"] == "unsupported"
    assert "torchvision::nms" in out["error"] and "--backend pytorch" in out["error"]
