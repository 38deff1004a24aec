#!/usr/bin/env python3
"""edgeprof's PyTorch runner: times a net in PyTorch, the Caffe net of an edgeprof netspec (caffe_layers.py),
a torchvision model or a TorchScript module (torch_models.py says how each is built). Runs ON the board,
uploaded with the rest of edgeprof/onboard/ into the work folder, and run as

    python3 torch_runner.py --spec net.json --device cpu|cuda --batch N [--iterations N] --json
        [--precision fp32|fp16|bf16] [--channels-last] [--cuda-graph] [--compile[=MODE]]
        [--mode inference|train-step] [--per-layer]

It needs Python 3.6+, the standard library and torch (1.x on JetPack 4.6 boards, 2.x elsewhere): no numpy,
no edgeprof package. Runs in float32 unless --precision says otherwise, TF32 off unless --tf32.

Variants (the JSON's "variant" labels them: "fp16+channels_last+cuda_graph")
    --precision fp16|bf16: the module and the inputs in that dtype, as a careful script converts them
        (net.half(), input.half()), except that batch norms keep float32 statistics and affine parameters
        (torch_models.convert()). LRN normalizes in float32 (caffe_layers.LRN). No autocast: every other
        layer runs in the dtype. bf16 on CUDA only where torch.cuda.is_bf16_supported() says so. Dumped
        outputs are float32; --save-input writes the float32 input before its conversion. An operation
        torch lacks in that dtype on the device (old torch, CPU kernels) is an error of kind "unsupported".
    --channels-last: the module's 4-D weights and the 4-D inputs in torch.channels_last memory format.
    --cuda-graph (CUDA, torch 1.10+): after the first inference, warm-up calls on a side stream, then one
        iteration captured in a torch.cuda.CUDAGraph over static inputs and outputs; the timed
        iterations are replays. Span compute: CUDA events around the replay. Span host: the host input
        copied into the static input, the replay, the outputs copied back. cuda_graph_capture_s is the
        side-stream warm-up and the capture.
    --compile[=MODE] (torch 2.0+): torch.compile(net, mode=MODE), MODE default, reduce-overhead or
        max-autotune. The first call compiles; its time is compile_s, apart from first_inference_ms (then
        the first call after it) and from the timed iterations. reduce-overhead and max-autotune record
        CUDA graphs themselves on GPUs, so --cuda-graph goes with plain --compile only. A failure to
        compile (no C compiler for Inductor...) is an error of kind "unsupported".
    --mode train-step: each iteration is one training step (TrainStep): forward, loss, backward and an
        SGD step (lr 0.01, momentum 0.9), the work of Caffe's "Average Forward-Backward" plus the update.
        The loss: cross-entropy of the first output against random labels (seed N + 3) when it is
        [N, C], else the mean of its squares. The module is in training mode: Dropout drops (Caffe's
        TRAIN phase). BatchNorm keeps to what the prototxt says: batch statistics only where it sets
        use_global_stats false, the stored ones otherwise, since netspec resolves an absent
        use_global_stats as the TEST phase does (caffe time -phase TRAIN would use batch statistics
        there); torchvision's and TorchScript's batch norms follow torch's training mode (batch
        statistics). The JSON's "loss" gives the loss of the first and the last step. fp16 trains
        without loss scaling: its figures are timings, not a recipe.

Timing (the loop and the statistics are timing.py's)
    first inference: the first forward after load (after the compiling call with --compile), host clock
        + synchronize, reported on its own.
    span "compute" (default): input already on the device; CUDA events around the forward on CUDA.
    span "host": host-to-device copy of the input (from pinned memory), forward and device-to-host copy
        of the outputs, host monotonic clock + synchronize. On the CPU both spans are the forward alone.
    CPU: time.perf_counter around the forward. Iterations synchronize one by one on CUDA.

End to end (--span end-to-end --images-from PATH, eager inference only): image_inputs.py's stages over real
    images, this runner giving normalize (the pixels as a uint8 tensor, to float, channel order, (x - mean) * scale,
    the net's dtype), copy (torch.stack into the input, channels_last if asked, .to(device) and synchronize), forward
    (the net, synchronize on CUDA) and post (POSTPROCESSING[--post]: softmax and top-5 for a classifier, .tolist()
    bringing it to the host; for a torchvision detector, whose forward holds its own resize, normalization, box
    decoding and NMS, the detections copied to the host); the JSON's "end_to_end". The latency is then the
    iteration's total (timer perf_counter), the throughput images per second.

Per layer (--per-layer, a netspec's eager inference only): layer_timing.py's separate pass after the timed loop,
    each Caffe layer's module between hooks (CUDA events on CUDA, perf_counter on the CPU); the JSON's
    "per_layer". The hooks add host work to every layer (on CUDA two event records, no synchronize per layer): the
    pass's total can exceed the latency.

Memory: the allocator's peak and reserved bytes (CUDA) and the process's peak RSS; on CUDA also
    nvidia-smi's view at the end of the run: nvml_process_bytes (this process on the device, CUDA
    context and library workspaces included) and nvml_device_used_bytes (the whole device), null where
    nvidia-smi is missing (Jetsons before JetPack 6), answers N/A or does not know this PID.

Output and errors: harness.py's (one JSON object, or {"error", "kind"} and a non-zero exit status).
"""
import argparse
import sys
import time
import traceback

