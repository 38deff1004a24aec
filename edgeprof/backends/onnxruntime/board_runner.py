#!/usr/bin/env python3
"""edgeprof's ONNX Runtime runner: times an ONNX model (edgeprof.models.onnx_exports it) in ONNX Runtime.
Runs ON the board.

Uploaded into edgeprof's work folder (as onnxruntime_runner.py, beside the PyTorch backend's runner) with
board_timing.py beside it, and run as

    python3 onnxruntime_runner.py --model net.onnx [--providers CUDAExecutionProvider,CPUExecutionProvider]
        [--span compute|host] [--threads N] [--iterations N] [--input FILE] [--dump-output FILE] --json

It needs Python 3.6+, the standard library, numpy and onnxruntime (the Jetson Zoo's wheels on JetPack 4.6,
PyPI's elsewhere) and nothing else but board_timing.py: no torch, no edgeprof package. So: no dataclasses,
no f-strings with `=`, nothing from the standard library newer than 3.6.

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

Timing (FIELD.md section 1; the loop and the statistics are board_timing.py's)
    first inference: the first run after the session is created, reported on its own.
    warm-up, timed iterations, adaptive stopping, throughput: as board_timing.py says.
    span "compute" (default): the inputs already where the first provider used computes (OrtValues on CUDA
        device 0 for the CUDA and TensorRT providers, in host memory otherwise) and bound once with
        io_binding, the outputs bound to the same device and left there; an iteration is
        run_with_iobinding, which returns once the providers synchronized (ORT's default).
    span "host": session.run with numpy inputs and outputs; with a GPU provider that includes the copies
        in and out, on the CPU only the wrapping of numpy arrays.
    The timer is the host's time.perf_counter for both spans: ORT's Python API has no device events.

Memory: the process's peak RSS; with a GPU provider also nvidia-smi's view (board_timing.nvml_memory, a lone
    GPU only, since ORT does not give the device's UUID). The allocator figures of the PyTorch runner are
    null here: ORT's arena does not report its peak.

Tensor files (--input, --dump-output) are the PyTorch runner's format (its docstring): a JSON header line
    padded to a multiple of 64 bytes, then C-ordered little-endian float32 data; outputs are dumped as
    float32, from the first inference.

Output: one JSON object on stdout (--json), or a short summary. Any error is a JSON object {"error", "kind",
...} on stdout and a non-zero exit status; kind "unsupported" where the providers lack a kernel for an
operator in that type, "input" for a bad tensor file, "usage", "oom" and "runtime" otherwise.
"""
import json
import os
import platform
import sys
import time
import traceback
import warnings

import numpy as np
import onnxruntime as ort

if __package__:
    from .. import board_timing  # imported on the host, as edgeprof.backends.onnxruntime.board_runner
else:
    # Run as a script on the board: board_timing.py lies beside this file (see the PyTorch runner's
    # imports for why __package__ is tested rather than ImportError caught).
    import board_timing

