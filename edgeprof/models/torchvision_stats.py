"""Parameter and multiply-accumulate counts of a `torchvision:NAME` model, the way edgeprof.models.stats counts a
prototxt's, from the model the PyTorch runner builds (edgeprof/onboard/torchvision_models.py), built here on the
host with its torch and torchvision.

- params: the module's parameters (sum of numel), weights and biases; batch norms' running statistics are buffers,
  not counted (edgeprof.models.stats counts Caffe's, which Caffe stores as blobs).
- macs: for ONE image at the runner's default input (3x224x224; a detector's 3x480x640), counted while the forward
  runs by torch.utils.flop_counter.FlopCounterMode (torch 2.1+), whose FLOPs are 2 x the multiply-accumulates of
  convolutions and matrix products, the operations stats.py counts. A detector's forward is counted whole, so at
  the size its transform resizes to (Faster R-CNN: 800 on the shorter side) and with the RoI heads at the boxes
  its random weights propose; its normalization, RoIAlign, box decoding and NMS are not counted.
- layers: the leaf modules.
"""
from __future__ import annotations

from ..errors import InputError
from .catalog import ModelSource

__all__ = ["describe_torchvision"]

UNCOUNTED = ("everything but convolutions and matrix products: normalization, pooling, activations, resizing, "
             "RoIAlign, box decoding, NMS")


def describe_torchvision(source: ModelSource) -> dict:
    """describe()'s summary of a torchvision model; InputError where this host cannot build it."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError as e:
        raise InputError(f"{source.name}: counting a torchvision model builds it on this host, which needs torch 2.1+ "
                         f"and torchvision ({e}): pip install 'edgeprof[local]'") from None
    from ..onboard import torch_models, torch_runner
    from ..onboard.harness import RunnerError
    try:
        model = torch_models.load_model(torch_runner.parse_args(["--torchvision", source.path.split(":", 1)[1]]))
    except RunnerError as e:
        raise InputError(f"{source.name}: torch {torch.__version__} on this host cannot build it: {e}") from None
    net = model.net.eval()
    shape = model.inputs[0]["shape"]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch_models.random_inputs(model.inputs, 1, 1)[0])
    return {
        "name": source.name,
        "path": source.path,
        "catalog": source.catalog,
        "sha256": source.sha256,
        "input_shape": shape,
        "params": sum(p.numel() for p in net.parameters()),
        "macs": counter.get_total_flops() // 2,
        "layers": sum(1 for m in net.modules() if not list(m.children())),
        "complete": True,
        "unknown_layers": [],
        "uncounted": [],
        "weights": model.weights,
        "detector": model.detector,
        "not_counted": UNCOUNTED,
    }