import torch
import torch.nn.functional as F

if __package__:
    from . import harness, image_inputs, layer_timing, timing, torch_models, torchvision_models
    from .harness import RunnerError
    from .tensors import write_tensors
else:
    import harness
    import image_inputs
    import layer_timing
    import timing
    import torch_models
    import torchvision_models
    from harness import RunnerError
    from tensors import write_tensors

# --- variants ------------------------------------------------------------------------------------------

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# torch.compile modes that record CUDA graphs themselves (CUDA graph trees) on GPUs.
GRAPHING_COMPILE_MODES = ("reduce-overhead", "max-autotune")


def variant(args):
    """A short label of what runs: "fp32", "fp16+channels_last+cuda_graph", "bf16+compile_max_autotune+train_step"."""
    parts = [args.precision]
    if args.channels_last:
        parts.append("channels_last")
    if args.cuda_graph:
        parts.append("cuda_graph")
    if args.compile is not None:
        parts.append("compile" if args.compile == "default" else "compile_" + args.compile.replace("-", "_"))
    if args.mode == "train-step":
        parts.append("train_step")
    return "+".join(parts)


def check_variant(args, device):
    """The dtype of --precision; refuses (kind unsupported) before any work what this torch or device lacks."""
    if args.cuda_graph:
        if device.type != "cuda":
            raise RunnerError("unsupported", "--cuda-graph: CUDA graphs need a CUDA device, not --device %s"
                              % args.device)
        if not (hasattr(torch.cuda, "CUDAGraph") and hasattr(torch.cuda, "graph")):
            raise RunnerError("unsupported", "--cuda-graph: torch %s has no CUDA graphs (torch.cuda.CUDAGraph and "
                              "torch.cuda.graph came with torch 1.10)" % torch.__version__)
    if args.compile is not None and not hasattr(torch, "compile"):
        raise RunnerError("unsupported", "--compile: torch.compile came with torch 2.0; this is torch %s"
                          % torch.__version__)
    dtype = getattr(torch, torch_models.PRECISIONS[args.precision], None)
    if dtype is None:
        raise RunnerError("unsupported", "--precision %s: torch %s has no %s"
                          % (args.precision, torch.__version__, torch_models.PRECISIONS[args.precision]))
    if args.precision == "bf16" and device.type == "cuda":
        if hasattr(torch.cuda, "is_bf16_supported"):
            supported = torch.cuda.is_bf16_supported()
        else:
            # torch before 1.10 cannot tell; its bf16 CUDA kernels need Ampere (compute capability 8.0).
            supported = torch.cuda.get_device_capability(device)[0] >= 8
        if not supported:
            raise RunnerError("unsupported", "--precision bf16: torch %s does not support bfloat16 on %s "
                              "(compute capability %d.%d)" % ((torch.__version__, torch.cuda.get_device_name(device))
                                                             + tuple(torch.cuda.get_device_capability(device))))
    return dtype