TENSOR_FORMAT = "edgeprof-tensors"
TENSOR_VERSION = 1
# Providers that compute on the CUDA device: inputs and outputs are bound there for span compute.
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
ELEMENT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class RunnerError(Exception):
    """An error reported as JSON; kind is one of input, unsupported, usage."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# --- tensor files --------------------------------------------------------------------------------------

def read_tensors(path):
    """name -> float32 array, from an edgeprof tensor file."""
    with open(path, "rb") as f:
        line = f.readline()
        data = f.read()
    try:
        header = json.loads(line.decode("utf-8"))
    except ValueError:
        raise RunnerError("input", "%s: not an edgeprof tensor file (no JSON header line)" % path)
    if header.get("format") != TENSOR_FORMAT or header.get("dtype") != "float32-le":
        raise RunnerError("input", "%s: not an edgeprof float32 tensor file" % path)
    tensors = {}
    for entry in header["tensors"]:
        shape = [int(d) for d in entry["shape"]]
        count = int(np.prod(shape))
        offset = int(entry["offset"])
        if offset + 4 * count > len(data):
            raise RunnerError("input", "%s: file ends inside the data" % path)
        tensors[entry["name"]] = np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(shape)
    return tensors


def write_tensors(path, named):
    """Write [(name, array)] as an edgeprof tensor file, in float32."""
    arrays = [np.ascontiguousarray(array, dtype="<f4") for _, array in named]
    described = []
    offset = 0
    for (name, _), array in zip(named, arrays):
        described.append({"name": name, "shape": list(array.shape), "offset": offset})
        offset += array.nbytes
    header = json.dumps({"format": TENSOR_FORMAT, "version": TENSOR_VERSION, "dtype": "float32-le",
                         "tensors": described}).encode("utf-8")
    header += b" " * (-(len(header) + 1) % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(header)
        for array in arrays:
            f.write(array.tobytes())


# --- session and inputs --------------------------------------------------------------------------------

def open_session(args):
    """(session, seconds to create it, ORT's warnings meanwhile)."""
    options = ort.SessionOptions()
    if args.threads is not None:
        options.intra_op_num_threads = args.threads
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = ort.InferenceSession(args.model, options, providers=args.providers)
    return session, time.perf_counter() - t0, [str(w.message) for w in caught]


def make_inputs(session, args):
    """[(name, array)] in the session's input order, in each input's element type."""
    given = read_tensors(args.input) if args.input is not None else None
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


def _device_name(device):
    if device == "cpu":
        return board_timing.cpu_name()
    gpus = board_timing.nvidia_smi("--query-gpu=name") or []
    return gpus[0][0] if len(gpus) == 1 else None  # several GPUs: ORT does not say which one is device 0


def _memory_report(device):
    report = {"allocator_peak_bytes": None, "allocator_reserved_bytes": None,
              "process_rss_peak_bytes": board_timing.rss_peak_bytes(), "nvml_process_bytes": None,
              "nvml_device_used_bytes": None}
    if device == "cuda":
        report["nvml_process_bytes"], report["nvml_device_used_bytes"] = board_timing.nvml_memory(None)
    return report


def run(args):
    session, load_s, session_warnings = open_session(args)
    used = session.get_providers()
    device = "cuda" if used[0] in GPU_PROVIDERS else "cpu"
    feeds = make_inputs(session, args)
    batch = int(feeds[0][1].shape[0])
    step = HostStep(session, feeds) if args.span == "host" else BoundStep(session, feeds, device)
    first_ms = step()[0]
    names = [o.name for o in session.get_outputs()]
    if args.dump_output:
        write_tensors(args.dump_output, list(zip(names, step.outputs())))
    times, window, reason, warmup = board_timing.measure(step, args)

    result = {
        "load_s": load_s,
        "first_inference_ms": first_ms,
        "first_inference_timer": "perf_counter",
    }
    result.update(board_timing.timing_report(times, window, reason, warmup, batch))
    result.update({
        "memory": _memory_report(device),
        "onnxruntime_version": ort.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "device_name": _device_name(device),
        "threads": args.threads,
        "span": args.span,
        "timer": "perf_counter",
        "net": os.path.basename(args.model),
        "batch": batch,
        "inputs": [[name, str(x.dtype)] for name, x in feeds],
        "outputs": names,
        "providers_requested": args.providers,
        "providers_used": used,
        "provider_fallback": args.providers[0] not in used,
        "session_warnings": session_warnings,
        "settings": dict(board_timing.timing_settings(args), batch=batch, seed=args.seed, threads=args.threads,
                         span=args.span, providers=args.providers),
    })
    return result


def parse_args(argv):
    p = board_timing.JsonUsageParser(description="Time an ONNX model in ONNX Runtime.")
    p.add_argument("--model", required=True, help="the .onnx file")
    p.add_argument("--providers", type=lambda text: [n for n in text.split(",") if n],
                   default=["CPUExecutionProvider"],
                   help="comma-separated execution providers, most preferred first (default: CPU)")
    p.add_argument("--span", choices=("compute", "host"), default="compute")
    p.add_argument("--threads", type=int, help="intra-op threads (default: ORT's)")
    board_timing.add_timing_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="random input (without --input): seed + 1")
    p.add_argument("--input", help="edgeprof tensor file holding the inputs by name")
    p.add_argument("--dump-output", help="write the first inference's outputs to this tensor file")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = p.parse_args(argv)
    if not args.providers:
        p.error("--providers needs at least one execution provider")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    board_timing.check_timing_arguments(p, args)
    return args


def _summary_lines(obj):
    return ["%s batch %d on %s (%s), providers %s, span %s, timer %s"
            % (obj["net"], obj["batch"], obj["device_name"], obj["device"], ",".join(obj["providers_used"]),
               obj["span"], obj["timer"]),
            "load %.3f s, first inference %.3f ms" % (obj["load_s"], obj["first_inference_ms"])]


def _kind(error):
    """ORT's Python errors are classes named after its status codes (NotImplemented, Fail, ...)."""
    text = str(error)
    if isinstance(error, MemoryError) or "Failed to allocate memory" in text or "bad_alloc" in text:
        return "oom"
    if type(error).__name__ == "NotImplemented" or "NOT_IMPLEMENTED" in text:
        return "unsupported"
    return "runtime"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except RunnerError as e:
        board_timing.emit({"error": str(e), "kind": e.kind}, args.json, _summary_lines)
        return 1
    except Exception as e:
        traceback.print_exc()
        kind = _kind(e)
        board_timing.emit({"error": "%s: %s" % (type(e).__name__, str(e).strip()), "kind": kind,
                           "onnxruntime_version": ort.__version__}, args.json, _summary_lines)
        return 3 if kind == "oom" else 1
    board_timing.emit(result, args.json, _summary_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
