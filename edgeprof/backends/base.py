"""The base every backend builds on (after Polygraphy's BaseRunner, backend/base/runner.py): what a backend can
do, declared as data that the CLI, plans and --best read, and the recipe the backends that run a Python runner
on the board share, written once.

Capabilities (class attributes):
    name, model_kinds        the backend's name and the edgeprof.models kinds it runs
    precisions               what --precision may be (the first is the reference --best starts from)
    spans                    what --span may be; () for a backend that times one span of its own (caffe);
                             "end-to-end" where its runner takes --input's images through every stage
    best_tries               what --best tries, in words (None: no variants; variants() gives [options])
    tool                     what runs, in messages ("caffe time", "ONNX Runtime")
    precision_refusal        the message for a precision it lacks ({precision}, {tool}, {precisions})

The recipe, for a backend with a board runner (`runner`, a file of edgeprof/onboard/):
    prepare(board)           its probe (`probe`, a constant Python script printing one JSON object of facts;
                             `modules` must import) run with the board's Python, then edgeprof/onboard/'s
                             bundle uploaded into the work folder; facts["runner"] is the runner's path there
    refusal(options)         what the backend cannot do, said before anything runs on the board
    measure(...)             a new result, refused or not, then measure_impl (the backend's own part, with the
                             facts prepare found) turning RunnerFailed into a failed result
    run_runner(...)          the runner run, its JSON returned (RunnerFailed otherwise)
    fill(result, report)     the fields every runner report gives copied into the result
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Mapping, Sequence

from .. import onboard
from ..errors import BackendUnavailable, RunnerFailed
from ..onboard.timing import BACK_TO_BACK, describe_method
from ..result import RUNNER_FIGURES
from ..transport import CommandTimeout

if TYPE_CHECKING:
    from ..board import Board
    from ..image_inputs import ImageInput
    from ..models import ModelSource
    from ..result import Result

PROCESSORS = ("auto", "cpu", "gpu")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
MODES = ("inference", "train-step")
TENSORRT_SOURCES = ("onnx", "prototxt")


# The options one backend has of its own, kept in that backend's option type (Backend.option_type, a frozen
# dataclass beside the backend) inside Options; Options still takes and gives them under the keywords it always
# had (the CLI's flags, plans, the Python API): keyword -> (backend, its option type's field).
OWN_OPTIONS = {"channels_last": ("pytorch", "channels_last"), "cuda_graph": ("pytorch", "cuda_graph"),
               "compile": ("pytorch", "compile"), "mode": ("pytorch", "mode"),
               "tensorrt_source": ("tensorrt", "source"), "dla_core": ("tensorrt", "dla_core"),
               "ort_provider": ("onnxruntime", "provider")}


def _option_type(backend: str) -> type:
    from . import backend_class     # the registry imports this module
    return backend_class(backend).option_type


@dataclass(frozen=True)
class NoOptions:
    """The option type of a backend without options of its own."""


@dataclass(frozen=True)
class CommonOptions:
    """How to measure, whatever the backend. Backends apply what they have and record in each result's settings
    what they ran; `caffe time` has none of the variants (fp32, its own timers, forward and backward always)."""
    iterations: int | None = None    # None: the backend's default policy
    timeout_s: float = 1800.0        # per measurement, on the board
    processor: str = "auto"          # auto: the board's GPU when the framework sees one, else its CPU
    span: str = "compute"            # compute: input already on the device; host: copies included
    precision: str = "fp32"
    threads: int | None = None       # CPU threads (torch.set_num_threads)
    best: bool = False               # try the variants the board supports (Backend.variants), each a result
    opset: int | None = None         # ONNX export: this opset, None: what the board's runtime reads (onnx_versions)
    gpu: int | None = None           # the GPU (nvidia-smi index) a job runs on (--gpus); None: the first
    duration_s: float | None = None  # --duration: time for this long, in windows of window_s (not with iterations)
    window_s: float = 5.0
    window_log: str | None = None    # --duration: the board file the runner appends each finished window to
    arrival: str = BACK_TO_BACK      # --arrival: fixed-rate=HZ or poisson=HZ queries (onboard/timing.py)
    arrival_seed: int = 0
    per_layer: bool = False          # --per-layer: the runner also times each layer (PyTorch, ONNX Runtime)
    image_input: "ImageInput | None" = None  # --input: the files --span end-to-end feeds (edgeprof.image_inputs)
    images: int | None = None        # --images: that many images through end to end (instead of iterations)
    prefetch: int = 0                # --prefetch: images decoded ahead by a thread on the board
    own: tuple = ()                  # the backends' own options (their option_type) not at their defaults


class Options(CommonOptions):
    """CommonOptions and each backend's own (`of(backend)`), given and read under OWN_OPTIONS' keywords too:
    Options(channels_last=True).channels_last is PyTorchOptions' channels_last, and dataclasses.replace takes
    those keywords as well. Options are equal however given: an own option at its defaults is not kept."""

    def __init__(self, **given):
        moved: dict[str, dict] = {}
        for keyword in [k for k in given if k in OWN_OPTIONS]:
            backend, name = OWN_OPTIONS[keyword]
            moved.setdefault(backend, {})[name] = given.pop(keyword)
        super().__init__(**given)
        own = {type(found): found for found in self.own}
        for backend, changes in moved.items():
            kind = _option_type(backend)
            own[kind] = replace(own.get(kind, kind()), **changes)
        kept = sorted((found for kind, found in own.items() if found != kind()), key=lambda o: type(o).__name__)
        object.__setattr__(self, "own", tuple(kept))

    def of(self, backend: str):
        """`backend`'s own options (its option_type), at their defaults where none were given."""
        kind = _option_type(backend)
        return next((found for found in self.own if type(found) is kind), kind())

    def __getattr__(self, name: str):
        if name not in OWN_OPTIONS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        backend, field_name = OWN_OPTIONS[name]
        return getattr(self.of(backend), field_name)

    def timing_argv(self) -> list[str]:
        """The board runners' timing options (edgeprof/onboard/timing.py) for these options."""
        argv = [] if self.arrival == BACK_TO_BACK else ["--arrival", self.arrival, "--arrival-seed",
                                                        str(self.arrival_seed)]
        if self.duration_s is not None:
            argv += ["--duration-s", repr(self.duration_s), "--window-s", repr(self.window_s)]
            return argv + ([] if self.window_log is None else ["--window-log", self.window_log])
        return argv + ([] if self.iterations is None else ["--iterations", str(self.iterations)])