class TrainStep(object):
    """One training iteration, as a Caffe solver's: forward, loss, backward, SGD step (lr 0.01, momentum
    0.9). The loss, in float32, is the cross-entropy of the net's first output against random labels
    (seeded, fixed for the run) when that output is [N, C], else the mean of its squares. A call returns
    the forward's outputs, detached; `loss` is the last loss, a device tensor (read once, at the end, so
    that no step waits for the device). Gradients are set to None rather than zeroed before each step
    (backward then writes them instead of adding), which also lets a CUDA graph capture the step."""

    def __init__(self, net, seed):
        params = [p for p in net.parameters() if p.requires_grad]
        if not params:
            raise RunnerError("usage", "--mode train-step: the net has no learned parameters to train")
        self.net = net
        self.optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        self.seed = seed
        # Dropout draws its masks from torch's global generator: seeded, a run's training steps repeat
        # exactly (unseeded, the loss of a short run could rise in one run out of three).
        torch.manual_seed(seed)
        self.labels = None
        self.loss = None

    def __call__(self, *inputs):
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.net(*inputs)
        first = outputs[0].float()
        if first.dim() == 2:
            if self.labels is None:
                gen = torch.Generator().manual_seed(self.seed)
                self.labels = torch.randint(first.shape[1], (first.shape[0],), generator=gen).to(first.device)
            loss = F.cross_entropy(first, self.labels)
        else:
            loss = (first * first).mean()
        loss.backward()
        self.optimizer.step()
        self.loss = loss.detach()
        return tuple(o.detach() for o in outputs)


class CudaGraph(object):
    """`forward` (an inference or a TrainStep) captured once in a CUDA graph over static inputs, after
    warm-up calls on a side stream (as torch's CUDA graph notes prescribe: lazy initialization, cuDNN
    autotuning and the optimizer's momentum buffers happen outside the capture). A call copies the inputs
    that are not the static ones into them (host span: straight from pinned host memory), replays the graph
    and returns the static outputs, which the next replay overwrites."""

    copies_inputs = True
    WARMUP_CALLS = 3

    def __init__(self, forward, static_inputs):
        self.inputs = static_inputs
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self.WARMUP_CALLS):
                forward(*static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = forward(*static_inputs)

    def __call__(self, *inputs):
        for static, x in zip(self.inputs, inputs):
            if x is not static:
                static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.outputs


# --- end to end ----------------------------------------------------------------------------------------

def softmax_top5(outputs):
    """A classifier's answer: per image, the five most probable classes as [index, probability] pairs."""
    scores = outputs[0].float().flatten(1)
    top = torch.softmax(scores, 1).topk(min(5, scores.shape[1]), 1)
    return [[list(pair) for pair in zip(i, p)] for i, p in zip(top.indices.tolist(), top.values.tolist())]


def detections_to_host(outputs):
    """A torchvision detector's answer: its forward has already decoded the boxes and run NMS (torchvision_models.py),
    so this step copies its outputs (boxes, labels, scores, masks...) to the host; the answer kept is their shapes."""
    return [list(output.cpu().shape) for output in outputs]


# --post KIND: the post-processing step of a model's kind (the host picks the kind: edgeprof.image_inputs).
POSTPROCESSING = {"classifier": softmax_top5, "detector": detections_to_host}


def _uint8(pixels):
    """Pillow's bytes or OpenCV's array as a uint8 tensor without a copy where torch can (frombuffer: torch 1.10+)."""
    if not isinstance(pixels, (bytes, bytearray)):
        return torch.from_numpy(pixels)
    if hasattr(torch, "frombuffer"):
        return torch.frombuffer(bytearray(pixels), dtype=torch.uint8)
    return torch.ByteTensor(torch.ByteStorage.from_buffer(pixels))


def end_to_end(args, model, net, device, dtype, batch):
    """image_inputs.EndToEnd over --images-from with this runner's stages."""
    shape = model.inputs[0]["shape"]
    if len(model.inputs) != 1 or len(shape) != 4 or shape[1] != 3:
        raise RunnerError("input", "--span end-to-end feeds one RGB image input; %s takes %s"
                          % (model.name, ", ".join(str(d["shape"]) for d in model.inputs)))
    height, width = shape[2], shape[3]
    norm = args.normalize
    mean = torch.tensor(norm["mean"], dtype=torch.float32).view(3, 1, 1)
    scale = torch.tensor(norm["scale"], dtype=torch.float32).view(3, 1, 1)
    bgr = torch.tensor([2, 1, 0]) if norm["order"] == "BGR" else None

    def normalize(pixels):
        x = _uint8(pixels).view(height, width, 3).permute(2, 0, 1)
        x = x.index_select(0, bgr) if bgr is not None else x
        return ((x.float() - mean) * scale).to(dtype)

    def copy(images):
        x = torch.stack(images)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = x.to(device)
        _synchronize(device)
        return x

    def forward(x):
        outputs = net(x)
        _synchronize(device)
        return outputs

    return image_inputs.open_pipeline(args, width, height, batch, normalize, copy, forward,
                                      POSTPROCESSING[args.post])


# --- measurement ---------------------------------------------------------------------------------------

def _grad_off():
    # inference_mode (torch 1.9+) skips autograd's bookkeeping that no_grad still does.
    return torch.inference_mode() if hasattr(torch, "inference_mode") else torch.no_grad()


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(forward, device, span, device_inputs, host_inputs):
    """A function running one iteration of `forward` (an inference, a TrainStep, a CudaGraph replay) and
    returning (its time in ms, the outputs)."""
    if device.type == "cuda" and span == "compute":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def step():
            start.record()
            outputs = forward(*device_inputs)
            end.record()
            end.synchronize()
            return start.elapsed_time(end), outputs
        return step
    if device.type == "cuda":
        copies = getattr(forward, "copies_inputs", False)

        def step():
            t0 = time.perf_counter()
            inputs = host_inputs if copies else [x.to(device, non_blocking=True) for x in host_inputs]
            outputs = tuple(o.to("cpu") for o in forward(*inputs))
            torch.cuda.synchronize(device)
            return (time.perf_counter() - t0) * 1e3, outputs
        return step

    def step():
        t0 = time.perf_counter()
        outputs = forward(*device_inputs)
        return (time.perf_counter() - t0) * 1e3, outputs
    return step


def compile_call(forward, inputs, device):
    """The first call of a torch.compile'd forward, which compiles it; returns its seconds. A failure there
    is the board's (no C compiler for Inductor, a Python that dynamo does not support...): kind unsupported."""
    t0 = time.perf_counter()
    try:
        forward(*inputs)
        _synchronize(device)
    except Exception as e:
        if harness.is_oom(e):
            raise
        traceback.print_exc()
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise RunnerError("unsupported", "--compile: torch.compile failed with torch %s: %s: %s"
                          % (torch.__version__, type(e).__name__, first_line[:500]))
    return time.perf_counter() - t0


def _device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return timing.cpu_name()


def nvml_memory(device):
    """nvidia-smi's view of `device` (timing.nvml_memory), matched by the UUID torch 2.x gives."""
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    return timing.nvml_memory(None if uuid is None else str(uuid))


def _memory_report(device):
    if device.type != "cuda":
        return harness.memory_report()
    # Peaks over the whole run (load included); reserved is what the caching allocator held. nvidia-smi's
    # view at the end of the run, with everything still held: the caching allocator's pool, the CUDA context
    # and the libraries' workspaces, which the allocator figures leave out.
    return harness.memory_report(torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device),
                                 nvml_memory(device))


