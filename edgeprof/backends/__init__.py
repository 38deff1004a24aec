"""Backends: one folder per framework behind one small contract (after Polygraphy's backend/<framework>/).

A backend is looked up by name and imported lazily, so the host never imports a framework it does not run.

    class Backend(Protocol):
        name: str
        model_kinds: tuple[str, ...]                   # which edgeprof.models kinds it can run
        def prepare(self, board: Board) -> dict        # find the tool on the board, return its facts
        def measure(self, board: Board, model: ModelSource, batch: int, options: Options) -> Result

A backend with variants (precisions, graph capture, compilation) also has

        def variants(self, board: Board, options: Options) -> list[Options]   # what --best tries there

`prepare` raises BackendUnavailable (saying how to install the backend) when the board lacks it;
`measure` returns a Result, failed or not, and raises only when the board itself is gone (TransportError).
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

from ..transport import CommandTimeout
from ..errors import BackendUnavailable, RunnerFailed  # noqa: F401 (their home for backends)

if TYPE_CHECKING:
    from ..models import ModelSource
    from ..result import Result
    from ..board import Board

_REGISTRY = {
    "caffe": "edgeprof.backends.caffe.runner:CaffeBackend",
    "onnxruntime": "edgeprof.backends.onnxruntime.runner:OnnxRuntimeBackend",
    "pytorch": "edgeprof.backends.pytorch.runner:PyTorchBackend",
    "tensorrt": "edgeprof.backends.tensorrt.runner:TensorRTBackend",
}


# Prints the first candidate that exists and is executable; "~/" means the login user's home. The
# candidates (from the device profile or inventory) arrive as arguments, never pasted into the script.
_FIND_TOOL = r'''for c in "$@"; do
  case "$c" in "~/"*) c="$HOME/${c#"~/"}";; esac
  p=$(command -v -- "$c" 2>/dev/null) && [ -x "$p" ] && { echo "$p"; exit 0; }
done
exit 1'''


def find_tool(board: "Board", candidates: tuple[str, ...], tool: str) -> str | None:
    """The path of the first of `candidates` (commands on PATH or paths) that the board has, or None."""
    found = board.run(["sh", "-c", _FIND_TOOL, f"find-{tool}", *candidates], timeout=30)
    return found.stdout.strip() if found.ok else None


def probe_python(board: "Board", script: str, modules: Sequence[str], hint: str) -> dict:
    """Run a backend's probe `script` with the board's Python (the profile's `python`): its last stdout line
    is a JSON object of facts, with "<module>_error" for each of `modules` that would not import. Raises
    BackendUnavailable, with `hint` on how to install, when the Python or a module is missing."""
    python = board.device.profile.python
    found = board.run([python, "-c", script], timeout=180)
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
        message = f"{report['error']} ({report['kind']})"
        if report["kind"] == "oom":
            message = f"out of memory at batch {result.batch} on {board.device.name}: {message}. Try a smaller --batch."
        raise RunnerFailed(message)
    return report


def _json_object(line: str) -> dict | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


PROCESSORS = ("auto", "cpu", "gpu")
SPANS = ("compute", "host")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# int8 needs quantization scales: a calibrated model, which edgeprof does not make, or TensorRT's placeholder
# scales, which time the int8 engine but make its outputs meaningless. Only TensorRT offers the latter.
INT8_BACKENDS = ("tensorrt",)
INT8_REFUSAL = "int8 needs a calibrated model; only --backend tensorrt times int8"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
MODES = ("inference", "train-step")
TENSORRT_SOURCES = ("onnx", "prototxt")


@dataclass(frozen=True)
class Options:
    """How to measure. Backends apply what they have and record in each result's settings what they ran;
    `caffe time` has none of the variants (fp32, its own timers, forward and backward always)."""
    iterations: int | None = None    # None: the backend's default policy
    timeout_s: float = 1800.0        # per measurement, on the board
    processor: str = "auto"          # auto: the board's GPU when the framework sees one, else its CPU
    span: str = "compute"            # compute: input already on the device; host: copies included
    precision: str = "fp32"
    channels_last: bool = False
    cuda_graph: bool = False
    compile: str | None = None       # a torch.compile mode, None: eager
    threads: int | None = None       # CPU threads (torch.set_num_threads)
    mode: str = "inference"          # or "train-step": forward + loss + backward + optimizer step
    best: bool = False               # try the variants the board supports (Backend.variants), each a result
    tensorrt_source: str = "onnx"    # TensorRT: build from the ONNX export, or from the Caffe prototxt (<= 8.6)
    ort_provider: str | None = None  # ONNX Runtime: this execution provider first (--best), None: by processor
    dla_core: int | None = None      # TensorRT: build for this DLA core, layers it cannot run on the GPU


class Backend(Protocol):
    name: str
    model_kinds: tuple[str, ...]

    def prepare(self, board: "Board") -> dict: ...

    def measure(self, board: "Board", model: "ModelSource", batch: int, options: Options) -> "Result": ...


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Backend:
    if name not in _REGISTRY:
        raise KeyError(f"unknown backend {name!r}; available: {', '.join(names())}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["Backend", "BackendUnavailable", "COMPILE_MODES", "INT8_BACKENDS", "INT8_REFUSAL", "MODES", "Options",
           "PRECISIONS", "PROCESSORS", "RunnerFailed", "SPANS", "TENSORRT_SOURCES", "find_tool", "get", "names",
           "probe_python", "run_board_runner"]