# $1: an argument to run the tool found with ("" for none), the rest: the candidates. Prints the first
# candidate that exists and is executable, then what it prints (stdout) when run with $1; "~/" means the
# login user's home. The candidates (from the device profile or inventory) arrive as arguments, never pasted
# into the script.
_FIND_TOOL = r'''ask=$1; shift
for c in "$@"; do
  case "$c" in "~/"*) c="$HOME/${c#"~/"}";; esac
  p=$(command -v -- "$c" 2>/dev/null) && [ -x "$p" ] && {
    echo "$p"
    if [ -n "$ask" ]; then "$p" "$ask" </dev/null 2>/dev/null; fi
    exit 0
  }
done
exit 1'''


@dataclass(frozen=True)
class FoundTool:
    path: str
    answer: str     # what it printed on stdout when run with find_tool's `ask` ("" without)


def find_tool(board: "Board", candidates: tuple[str, ...], tool: str, ask: str = "") -> FoundTool | None:
    """The first of `candidates` (commands on PATH or paths) that the board has, or None; with `ask` (one
    argument, e.g. --version), also what it answers to it, in the same round trip."""
    found = board.run(["sh", "-c", _FIND_TOOL, f"find-{tool}", ask, *candidates], timeout=30 if not ask else 90)
    if not found.ok:
        return None
    path, _, answer = found.stdout.partition("\n")
    return FoundTool(path.strip(), answer)


