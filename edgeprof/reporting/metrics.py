"""The figures `edgeprof compare --metric` sets beside latency, each from what a result stores: throughput,
memory and energy per inference, and the cold start (load, first inference, memory after each). Latency,
with its bootstrap, stays in reporting.compare.

Cold start, the way OpenVINO's benchmark_app and Qualcomm AI Hub's profile jobs split it: `build` is the
engine build or compilation done before the load (TensorRT's engine build by this run, or, for an engine
from the cache, the build that made it; torch.compile's first call), `load` is the
runner's own load span in its fresh process (PyTorch: building the net and moving it to the device;
ONNX Runtime: creating the session; TensorRT: deserializing the engine, its build apart), `first` the first
inference after it (allocations, cuDNN autotune, lazy initialization), steady state the latency columns.
`load-memory` and `first-memory` are the memory right after each of the two (harness.stage_memory): the
allocator's bytes in use where the framework has an allocator (torch on CUDA), else the process's resident
set. Backends that cannot split a cold start (caffe time) have none of these figures.

A metric names, for one result, every figure it has in order of preference: {what: value}. Memory has
several, and they measure different things (seed 000: nvidia-smi shows what the allocator holds, not what the
net uses, https://pytorch.org/docs/stable/notes/cuda.html#cuda-memory-management); a row of a comparison
takes the first kind every cell of the row has, so one row compares one thing, and says which. Where the
cells share none, each shows its own first kind and no factor is given against a different kind.

A factor is the cell's figure over the baseline's, whatever the metric (0.8: 20 % less memory, energy or
throughput than the baseline). None of these figures has an interval: each is one figure per run (a peak, a
count over the timed window), not a distribution a bootstrap could resample; `measure --repeat` shows the
run-to-run spread of latency.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..result import Result

METRICS = ("latency", "throughput", "memory", "energy", "build", "load", "first", "load-memory", "first-memory")
MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Metric:
    name: str
    heading: str                                    # the table's column heading, with the unit shown
    unit: str                                       # the unit of the stored values (JSON, CSV)
    shown_per_unit: float                           # stored value / shown_per_unit = the value shown
    figures: Callable[[Result], dict[str, float]]   # {what: value}, most comparable first; {} for none

    def shown(self, value: float) -> str:
        return f"{value / self.shown_per_unit:.4g}"


def _throughput(result: Result) -> dict[str, float]:
    if not result.throughput_ips:
        return {}
    # caffe time prints no window length, only the mean forward pass (edgeprof.backends.caffe).
    what = ("batch / mean forward pass" if result.span == "caffe_forward"
            else "batch x iterations / timed window")
    return {what: result.throughput_ips}


# The runners' memory report (edgeprof/onboard/harness.py memory_report), most specific first: the framework
# allocator's peak is what the net needed; nvidia-smi's per-process figure adds the CUDA context and the
# allocator's cache; the process's peak RSS is host memory (all of it on a CPU run, and on a Jetson, whose
# GPU shares it). Then the board's view from telemetry: everything running on the board. (what, Memory's
# attribute, its unit in bytes)
_MEMORY = (("allocator peak", "allocator_peak_bytes", 1.0),
           ("nvidia-smi, this process", "nvml_process_bytes", 1.0),
           ("process peak RSS", "process_rss_peak_bytes", 1.0),
           ("board RAM used, peak in window (tegrastats)", "board_ram_peak_mb", MIB),
           ("GPU memory used, peak in window (nvidia-smi, whole GPU)", "gpu_mem_peak_mb", MIB))


def _memory(result: Result) -> dict[str, float]:
    memory = result.memory
    return {what: getattr(memory, name) * scale for what, name, scale in _MEMORY
            if _positive(getattr(memory, name))}


def _energy(result: Result) -> dict[str, float]:
    value = result.power.energy_per_inference_j
    # caffe time's window holds backward passes too (edgeprof.telemetry.summary): said, not hidden.
    what = "forward + backward per image" if result.span == "caffe_forward" else "board energy per inference"
    return {what: value} if _positive(value) else {}


def _build(result: Result) -> dict[str, float]:
    figures = result.figures
    build = figures.get("engine_build")       # the cached engine's record (edgeprof.backends.tensorrt)
    cached = build.get("build_s") if isinstance(build, dict) else None
    found = {"TensorRT engine build, this run": figures.get("build_s"),
             "TensorRT engine build, cached (when it was built)": cached if figures.get("build_s") is None else None,
             "torch.compile, first call": figures.get("compile_s")}
    return {what: value for what, value in found.items() if _positive(value)}


def _load(result: Result) -> dict[str, float]:
    value = result.timing.load_s
    # One kind for every backend: each one's load is what a user waits for before its first inference.
    return {"load in a fresh process": value} if _positive(value) else {}


def _first(result: Result) -> dict[str, float]:
    value = result.timing.first_inference_ms
    return {"first inference after load": value} if _positive(value) else {}


def _stage(name: str) -> Callable[[Result], dict[str, float]]:
    def figures(result: Result) -> dict[str, float]:
        stage = result.memory.stages.get(name, {})
        return {what: stage[key] for what, key in (("allocator in use", "allocator_bytes"),
                                                   ("process RSS", "rss_bytes")) if _positive(stage.get(key))}
    return figures


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


FIGURES = {
    "throughput": Metric("throughput", "img/s", "images/s", 1.0, _throughput),
    "memory": Metric("memory", "memory MiB", "bytes", MIB, _memory),
    "energy": Metric("energy", "mJ/img", "J", 1e-3, _energy),
    "build": Metric("build", "build s", "s", 1.0, _build),
    "load": Metric("load", "load s", "s", 1.0, _load),
    "first": Metric("first", "first inference ms", "ms", 1.0, _first),
    "load-memory": Metric("load-memory", "MiB after load", "bytes", MIB, _stage("loaded")),
    "first-memory": Metric("first-memory", "MiB after 1st inference", "bytes", MIB, _stage("first_inference")),
}


@dataclass
class Figure:
    """One cell's figure of one metric, and its factor against the baseline's cell."""
    value: float
    what: str
    factor: float | None = None
    note: str | None = None          # "baseline", or why there is no factor


def row_figures(metric: Metric, results: dict[str, Result], baseline: str) -> dict[str, Figure]:
    """The figure of `metric` for each cell of one row (results by column label), with factors against the
    cell of column `baseline` where it has one. Cells without a figure are left out."""
    found = {label: metric.figures(result) for label, result in results.items()}
    found = {label: figures for label, figures in found.items() if figures}
    shared = [what for what in next(iter(found.values()), {}) if all(what in f for f in found.values())]
    out = {}
    for label, figures in found.items():
        what = shared[0] if shared else next(iter(figures))
        out[label] = Figure(figures[what], what)
    base = out.get(baseline)
    for label, figure in out.items():
        if label == baseline:
            figure.note = "baseline"
        elif base is None:
            figure.note = f"n/a: no {metric.name} figure for the baseline"
        elif figure.what != base.what:
            figure.note = f"n/a: {figure.what} vs the baseline's {base.what}"
        else:
            figure.factor = figure.value / base.value
    return out


__all__ = ["FIGURES", "Figure", "METRICS", "Metric", "row_figures"]
