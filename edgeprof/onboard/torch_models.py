"""The PyTorch build of a model, as the PyTorch runner measures it and the host exports it to ONNX: the
three sources (a netspec's CaffeNet, torchvision, TorchScript), their inputs, and the conversion to a
precision and memory format. Runs ON the board beside torch_runner.py; the host imports it as
edgeprof.onboard.torch_models (edgeprof.models.onnx_export), so both build the same net with the same
weights. Python 3.6+ and torch.

Sources (exactly one of the runner's --spec, --torchvision, --torchscript)
    --spec FILE: CaffeNet (caffe_layers.py) with --weights, or seeded random weights (--seed) with
        BatchNorm statistics calibrated on a random image from seed + 2; calibration time is reported apart
        from load time.
    --torchvision NAME: torchvision.models' NAME built with random weights after torch.manual_seed(--seed)
        (torchvision_models.py: classifiers, and detectors with their own transform and post-processing), so
        the weights depend on the seed and the torch and torchvision versions. Without torchvision: an error
        of kind "unavailable".
    --torchscript FILE: torch.jit.load(FILE); its weights are the file's.
    Both take one input named "input" of [--batch (default 1)] + --input-shape (default 3,224,224; a
    torchvision detector's 3,480,640); their outputs (a tensor, or tuples, lists and dicts of them) are
    flattened in order and named "output", or "output0", "output1"...
    The input, unless --input FILE, is standard normal from seed + 1.
"""
import json
import os
import time

import torch
import torch.nn as nn

if __package__:
    from . import torchvision_models
    from .caffe_layers import BatchNorm, CaffeNet
    from .harness import RunnerError
    from .tensors import open_tensors, write_tensors
else:
    import torchvision_models
    from caffe_layers import BatchNorm, CaffeNet
    from harness import RunnerError
    from tensors import open_tensors, write_tensors

# --precision -> the torch dtype's name.
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _is_batch_norm(module):
    return isinstance(module, (BatchNorm, nn.modules.batchnorm._BatchNorm))


def convert(net, dtype, channels_last):
    """net (in place) in dtype and memory format, as a careful script converts it: net.half() (or
    .bfloat16()), then the batch norms back to float32, as apex's BN_convert_float does: cuDNN's batch
    norm takes fp16 / bf16 data only with float32 statistics and affine parameters, and a mean stored in
    fp16 keeps 3 digits, which x - mean cancels. A CaffeNet BatchNorm's folded Scale goes with it. In a
    TorchScript module batch norms are not nn.BatchNorm instances any more: they convert with the rest."""
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if dtype != torch.float32:
        net.to(dtype)
        for module in net.modules():
            if _is_batch_norm(module):
                module.float()
                for scale in getattr(module, "folded", []):
                    scale.float()
    return net


def to_net_format(x, dtype, channels_last):
    x = x.to(dtype)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class Model(object):
    """A net to measure. net: an nn.Module whose forward takes the inputs in order and returns a tuple.
    inputs: their declarations {"name", "shape"}, shape with a batch (the default one). returns: the
    outputs' names, None until the first outputs name them. source: netspec, torchvision or torchscript. detector:
    a torchvision detector's settings (torchvision_models.build), else None."""

    def __init__(self, net, inputs, returns, name, weights, source, build_s, calibration_s=None, detector=None):
        self.net = net
        self.inputs = inputs
        self.returns = returns
        self.name = name
        self.weights = weights
        self.source = source
        self.build_s = build_s
        self.calibration_s = calibration_s
        self.detector = detector


def _flatten_outputs(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flatten_outputs(item)]
    return []  # None (an absent auxiliary output) and other non-tensors