def probe_python(board: "Board", script: str, modules: Sequence[str], hint: str) -> dict:
    """Run a backend's probe `script` with the board's Python (the profile's `python`), `modules` as its
    arguments: its last stdout line is a JSON object of facts, with "<module>_error" for each of `modules`
    that would not import. Raises BackendUnavailable, with `hint` on how to install, when the Python or a
    module is missing."""
    python = board.device.profile.python
    found = board.run([python, "-c", script, *modules], timeout=180)
    if found.exit_status == 127:
        raise BackendUnavailable(
            f"{python} not found on {board.device.name}: install Python 3.6 or newer, or set "
            f"python = \"/path/to/python3\" in the device's inventory entry")
    try:
        facts = json.loads(found.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BackendUnavailable(f"{python} on {board.device.name} could not run edgeprof's probe "
                                 f"(status {found.exit_status}): {found.stderr.strip()[-500:]}") from None
    missing = [name for name in modules if f"{name}_error" in facts]
    if missing:
        reasons = "; ".join(facts[f"{name}_error"] for name in missing)
        raise BackendUnavailable(f"{' and '.join(missing)} not importable by {python} on {board.device.name} "
                                 f"({reasons}): {hint}")
    facts["python"] = python
    return facts


_EXIT_MEANING = {137: "was killed (SIGKILL: out of memory?)", 139: "crashed (SIGSEGV)", 134: "aborted (SIGABRT)"}


def run_board_runner(board: "Board", argv: Sequence[str], result: "Result", timeout_s: float, runner: str) -> dict:
    """Run an uploaded board runner (`runner` names it in messages), keep its output as the result's raw log,
    and return the JSON object it printed last. Raises RunnerFailed when there is none or it is an error."""
    try:
        run = board.run(argv, timeout=timeout_s, record_in=result)
    except CommandTimeout as e:
        raise RunnerFailed(f"{e}. Lower --batch or --iterations, or raise the timeout.") from None
    result.raw_log = run.stderr + run.stdout
    report = next((found for found in map(_json_object, reversed(run.stdout.strip().splitlines())) if found), None)
    if report is None:
        how = _EXIT_MEANING.get(run.exit_status, f"exited with status {run.exit_status}")
        raise RunnerFailed(f"{runner} {how} without a result; last output: {run.stderr.strip()[-500:] or '(none)'}")
    if "error" in report:
        error, kind = report["error"], report.get("kind")
        if not isinstance(error, str) or not isinstance(kind, str):
            raise RunnerFailed(f"{runner} reported an error in a shape edgeprof does not know: {str(report)[:300]}")
        message = f"{error} ({kind})"
        if kind == "oom":
            message = f"out of memory at batch {result.batch} on {board.device.name}: {message}. Try a smaller --batch."
        raise RunnerFailed(message)
    check_report(report, runner)
    return report


# The keys every runner report carries (edgeprof/onboard/harness.py, report()) with their JSON types. A report
# without one, or with another type (a runner of another edgeprof version, a damaged or hostile board), makes
# a failed result with the reason, not a crash of the sweep.
_NONE = type(None)
REPORT_TYPES = {"span": str, "device": str, "timer": str, "python_version": str, "iterations": int,
                "warmup_iterations": int,
                "settings": dict, "times_ms": list, "latency_ms": (dict, _NONE), "timed_window": (dict, _NONE),
                "throughput_ips": (int, float, _NONE), "first_inference_ms": (int, float, _NONE),
                "stop_reason": (str, _NONE)}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_report(report: dict, runner: str) -> None:
    """Raise RunnerFailed naming the first key of `report` that is missing or not of its type."""
    def bad(key: str, why: str):
        return RunnerFailed(f"{runner} gave a report edgeprof cannot use: `{key}` {why}")
    for key, types in REPORT_TYPES.items():
        if key not in report:
            raise bad(key, "is missing")
        if isinstance(report[key], bool) or not isinstance(report[key], types):
            raise bad(key, f"is {type(report[key]).__name__}, not {getattr(types, '__name__', types)}")
    if not all(_number(t) and t >= 0 for t in report["times_ms"]):
        raise bad("times_ms", "holds something other than non-negative finite numbers")
    if any(v is not None and not _number(v) for v in (report["latency_ms"] or {}).values()):
        raise bad("latency_ms", "holds something other than numbers")
    window = report["timed_window"]
    if window is not None and not (_number(window.get("start_s")) and _number(window.get("end_s"))):
        raise bad("timed_window", "lacks numeric start_s and end_s")
    settings = report["settings"]
    if not isinstance(settings.get("iterations"), (int, _NONE)) or not all(
            _number(settings.get(key)) for key in ("warmup", "warmup_s", "min_iterations", "min_time_s",
                                                   "max_time_s", "target_ci")):
        raise bad("settings", "lacks the timing policy (iterations, warm-up, stop rule) as numbers")
    windows = report.get("windows")
    if windows is not None and not (
            isinstance(windows, list) and all(isinstance(w, dict) and _number(w.get("start_s"))
                                              and _number(w.get("end_s")) and type(w.get("iterations")) is int
                                              and w["iterations"] >= 0 for w in windows)
            and sum(w["iterations"] for w in windows) == len(report["times_ms"])):
        raise bad("windows", "is not a list of windows whose iterations add up to times_ms")
    per_layer = report.get("per_layer")
    if per_layer is not None and not _per_layer_ok(per_layer):
        raise bad("per_layer", "is not a list of layers (or nodes) with a name and a time in ms")
    arrival = report.get("arrival")
    if arrival is not None and not (isinstance(arrival, dict) and type(arrival.get("queries")) is int
                                    and type(arrival.get("missed_deadlines")) is int
                                    and _number(arrival.get("rate_hz"))):
        raise bad("arrival", "lacks the queries, missed deadlines and rate as numbers")


def _per_layer_ok(found) -> bool:
    """A runner's per-layer figures (layer_timing.py: "layers"; onnxruntime_runner.py: "nodes"): each entry
    a name and a time in ms (ORT: or None for a node that ran once, in the warm-up only)."""
    entries = found.get("layers", found.get("nodes")) if isinstance(found, dict) else None
    return isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("name", e.get("node")), str)
        and (_number(e.get("ms")) or (e.get("ms") is None and "node" in e)) for e in entries)


