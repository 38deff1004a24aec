"""torchvision's models as the PyTorch runner builds them (torch_models.py's --torchvision source): classifiers, and
detectors (torchvision.models.detection: Faster/Mask/Keypoint R-CNN, SSD, SSDlite, RetinaNet, FCOS). Runs ON the
board beside torch_models.py; the host imports it through torch_models. Python 3.6+, torch and torchvision.

Weights are random (weights=None from torchvision 0.13, pretrained=False before) after torch.manual_seed(seed): the
boards have no network to fetch pretrained ones, and the compute is the same. A detector's backbone too
(weights_backbone=None, pretrained_backbone=False before), which would otherwise be ImageNet weights fetched from
download.pytorch.org.

Detectors (Detector) take a batch tensor [N, 3, H, W] (default 3x480x640, as a camera frame, unless
--input-shape says otherwise) as the list of N images torchvision's detectors take, and their forward is the whole
of torchvision's inference, the span a user's call to the model has:
    transform   GeneralizedRCNNTransform: normalize with the model's mean and std, resize (R-CNNs: shorter side to
                800, longer at most 1333; SSDlite: 320x320; SSD: 300x300), batch into one padded tensor
    network     backbone (+ FPN), heads (R-CNNs: RPN proposals with their own NMS, RoI heads)
    postprocess box decoding, score threshold, per-class NMS, top detections per image (R-CNNs: then the mask or
                keypoint head on those), boxes (and masks, keypoints) scaled back to the input image's size
Outputs per image, flattened in order: boxes, labels, scores (R-CNNs; SSD: boxes, scores, labels) and masks or
keypoints and keypoint scores, so "output0"... are image 0's, then image 1's.

Score threshold: with random weights, class scores sit near 1/num_classes (about 0.011 for COCO's 91), below the
R-CNNs' default threshold of 0.05, so the post-processing could see no box at all and time an empty NMS. Every
detector is built with its score threshold at SCORE_THRESHOLD (0: every candidate its own caps let through reaches
NMS: RPN's pre/post-NMS top-n, SSD's top-k candidates per class, detections per image), which is the most
post-processing work the detector does on an image: an upper bound of what trained weights give, said in the
result (detector_settings: the threshold, torchvision's default, the cap per image; detections: boxes per image
of the first inference).
"""
import inspect
import time
from typing import List  # noqa: F401 (Detector.forward's type comment, which TorchScript reads)

import torch
import torch.nn as nn

if __package__:
    from .harness import RunnerError
else:
    from harness import RunnerError

CLASSIFIER_INPUT = [3, 224, 224]
DETECTOR_INPUT = [3, 480, 640]
SCORE_THRESHOLD = 0.0
DETECTION_MODULE = "torchvision.models.detection"


def import_torchvision():
    try:
        import torchvision
    except ImportError as e:
        raise RunnerError("unavailable", "--torchvision: torchvision does not import on this board (%s): install "
                          "the torchvision release that matches torch %s (pip3 install torchvision, or "
                          "NVIDIA's build on Jetsons)" % (e, torch.__version__))
    return torchvision


def register_operators():
    """Import torchvision where the board has it, which registers its C++ operators with torch (torch.ops.torchvision),
    so that TorchScript calling them loads."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass


def _builders(models):
    """{name: builder function} of every model torchvision has: its registry from 0.14, else the functions of
    torchvision.models and torchvision.models.detection."""
    if hasattr(models, "get_model"):
        return {name: models.get_model_builder(name) for name in models.list_models()}
    found = {}
    for module in (models, getattr(models, "detection", None)):
        for name in dir(module) if module is not None else []:
            if not name.startswith("_") and inspect.isfunction(getattr(module, name)):
                found[name] = getattr(module, name)
    return found


def is_detector(builder):
    return builder.__module__.startswith(DETECTION_MODULE)


def _random_weights(builder, new_api):
    """The builder's keyword arguments for random weights, the backbone's included where it takes one."""
    accepted = inspect.signature(builder).parameters
    if new_api:
        return {key: None for key in ("weights", "weights_backbone") if key in accepted}
    return {key: False for key in ("pretrained", "pretrained_backbone") if key in accepted}


def _postprocess_settings(model):
    """What holds a detector's score_thresh and detections_per_img: the R-CNNs' RoIHeads, else the model itself
    (SSD, SSDlite, RetinaNet, FCOS)."""
    return getattr(model, "roi_heads", model)


class Detector(nn.Module):
    """A torchvision detector fed a batch tensor as its list of images, returning every image's outputs as one flat
    list (see the module's docstring). Scriptable: torch.jit.script(Detector(model)) saves a file the PyTorch
    runner's --torchscript source runs where torchvision is installed (torchvision's detectors script; they cannot be
    traced, their box counts depend on the input; the LibTorch runner refuses them, libtorch_runner.py says why)."""

    def __init__(self, model):
        super(Detector, self).__init__()
        self.model = model

    def forward(self, images):
        # type: (torch.Tensor) -> List[torch.Tensor]
        if torch.jit.is_scripting():
            # Scripted, torchvision's detectors return (losses, detections) (GeneralizedRCNN.eager_outputs).
            detections = self.model(images.unbind(0))[1]
        else:
            detections = self.model(list(images.unbind(0)))
        flat = []
        for one in detections:
            for value in one.values():
                flat.append(value)
        return flat


class Built(object):
    """A torchvision model as built: net (returns a flat sequence of tensors, or a classifier's tensor), the
    image shape it takes by default, detector settings (None for a classifier), version, seconds."""

    def __init__(self, net, default_input, detector, version, build_s):
        self.net = net
        self.default_input = default_input
        self.detector = detector
        self.version = version
        self.build_s = build_s


def build(name, seed):
    """torchvision's model `name` with random weights after torch.manual_seed(seed), as a Built."""
    torchvision = import_torchvision()
    models = torchvision.models
    builders = _builders(models)
    if name not in builders:
        raise RunnerError("usage", "--torchvision: torchvision %s has no model %r (it has %s)"
                          % (torchvision.__version__, name, ", ".join(sorted(builders))))
    builder = builders[name]
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = builder(**_random_weights(builder, hasattr(models, "get_weight")))
    if not is_detector(builder):
        return Built(model, CLASSIFIER_INPUT, None, torchvision.__version__, time.perf_counter() - t0)
    holder = _postprocess_settings(model)
    settings = {"score_threshold": SCORE_THRESHOLD, "torchvision_score_threshold": holder.score_thresh,
                "detections_per_image": holder.detections_per_img}
    holder.score_thresh = SCORE_THRESHOLD
    return Built(Detector(model), DETECTOR_INPUT, settings, torchvision.__version__, time.perf_counter() - t0)


def detections(outputs, batch):
    """Boxes per image in a Detector's flat outputs of `batch` images: each image's first output is its boxes."""
    per_image = len(outputs) // batch
    return [int(outputs[i * per_image].shape[0]) for i in range(batch)]


SPAN = ("a torchvision detector's whole forward: its transform (normalize with the model's mean and std, resize, "
        "batch), backbone and heads, and its postprocess (box decoding, score threshold, per-class NMS, top "
        "detections per image, boxes scaled back to the input size)")


def describe(detector, outputs, batch, shape):
    """The result's "detector": what the span holds, the input as the detector takes it, its post-processing
    settings and the boxes per image the first inference found."""
    return dict(detector, span=SPAN, detections=detections(outputs, batch),
                input="a list of %d image(s) of %s" % (batch, "x".join(str(d) for d in shape)))