class FlatOutputs(nn.Module):
    """A module whose outputs (a tensor, or tuples, lists and dicts of them, as torchvision and TorchScript
    models return) come back as one flat tuple in order, as CaffeNet returns its blobs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return tuple(_flatten_outputs(self.model(*inputs)))


def output_names(outputs):
    return ["output"] if len(outputs) == 1 else ["output%d" % i for i in range(len(outputs))]


def _image_input(shape):
    return [{"name": "input", "shape": [1] + shape}]


def _load_netspec(args):
    with open(args.spec) as f:
        spec = json.load(f)
    t0 = time.perf_counter()
    net = CaffeNet(spec, [n for n in (args.dump_blobs or "").split(",") if n])
    if args.weights is not None:
        net.load_weights(args.weights)
    else:
        net.init_random(args.seed)
    build_s = time.perf_counter() - t0
    calibration_s = None
    if args.weights is None:
        t0 = time.perf_counter()
        if net.calibrate(random_inputs(spec["inputs"], 1, args.seed + 2)):
            calibration_s = time.perf_counter() - t0
    if args.save_weights:
        write_tensors(args.save_weights, [({"name": name, "blob": i}, blob)
                                          for name, blobs in net.named_blobs() for i, blob in enumerate(blobs)])
    weights = args.weights if args.weights is not None else "random (seed %d)" % args.seed
    return Model(net, spec["inputs"], list(net.returns), spec.get("name"), weights, "netspec", build_s,
                 calibration_s)


def _load_torchvision(args):
    built = torchvision_models.build(args.torchvision, args.seed)
    # A detector already returns a flat list of tensors, which TorchScript can script (FlatOutputs cannot be).
    net = built.net if built.detector else FlatOutputs(built.net)
    return Model(net, _image_input(args.input_shape or built.default_input), None, args.torchvision,
                 "random (seed %d, torchvision %s)" % (args.seed, built.version), "torchvision", built.build_s,
                 detector=built.detector)


def _load_torchscript(args):
    # A scripted torchvision detector calls torchvision's C++ operators (torchvision::nms...), which importing
    # torchvision registers; a module without them loads the same without it.
    torchvision_models.register_operators()
    t0 = time.perf_counter()
    try:
        model = torch.jit.load(args.torchscript, map_location="cpu")
    except (RuntimeError, ValueError, OSError) as e:
        raise RunnerError("spec", "--torchscript %s: torch %s cannot load it: %s"
                          % (args.torchscript, torch.__version__, str(e).strip().splitlines()[0]))
    return Model(FlatOutputs(model), _image_input(args.input_shape), None, os.path.basename(args.torchscript),
                 args.torchscript, "torchscript", time.perf_counter() - t0)


def load_model(args):
    """The Model the runner's arguments name (--spec, --torchvision or --torchscript, see parse_args)."""
    if args.torchvision is not None:
        return _load_torchvision(args)
    if args.torchscript is not None:
        return _load_torchscript(args)
    return _load_netspec(args)


def random_inputs(decls, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn([batch] + list(i["shape"][1:]), generator=gen) for i in decls]


def inputs(decls, args, batch):
    """The input tensors (CPU, float32) in declaration order: from --input, or standard normal from seed + 1."""
    if args.input is None:
        return random_inputs(decls, batch, args.seed + 1)
    shapes = [[batch] + list(i["shape"][1:]) for i in decls]
    source = open_tensors(args.input)
    try:
        by_name = {e["name"]: e for e in source.entries}
        tensors = []
        for decl, shape in zip(decls, shapes):
            if decl["name"] not in by_name:
                raise RunnerError("input", "%s has no tensor named %r" % (args.input, decl["name"]))
            tensor = source.read(by_name[decl["name"]])
            if list(tensor.shape) != shape:
                raise RunnerError("input", "%s: %r has shape %s, the net needs %s at batch %d"
                                  % (args.input, decl["name"], list(tensor.shape), shape, batch))
            tensors.append(tensor)
        return tensors
    finally:
        source.close()


def batch_of(decls, args):
    """--batch, else the batch of the --input file's first input, else the declared one."""
    if args.batch is not None:
        return args.batch
    if args.input is not None:
        source = open_tensors(args.input)
        source.close()
        for entry in source.entries:
            if entry["name"] == decls[0]["name"]:
                return int(entry["shape"][0])
    return int(decls[0]["shape"][0])