def _json_object(line: str) -> dict | None:
    try:
        found = json.loads(line)
    except (ValueError, RecursionError):   # RecursionError: nesting deeper than the parser's stack allows
        return None
    return found if isinstance(found, dict) else None


# int8 needs quantization scales: a calibrated model, which edgeprof does not make, or TensorRT's placeholder
# scales, which time the int8 engine but make its outputs meaningless. Only TensorRT offers the latter.
INT8_REFUSAL = "int8 needs a calibrated model; only --backend tensorrt times int8"
# The board's Python version and each module's (the arguments) version or import error, as one JSON line.
MODULE_VERSIONS = r'''import json, platform, sys
facts = {"python_version": platform.python_version(), "python_executable": sys.executable}
for name in sys.argv[1:]:
    try:
        facts[name] = __import__(name).__version__
    except Exception as e:
        facts[name + "_error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(facts))
'''


class Backend:
    name: str
    model_kinds: tuple[str, ...]
    precisions: tuple[str, ...] = ("fp32",)
    spans: tuple[str, ...] = ("compute", "host")
    best_tries: str | None = None
    timing_loop: bool = True                 # its runner times with edgeprof's loop: --duration, --arrival
    tool: str = ""
    runner: str | None = None
    probe: str = MODULE_VERSIONS
    modules: tuple[str, ...] = ()
    precision_refusal = "--precision {precision}: {tool} runs {precisions} only"
    install_hint: Mapping[str, str] = {}     # by device kind (jetson, desktop); "desktop" is the default
    report_versions: Mapping[str, str] = {}  # result.state["versions"] key -> the runner report's key
    figures: tuple[str, ...] = ()            # the runner report's keys kept as figures besides RUNNER_FIGURES
    option_type: type = NoOptions            # its own options, a frozen dataclass (Options.of(name))
    gpu_by_argument: bool = False            # --gpus: the tool takes its GPU on its command line (gpu_env)

    def prepare(self, board: "Board") -> dict:
        hint = self.install_hint.get(board.device.profile.kind, self.install_hint.get("desktop", ""))
        facts = probe_python(board, self.probe, self.modules, hint)
        for name, text in onboard.bundle().items():
            board.put_text(f"{board.workdir}/{name}", text)
        facts["runner"] = f"{board.workdir}/{self.runner}"
        return facts

    def measure(self, board: "Board", model: "ModelSource", batch: int, options: Options) -> "Result":
        """A result of `model` at `batch` on `board` (after Polygraphy's BaseRunner.infer over infer_impl):
        failed saying why where refusal() refuses `options` or the run raises RunnerFailed, else what
        measure_impl made of it. BoardUnreachable passes: the sweep ends on it."""
        result = board.new_result(model, self.name, batch)
        if refused := self.refusal(options):
            return result.fail(refused)
        try:
            return self.measure_impl(board, board.backend_facts[self.name], model, batch, options, result)
        except RunnerFailed as e:
            return result.fail(str(e))

    def measure_impl(self, board: "Board", facts: dict, model: "ModelSource", batch: int, options: Options,
                     result: "Result") -> "Result":
        """What is the backend's own of a measurement, into `result`: `facts` are what prepare() found. It
        returns the result (result.fail(why) for what the board lacks) or raises RunnerFailed."""
        raise NotImplementedError

    @staticmethod
    def upload_model(board: "Board", model: "ModelSource", batch: int, result: "Result") -> str:
        """The model's file in the board's work folder, named after the model at `batch`: a prototxt rewritten
        to the batch (the diff kept in the result), a TorchScript file as it is. Returns its path there."""
        base = f"{board.workdir}/{model.file_stem(batch)}"
        if model.kind == "prototxt":
            rewritten, result.prototxt_diff = model.at_batch(batch)
            board.put_text(base + ".prototxt", rewritten)
            return base + ".prototxt"
        with open(model.path, "rb") as f:
            board.put_bytes(base + ".pt", f.read())
        return base + ".pt"

    def variants(self, board: "Board", options: Options) -> list[Options]:
        """What --best tries on this board; a backend without variants measures `options` once."""
        return [options]

    def refusal(self, options: Options) -> str | None:
        """Why this backend cannot measure with `options` at all, or None."""
        if options.precision == "int8" and "int8" not in self.precisions:
            return INT8_REFUSAL
        if options.precision not in self.precisions:
            return self.precision_refusal.format(precision=options.precision, tool=self.tool,
                                                 precisions=", ".join(self.precisions))
        if options.span == "end-to-end" and "end-to-end" not in self.spans:
            return (f"--span end-to-end: {self.tool} cannot take real images through its stages; use a backend "
                    f"that times end to end (pytorch, onnxruntime)")
        if self.spans and options.span not in self.spans:
            return f"--span {options.span}: {self.tool} times {', '.join(self.spans)} only"
        asked = [name for name, given in (("--duration", options.duration_s is not None),
                                          ("--arrival", options.arrival != BACK_TO_BACK)) if given]
        if asked and not self.timing_loop:
            return (f"{' and '.join(asked)}: {self.tool} runs its own fixed number of back-to-back iterations, "
                    f"without windows or arrivals; use --iterations, or a backend timed by edgeprof's loop "
                    f"(pytorch, onnxruntime)")
        return None

    @classmethod
    def gpu_env(cls, gpu: int | None) -> dict[str, str]:
        """The environment that puts a job on GPU `gpu` (--gpus), read by the CUDA runtime itself
        (https://docs.nvidia.com/cuda/cuda-c-programming-guide/#cuda-environment-variables):
        CUDA_VISIBLE_DEVICES, so that torch's cuda:0, ONNX Runtime's device 0 and trtexec's default device are
        that GPU; a backend whose tool takes its GPU on its command line (gpu_by_argument: caffe -gpu N) puts
        Options.gpu there instead. And CUDA_DEVICE_ORDER=PCI_BUS_ID: CUDA numbers GPUs fastest first unless
        told, nvidia-smi by PCI bus, so on a machine of mixed GPUs (seed 003's three 1080 Ti and a TITAN X)
        index N would otherwise be another GPU than the one whose telemetry is N's."""
        if gpu is None:
            return {}
        order = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        return order if cls.gpu_by_argument else {**order, "CUDA_VISIBLE_DEVICES": str(gpu)}

    def run_runner(self, board: "Board", argv: Sequence[str], result: "Result", options: Options) -> dict:
        return run_board_runner(board, argv, result, options.timeout_s, f"the {self.tool} runner")

    @classmethod
    def fill(cls, result: "Result", report: dict) -> "Result":
        """The runner report's common fields in `result`: span, latency, throughput, iterations, timed window,
        settings (processor: the device it ran on), versions, figures, method."""
        result.span = report["span"]
        result.latency_ms = dict(report["latency_ms"] or {})
        result.throughput_ips = report["throughput_ips"]
        result.iterations = report["iterations"]
        result.timed_window = report["timed_window"]
        result.settings.update(report["settings"], processor=report["device"])
        result.state.setdefault("versions", {}).update(
            {key: report.get(found) for key, found in cls.report_versions.items()},
            python_version=report["python_version"])
        result.figures.update({key: report.get(key) for key in RUNNER_FIGURES + cls.figures})
        result.method = describe_method(report)
        return result


__all__ = ["Backend", "COMPILE_MODES", "INT8_REFUSAL", "MODES", "MODULE_VERSIONS", "Options",
           "PROCESSORS", "TENSORRT_SOURCES", "FoundTool", "find_tool", "probe_python", "run_board_runner"]