def _stage_memory(device):
    if device.type != "cuda":
        return harness.stage_memory()
    return harness.stage_memory(torch.cuda.memory_allocated(device), torch.cuda.max_memory_allocated(device))


def _pinned(x):
    # A pinned copy with x's strides (channels_last stays channels_last): the host-to-device copy keeps them.
    return torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, pin_memory=True).copy_(x)


def _setup_device(args):
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RunnerError("usage", "--device %s: torch sees no CUDA device" % args.device)
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
        # TF32 (Ampere and later) rounds fp32 convolutions and matmuls to 10-bit mantissas: off unless asked.
        if hasattr(torch.backends.cudnn, "allow_tf32"):
            torch.backends.cudnn.allow_tf32 = args.tf32
            torch.backends.cuda.matmul.allow_tf32 = args.tf32
    return device


def run(args):
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = _setup_device(args)
    dtype = check_variant(args, device)
    train = args.mode == "train-step"
    model = torch_models.load_model(args)
    batch = torch_models.batch_of(model.inputs, args)
    inputs = torch_models.inputs(model.inputs, args, batch)
    if args.save_input:
        write_tensors(args.save_input, [({"name": d["name"]}, x) for d, x in zip(model.inputs, inputs)])

    t0 = time.perf_counter()
    net = torch_models.convert(model.net.to(device), dtype, args.channels_last)
    net.train(train)
    _synchronize(device)
    load_s = model.build_s + time.perf_counter() - t0
    stages = {"loaded": _stage_memory(device)}

    inputs = [torch_models.to_net_format(x, dtype, args.channels_last) for x in inputs]
    host_inputs = inputs
    if device.type == "cuda" and args.span == "host":
        host_inputs = [_pinned(x) for x in inputs]
    device_inputs = [x.to(device) for x in inputs]
    _synchronize(device)

    forward = net
    if args.compile is not None:
        forward = torch.compile(net, mode=None if args.compile == "default" else args.compile)
    trainer = None
    if train:
        forward = trainer = TrainStep(forward, args.seed + 3)
    compile_s = capture_s = loss = None
    with (torch.enable_grad() if train else _grad_off()):
        if args.compile is not None:
            compile_s = compile_call(forward, device_inputs, device)
        pipeline = None
        if args.span == "end-to-end":
            pipeline = end_to_end(args, model, forward, device, dtype, batch)
            image_inputs.apply_images(args, batch)
            step = pipeline.step
        else:
            step = make_step(forward, device, args.span, device_inputs, host_inputs)
        t0 = time.perf_counter()
        first_outputs = step()[1]
        _synchronize(device)
        first_ms = (time.perf_counter() - t0) * 1e3
        stages["first_inference"] = _stage_memory(device)
        returns = model.returns or torch_models.output_names(first_outputs)
        detector = None
        if model.detector is not None:
            detector = torchvision_models.describe(model.detector, first_outputs, batch, model.inputs[0]["shape"][1:])
        if args.dump_output:
            # Now: the outputs of a compiled forward that records CUDA graphs are overwritten by its next call.
            write_tensors(args.dump_output, [({"name": name}, out) for name, out in zip(returns, first_outputs)])
        del first_outputs
        if trainer is not None:
            loss = {"first": trainer.loss.item(), "last": None}
        if args.cuda_graph:
            t0 = time.perf_counter()
            forward = CudaGraph(forward, device_inputs)
            _synchronize(device)
            capture_s = time.perf_counter() - t0
            step = make_step(forward, device, args.span, device_inputs, host_inputs)
        timed = timing.measure(step, args)
        e2e = pipeline.finish(1 + timed[3], args) if pipeline is not None else None
        if trainer is not None and timed[0]:
            loss["last"] = trainer.loss.item()
        per_layer = layer_timing.time_layers(net, device_inputs, device) if args.per_layer else None

    on_cuda = device.type == "cuda"
    return harness.report(
        args, timed, batch, (first_ms, "perf_counter"), _memory_report(device),
        dict(threads=args.threads, precision=args.precision, channels_last=args.channels_last,
             cuda_graph=args.cuda_graph, compile=args.compile, mode=args.mode, source=model.source,
             input_shape=None if args.spec else model.inputs[0]["shape"][1:],
             cudnn_benchmark=args.cudnn_benchmark if on_cuda else None,
             tf32=args.tf32 if on_cuda else None,
             grad_mode="enabled" if train else "inference_mode" if hasattr(torch, "inference_mode") else "no_grad",
             images=args.images, prefetch=args.prefetch if pipeline else None),
        load_s=load_s, memory_stages=stages, calibration_s=model.calibration_s, compile_s=compile_s,
        cuda_graph_capture_s=capture_s,
        torch_version=torch.__version__, cuda_version=torch.version.cuda,
        cudnn_version=torch.backends.cudnn.version() if on_cuda else None, device=str(device),
        device_name=_device_name(device), threads=torch.get_num_threads(),
        timer="cuda_event" if on_cuda and args.span == "compute" else "perf_counter", net=model.name,
        outputs=returns, weights=model.weights, variant=variant(args), loss=loss, per_layer=per_layer,
        end_to_end=e2e, detector=detector)


