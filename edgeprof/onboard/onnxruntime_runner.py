#!/usr/bin/env python3
"""edgeprof's ONNX Runtime runner: times an ONNX model (edgeprof.models.onnx_exports it) in ONNX Runtime.
Runs ON the board.

Uploaded with the rest of edgeprof/onboard/ into the work folder, and run as

    python3 onnxruntime_runner.py --model net.onnx [--providers CUDAExecutionProvider,CPUExecutionProvider]
        [--span compute|host] [--threads N] [--iterations N] [--input FILE] [--dump-output FILE] [--per-layer] --json

It needs Python 3.6+, the standard library, numpy and onnxruntime (the Jetson Zoo's wheels on JetPack 4.6,
PyPI's elsewhere): no torch, no edgeprof package.

The session
    onnxruntime.InferenceSession(--model, providers=--providers, in order of preference), ORT's default
    graph optimizations (all), --threads intra-op threads (unset: ORT's default, one per physical core).
    ONNX Runtime goes on without a requested provider it cannot use (not in this build, or a CUDA provider
    whose CUDA or cuDNN libraries do not load) with no more than a warning: the JSON gives the providers
    requested and those the session uses (session.get_providers()), provider_fallback (the first requested
    one is not among them) and the warnings ORT gave while the session was created.

Inputs: the model's shapes (edgeprof exports at a fixed batch) and element types (float32 or float16).
    From --input FILE (tensors by input name, converted to the input's type), else standard normal from
    numpy's RandomState(--seed + 1), which is not the PyTorch runner's torch generator: to compare outputs
    with the PyTorch build, give both runners the same --input.

Timing (the loop and the statistics are timing.py's)
    first inference: the first run after the session is created, reported on its own.
    warm-up, timed iterations, adaptive stopping, throughput: as timing.py says.
    span "compute" (default): the inputs already where the first provider used computes (OrtValues on CUDA
        device 0 for the CUDA and TensorRT providers, in host memory otherwise) and bound once with
        io_binding, the outputs bound to the same device and left there; an iteration is
        run_with_iobinding, which returns once the providers synchronized (ORT's default).
    span "host": session.run with numpy inputs and outputs; with a GPU provider that includes the copies
        in and out, on the CPU only the wrapping of numpy arrays.
    The timer is the host's time.perf_counter for both spans: ORT's Python API has no device events.

Per node (--per-layer): after the timed loop, a second session of the same model and options with ORT's profiler
    on (SessionOptions.enable_profiling), one warm-up run and PROFILE_ITERATIONS runs of the same span; from its
    trace (Chrome trace JSON) each node's "<node>_kernel_time" event, the median of its durations per node and of
    the "model_run" events, the warm-up's left out; the trace file is deleted. ORT times a node on the host around
    its kernel's Compute(): on the CPU provider the node's work; on the CUDA provider the time to launch its
    kernels, not their time on the GPU (github.com/microsoft/onnxruntime/issues/7390 and /20398; GPU kernel events,
    "cat": "Kernel", come from builds with CUPTI profiling only, /pull/8406). Nodes are those of ORT's optimized
    graph: a fused kernel (a Conv with the ReLU after it) is one node, named by ORT.

End to end (--span end-to-end --images-from PATH): image_inputs.py's stages over real images, this runner giving
    normalize (numpy: the pixels to the input's element type, channel order, (x - mean) * scale), copy (np.stack
    into the input, then an OrtValue on the first provider's device: the host-to-device copy on CUDA), forward
    (run_with_iobinding, the outputs left on that device) and post (POSTPROCESSING[--post]: the outputs copied to
    the host, softmax and top-5 for a classifier); the JSON's "end_to_end".

Memory: the process's peak RSS; with a GPU provider also nvidia-smi's view (timing.nvml_memory, a lone
    GPU only, since ORT does not give the device's UUID). The allocator figures of the PyTorch runner are
    null here: ORT's arena does not report its peak.

Tensor files (--input, --dump-output): tensors.py's format; outputs are dumped as float32, from the first
    inference.

Output and errors: harness.py's; kind "unsupported" where the providers lack a kernel for an operator in
that type.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import onnxruntime as ort

if __package__:
    from . import harness, image_inputs, timing
    from .harness import RunnerError
    from .tensors import read_arrays, write_arrays
else:
    import harness
    import image_inputs
    import timing
    from harness import RunnerError
    from tensors import read_arrays, write_arrays

# Providers that compute on the CUDA device: inputs and outputs are bound there for span compute.
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
ELEMENT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
PROFILE_ITERATIONS = 20
_KERNEL_TIME = "_kernel_time"


# --- session and inputs --------------------------------------------------------------------------------

def open_session(args, profile_prefix=None):
    """(session, seconds to create it, ORT's warnings meanwhile); with `profile_prefix`, ORT's profiler on,
    writing its trace to a file whose name starts with it."""
    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if args.threads is not None:
        options.intra_op_num_threads = args.threads
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = ort.InferenceSession(args.model, options, providers=args.providers)
    return session, time.perf_counter() - t0, [str(w.message) for w in caught]


def make_inputs(session, args):
    """[(name, array)] in the session's input order, in each input's element type."""
    given = {e["name"]: a for e, a in read_arrays(args.input)} if args.input is not None else None
    random = np.random.RandomState(args.seed + 1)
    feeds = []
    for decl in session.get_inputs():
        dtype = ELEMENT_TYPES.get(decl.type)
        if dtype is None:
            raise RunnerError("unsupported", "input %r is a %s; this runner feeds %s"
                              % (decl.name, decl.type, " or ".join(sorted(ELEMENT_TYPES))))
        shape = list(decl.shape)
        if not all(isinstance(d, int) for d in shape):
            raise RunnerError("usage", "input %r has the shape %s: this runner needs fixed shapes (edgeprof "
                              "exports at a fixed batch)" % (decl.name, shape))
        if given is None:
            x = random.standard_normal(shape)
        elif decl.name not in given:
            raise RunnerError("input", "%s has no tensor named %r" % (args.input, decl.name))
        else:
            x = given[decl.name]
            if list(x.shape) != shape:
                raise RunnerError("input", "%s: %r has shape %s, the model needs %s"
                                  % (args.input, decl.name, list(x.shape), shape))
        feeds.append((decl.name, np.ascontiguousarray(x, dtype=dtype)))
    return feeds


class HostStep(object):
    """Span host: session.run with numpy inputs; returns (ms, the outputs as numpy arrays)."""

    def __init__(self, session, feeds):
        self.session = session
        self.feeds = dict(feeds)
        self.last = None

    def __call__(self):
        t0 = time.perf_counter()
        self.last = self.session.run(None, self.feeds)
        return (time.perf_counter() - t0) * 1e3, self.last

    def outputs(self):
        return self.last


class BoundStep(object):
    """Span compute: inputs bound once on `device`, outputs bound there and left there; returns (ms, None).
    outputs() copies the last outputs to host memory."""

    def __init__(self, session, feeds, device):
        self.session = session
        self.binding = session.io_binding()
        # Kept here: the binding points at these values' memory without holding them.
        self.values = [ort.OrtValue.ortvalue_from_numpy(x, device, 0) for _, x in feeds]
        for (name, _), value in zip(feeds, self.values):
            self.binding.bind_ortvalue_input(name, value)
        for output in session.get_outputs():
            self.binding.bind_output(output.name, device)

    def __call__(self):
        t0 = time.perf_counter()
        self.session.run_with_iobinding(self.binding)
        return (time.perf_counter() - t0) * 1e3, None

    def outputs(self):
        return self.binding.copy_outputs_to_cpu()


def make_step(session, feeds, span, device):
    return HostStep(session, feeds) if span == "host" else BoundStep(session, feeds, device)


def profile_nodes(args, feeds, device, iterations=PROFILE_ITERATIONS):
    """{"timer", "iterations", "statistic", "forward_ms", "nodes": [{"node", "op", "provider", "ms"}]}: the
    median time of each node of ORT's optimized graph, in the order they first ran (see the module docstring)."""
    folder = tempfile.mkdtemp(prefix="edgeprof-ort-profile-")
    try:
        session = open_session(args, os.path.join(folder, "profile"))[0]
        step = make_step(session, feeds, args.span, device)
        for _ in range(iterations + 1):
            step()
        with open(session.end_profiling()) as f:
            events = json.load(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    runs, nodes = [], {}
    for event in events:
        if event.get("name") == "model_run":
            runs.append(event["dur"] / 1e3)
        elif event.get("cat") == "Node" and event.get("name", "").endswith(_KERNEL_TIME):
            name = event["name"][:-len(_KERNEL_TIME)]
            found = nodes.setdefault(name, {"node": name, "op": event["args"].get("op_name"),
                                            "provider": event["args"].get("provider"), "times": []})
            found["times"].append(event["dur"] / 1e3)
    for found in nodes.values():
        times = sorted(found.pop("times")[1:])  # the first is the warm-up run's
        found["ms"] = timing.percentile(times, 50) if times else None
    return {"timer": "onnxruntime profiler (host clock around each node's Compute)", "iterations": iterations,
            "statistic": "median over the runs of a separate profiling session after the timed loop",
            "forward_ms": timing.percentile(sorted(runs[1:]), 50) if len(runs) > 1 else None,
            "nodes": list(nodes.values())}


# --- end to end ----------------------------------------------------------------------------------------

def softmax_top5(binding):
    """A classifier's answer: per image, the five most probable classes as [index, probability] pairs."""
    scores = binding.copy_outputs_to_cpu()[0]
    scores = scores.astype(np.float32).reshape(scores.shape[0], -1)
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    top = np.argsort(-probabilities, axis=1)[:, :5]
    return [[[int(i), float(row[i])] for i in indices] for indices, row in zip(top, probabilities)]


# --post KIND: the post-processing step of a model's kind (the host picks the kind: edgeprof.image_inputs).
POSTPROCESSING = {"classifier": softmax_top5}


def end_to_end(args, session, device):
    """image_inputs.EndToEnd over --images-from with this runner's stages."""
    decls = session.get_inputs()
    shape = list(decls[0].shape)
    if len(decls) != 1 or len(shape) != 4 or shape[1] != 3:
        raise RunnerError("input", "--span end-to-end feeds one RGB image input; the model takes %s"
                          % ", ".join(str(d.shape) for d in decls))
    height, width = shape[2], shape[3]
    dtype = ELEMENT_TYPES.get(decls[0].type, np.float32)
    norm = args.normalize
    mean = np.array(norm["mean"], dtype=np.float32).reshape(3, 1, 1)
    scale = np.array(norm["scale"], dtype=np.float32).reshape(3, 1, 1)
    outputs = [o.name for o in session.get_outputs()]

    def normalize(pixels):
        x = (np.frombuffer(pixels, dtype=np.uint8) if isinstance(pixels, (bytes, bytearray)) else pixels)
        x = x.reshape(height, width, 3).transpose(2, 0, 1)
        x = x[::-1] if norm["order"] == "BGR" else x
        return ((x.astype(np.float32) - mean) * scale).astype(dtype)

    def copy(images):
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(np.stack(images)), device, 0)

    def forward(value):
        binding = session.io_binding()
        binding.bind_ortvalue_input(decls[0].name, value)
        for name in outputs:
            binding.bind_output(name, device)
        session.run_with_iobinding(binding)
        return binding

    return image_inputs.open_pipeline(args, width, height, shape[0], normalize, copy, forward,
                                      POSTPROCESSING[args.post])


def _device_name(device):
    if device == "cpu":
        return timing.cpu_name()
    gpus = timing.nvidia_smi("--query-gpu=name") or []
    return gpus[0][0] if len(gpus) == 1 else None  # several GPUs: ORT does not say which one is device 0


def run(args):
    session, load_s, session_warnings = open_session(args)
    # ORT's arena reports no figures: the process's resident set only.
    stages = {"loaded": harness.stage_memory()}
    used = session.get_providers()
    device = "cuda" if used[0] in GPU_PROVIDERS else "cpu"
    feeds = make_inputs(session, args)
    batch = int(feeds[0][1].shape[0])
    pipeline = None
    if args.span == "end-to-end":
        pipeline = end_to_end(args, session, device)
        image_inputs.apply_images(args, batch)
        step = pipeline.step
    else:
        step = make_step(session, feeds, args.span, device)
    first_ms = step()[0]
    stages["first_inference"] = harness.stage_memory()
    names = [o.name for o in session.get_outputs()]
    if args.dump_output:
        write_arrays(args.dump_output, [({"name": name}, x) for name, x in zip(names, step.outputs())])
    timed = timing.measure(step, args)
    e2e = pipeline.finish(1 + timed[3], args) if pipeline is not None else None
    per_layer = profile_nodes(args, feeds, device) if args.per_layer else None
    # ORT's arena does not report its peak; nvidia-smi cannot tell which GPU is ORT's device 0 but a lone one.
    memory = harness.memory_report(nvml=timing.nvml_memory(None) if device == "cuda" else (None, None))
    return harness.report(
        args, timed, batch, (first_ms, "perf_counter"), memory, {"threads": args.threads, "providers": args.providers},
        load_s=load_s, memory_stages=stages, onnxruntime_version=ort.__version__, numpy_version=np.__version__,
        device=device,
        device_name=_device_name(device), threads=args.threads, timer="perf_counter",
        net=os.path.basename(args.model), inputs=[[name, str(x.dtype)] for name, x in feeds], outputs=names,
        providers_requested=args.providers, providers_used=used, provider_fallback=args.providers[0] not in used,
        session_warnings=session_warnings, per_layer=per_layer, end_to_end=e2e)


def parse_args(argv):
    p = harness.JsonUsageParser(description="Time an ONNX model in ONNX Runtime.")
    p.add_argument("--model", required=True, help="the .onnx file")
    p.add_argument("--providers", type=lambda text: [n for n in text.split(",") if n],
                   default=["CPUExecutionProvider"],
                   help="comma-separated execution providers, most preferred first (default: CPU)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: ORT's)")
    harness.add_common_arguments(p, "random input (without --input): seed + 1",
                                 spans=("compute", "host", "end-to-end"))
    image_inputs.add_input_arguments(p, POSTPROCESSING)
    p.add_argument("--input", help="edgeprof tensor file holding the inputs by name")
    p.add_argument("--dump-output", help="write the first inference's outputs to this tensor file")
    p.add_argument("--per-layer", action="store_true",
                   help="after the timed loop, each node's time from ORT's profiler, in a session of its own")
    args = p.parse_args(argv)
    if not args.providers:
        p.error("--providers needs at least one execution provider")
    image_inputs.check_input_arguments(p, args)
    if args.span == "end-to-end" and (args.per_layer or args.dump_output):
        p.error("--span end-to-end runs real images: not with --per-layer or --dump-output")
    return harness.check_arguments(p, args, positive=("threads",))


def _summary_lines(obj):
    return ["%s batch %d on %s (%s), providers %s, span %s, timer %s"
            % (obj["net"], obj["batch"], obj["device_name"], obj["device"], ",".join(obj["providers_used"]),
               obj["span"], obj["timer"]),
            "load %.3f s, first inference %.3f ms" % (obj["load_s"], obj["first_inference_ms"])]


def _kind_of(error, args):
    """ORT's Python errors are classes named after its status codes (NotImplemented, Fail, ...)."""
    if type(error).__name__ == "NotImplemented" or "NOT_IMPLEMENTED" in str(error):
        return "unsupported", None
    return None, None


def main(argv=None):
    return harness.main(parse_args, run, _summary_lines, {"onnxruntime_version": ort.__version__}, _kind_of, argv)


if __name__ == "__main__":
    sys.exit(main())