def _shape(text):
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        dims = []
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError("%r is not a shape like 3,224,224" % text)
    return dims


def parse_args(argv):
    p = harness.JsonUsageParser(description="Time a net in PyTorch: a Caffe net from an edgeprof netspec, "
                                            "a torchvision model or a TorchScript module.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="netspec JSON written by edgeprof")
    source.add_argument("--torchvision", metavar="NAME", help="torchvision.models.NAME with seeded random weights")
    source.add_argument("--torchscript", metavar="FILE", help="a TorchScript module saved by torch.jit.save")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                   help="input shape without the batch for --torchvision and --torchscript (default 3,224,224; "
                        "torchvision detectors 3,480,640)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, help="batch size (default: the input file's, else the spec's, else 1)")
    p.add_argument("--precision", choices=sorted(torch_models.PRECISIONS), default="fp32",
                   help="the module and inputs in this dtype (batch norms keep float32 parameters)")
    p.add_argument("--channels-last", action="store_true", help="module and 4-D inputs in channels_last memory format")
    p.add_argument("--cuda-graph", action="store_true", help="capture one iteration in a CUDA graph and time replays")
    p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the module (--compile=MODE: %s)" % ", ".join(COMPILE_MODES))
    p.add_argument("--mode", choices=("inference", "train-step"), default="inference",
                   help="time inferences, or training steps (forward, loss, backward, SGD step)")
    harness.add_common_arguments(p, "random weights (without --weights) and input",
                                 spans=("compute", "host", "end-to-end"))
    image_inputs.add_input_arguments(p, POSTPROCESSING)
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--weights", help="edgeprof tensor file or .npz of Caffe blobs")
    p.add_argument("--input", help="edgeprof tensor file holding the inputs by name")
    p.add_argument("--dump-output", help="write the first inference's outputs to this tensor file")
    p.add_argument("--dump-blobs", help="comma-separated blobs to dump with the outputs")
    p.add_argument("--save-weights", help="write the net's weights (Caffe blob order) to this tensor file")
    p.add_argument("--save-input", help="write the input to this tensor file")
    p.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                   help="do not let cuDNN autotune convolutions on the first inference")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for fp32 convolutions and matmuls")
    p.add_argument("--per-layer", action="store_true",
                   help="after the timed loop, time each Caffe layer's module in a pass of its own (layer_timing.py)")
    args = harness.check_arguments(p, p.parse_args(argv), positive=("batch", "threads"))
    if args.spec is not None:
        if args.input_shape is not None:
            p.error("--input-shape is for --torchvision and --torchscript: a netspec declares its inputs")
    else:
        for name in ("weights", "dump_blobs", "save_weights"):
            if getattr(args, name) is not None:
                p.error("--%s is about Caffe blobs: it needs --spec" % name.replace("_", "-"))
        if args.input_shape is None and args.torchscript is not None:
            args.input_shape = [3, 224, 224]  # a torchvision model's default is its kind's (torchvision_models)
    if args.per_layer and (args.spec is None or args.cuda_graph or args.compile is not None
                           or args.mode != "inference"):
        p.error("--per-layer times the modules of a Caffe net (--spec) in eager inference: not with --torchvision, "
                "--torchscript, --cuda-graph, --compile or --mode train-step")
    image_inputs.check_input_arguments(p, args)
    if args.span == "end-to-end" and (args.cuda_graph or args.mode != "inference" or args.per_layer):
        p.error("--span end-to-end runs the net eagerly on real images: not with --cuda-graph, --mode train-step "
                "or --per-layer")
    if args.cuda_graph and args.compile in GRAPHING_COMPILE_MODES:
        p.error("--compile=%s records CUDA graphs itself: drop --cuda-graph, or use plain --compile with it"
                % args.compile)
    return args


def _summary_lines(obj):
    return ["%s batch %d on %s (%s), %s, %s, span %s, timer %s"
            % (obj["net"], obj["batch"], obj["device_name"], obj["device"], obj["variant"],
               obj["settings"]["mode"], obj["span"], obj["timer"]),
            "load %.3f s, %sfirst inference %.3f ms"
            % (obj["load_s"], "" if obj["compile_s"] is None else "compile %.3f s, " % obj["compile_s"],
               obj["first_inference_ms"])]


def _kind_of(error, args):
    # Old torch, and torch's CPU kernels still, lack fp16 / bf16 versions of some operations:
    # '"slow_conv2d_cpu" not implemented for 'Half''.
    text = str(error)
    lacks_kernel = "not implemented for 'Half'" in text or "not implemented for 'BFloat16'" in text
    if args.precision != "fp32" and lacks_kernel:
        return "unsupported", ("--precision %s on %s: torch %s lacks an operation in that dtype: %s"
                               % (args.precision, args.device, torch.__version__, error))
    return None, None


def main(argv=None):
    return harness.main(parse_args, run, _summary_lines, {"torch_version": torch.__version__}, _kind_of, argv)


if __name__ == "__main__":
    sys.exit(main())
