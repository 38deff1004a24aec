"""One measurement: what was measured, how, under what state, and what came out.

`Result.to_dict()` is the public JSON shape (`measure --json`, `results show --json`, exports). Keys are
only ever added, never renamed. Every figure says its span (compute, host, caffe_forward, ...) and the
method that produced it; a figure a tool does not provide is None, never a guess.

What every backend reports is read through typed parts (after hyperfine's one typed BenchmarkResult,
src/benchmark/benchmark_result.rs), built from the stored dicts on each access: `result.latency`,
`result.timing`, `result.memory`, `result.power`, `result.flag_list`. Readers (reporting/) use them instead of
re-deriving nested paths. A part holds numbers or None: what a stored document from another writer holds
there that is not a finite number is None, as a figure the tool did not provide.

The figures a backend's runner reports besides the common ones (RUNNER_FIGURES, read through the parts) are
its own: to_dict writes them under the fixed key "figures", and every figure, the common ones too, under the
backend's name as before (the alias old readers and stored results use).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

LATENCY_KEYS = ("median", "mean", "p90", "p99", "min", "max")
# What every runner report gives (edgeprof/onboard/harness.py, report()) and a result keeps among its figures
# (edgeprof.backends.base fills them); the parts below read them.
RUNNER_FIGURES = ("load_s", "first_inference_ms", "ci95_ms", "ci_rel", "stop_reason", "warmup_iterations", "memory",
                  "memory_stages", "device_name", "threads", "times_ms", "windows", "arrival")


def empty_latency() -> dict:
    return {k: None for k in LATENCY_KEYS}


def finite(value) -> float | None:
    """`value` where it is a finite number (not a bool), else None: JSON from another writer of a shared database
    may hold anything where a figure should be."""
    try:
        return value if type(value) in (int, float) and math.isfinite(value) else None
    except OverflowError:       # an int beyond any float
        return None


def _pair(value) -> tuple[float, float] | None:
    """[low, high] as a tuple of two numbers, else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(finite(v) is not None for v in value):
        return tuple(value)
    return None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Latency:
    """Per-inference latency in ms over `span`, the statistics the backend measured (caffe time: a mean only),
    with each percentile's distribution-free 95 % interval (edgeprof.validity: order statistics) and, for a
    percentile the iterations cannot bound, why ({"reason", "iterations_needed"})."""
    span: str | None
    median: float | None
    mean: float | None
    p90: float | None
    p99: float | None
    min: float | None
    max: float | None
    intervals: Mapping[str, tuple[float, float]]
    unbounded: Mapping[str, dict]
    unit: str = "ms"

    @classmethod
    def of(cls, result: "Result") -> "Latency":
        figures = _dict(result.latency_ms)
        intervals = {k: pair for k, v in _dict(result.latency_ci95_ms).items() if (pair := _pair(v))}
        return cls(result.span, *(finite(figures.get(k)) for k in LATENCY_KEYS), intervals,
                   _dict(result.latency_unbounded))

    @property
    def headline(self) -> tuple[float | None, str | None]:
        """(value, statistic): the median where the backend measured one, else the mean; (None, None)."""
        for statistic in ("median", "mean"):
            if getattr(self, statistic) is not None:
                return getattr(self, statistic), statistic
        return None, None

    def get(self, statistic: str) -> float | None:
        return getattr(self, statistic) if statistic in LATENCY_KEYS else None


@dataclass(frozen=True)
class Timing:
    """How the latency was timed: iterations after `warmup_iterations`, with `timer`, ended for `stop_reason`
    (timing.py: converged, time_cap, fixed...), over `window` (start_s, end_s on the board's clock) and `span`;
    the per-iteration times where the runner kept them, the runner's own 95 % interval of the median, and the
    cold start outside the timed loop (the load in a fresh process, the first inference)."""
    iterations: int | None
    warmup_iterations: int | None
    timer: str | None
    stop_reason: str | None
    window: tuple[float, float] | None
    span: str | None
    times_ms: tuple[float, ...] | None
    runner_ci95_ms: tuple[float, float] | None
    load_s: float | None
    first_inference_ms: float | None

    @classmethod
    def of(cls, result: "Result") -> "Timing":
        figures, window = result.figures, _dict(result.timed_window)
        times = figures.get("times_ms")
        times = tuple(times) if isinstance(times, list) and all(finite(t) is not None for t in times) else None
        timer = _dict(result.method).get("timer")
        warmup, stop = figures.get("warmup_iterations"), figures.get("stop_reason")
        return cls(result.iterations if type(result.iterations) is int else None,
                   warmup if type(warmup) is int else None, timer if isinstance(timer, str) else None,
                   stop if isinstance(stop, str) else None, _pair([window.get("start_s"), window.get("end_s")]),
                   result.span, times, _pair(figures.get("ci95_ms")), finite(figures.get("load_s")),
                   finite(figures.get("first_inference_ms")))


@dataclass(frozen=True)
class Memory:
    """Memory, in bytes, as the runner saw its own process (harness.memory_report: the framework allocator's
    peak and reserved bytes, the process's peak RSS, nvidia-smi's figure for the process and for the whole
    device), the board's view over the timed window from telemetry (MB, as tegrastats and nvidia-smi give it),
    and the memory at each stage of the cold start (harness.stage_memory: "loaded", "first_inference")."""
    allocator_peak_bytes: float | None
    allocator_reserved_bytes: float | None
    process_rss_peak_bytes: float | None
    nvml_process_bytes: float | None
    nvml_device_used_bytes: float | None
    board_ram_peak_mb: float | None
    gpu_mem_peak_mb: float | None
    stages: Mapping[str, Mapping[str, float | None]]

    @classmethod
    def of(cls, result: "Result") -> "Memory":
        report, telemetry = _dict(result.figures.get("memory")), _dict(result.telemetry)
        stages = {name: {k: finite(v) for k, v in stage.items()}
                  for name, stage in _dict(result.figures.get("memory_stages")).items() if isinstance(stage, dict)}
        return cls(*(finite(report.get(k)) for k in ("allocator_peak_bytes", "allocator_reserved_bytes",
                                                     "process_rss_peak_bytes", "nvml_process_bytes",
                                                     "nvml_device_used_bytes")),
                   finite(telemetry.get("ram_peak_mb")), finite(telemetry.get("gpu_mem_peak_mb")), stages)


@dataclass(frozen=True)
class Power:
    """The board's power over the timed window (edgeprof.telemetry.summary): the mean of the board-total rail
    over the samples in the window, W, and what that total is (`definition`: a Jetson's input rail, or
    nvidia-smi's board power); energy per inference, J, and its inverse. All None without power telemetry."""
    mean_w: float | None
    definition: str | None
    energy_per_inference_j: float | None
    inferences_per_j: float | None

    @classmethod
    def of(cls, result: "Result") -> "Power":
        telemetry = _dict(result.telemetry)
        total, energy = _dict(telemetry.get("power_total")), _dict(telemetry.get("energy"))
        definition = total.get("definition")
        return cls(finite(total.get("mean_w")), definition if isinstance(definition, str) else None,
                   finite(energy.get("per_inference_j")), finite(energy.get("inferences_per_j")))


@dataclass(frozen=True)
class Flag:
    """A validity flag, stored as {"code", "detail"}: why a figure may not compare with unflagged ones."""
    code: str
    detail: str = ""

    @classmethod
    def of(cls, stored) -> "Flag":
        """A stored flag; a bare string (older results) is its own code, anything else (a Result built by
        other code than edgeprof's loader, edgeprof.storage.documents) is shown whole as the detail of "?"."""
        if isinstance(stored, dict) and isinstance(stored.get("code"), str):
            detail = stored.get("detail")
            return cls(stored["code"], detail if isinstance(detail, str) else "" if detail is None else repr(detail))
        return cls(stored, "") if isinstance(stored, str) else cls("?", repr(stored))

    def to_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail}


@dataclass
class Result:
    device: str
    model: str
    backend: str
    batch: int
    run_id: str
    status: str = "ok"                       # "ok" or "failed"
    error: str | None = None
    span: str | None = None                  # what latency_ms covers, e.g. "caffe_forward", "compute", "host"
    latency_ms: dict = field(default_factory=empty_latency)
    # Per percentile of latency_ms: its distribution-free 95 % interval [lo, hi] (edgeprof.validity), and for a
    # percentile the iterations cannot bound (set to None in latency_ms) {"reason", "iterations_needed"}.
    latency_ci95_ms: dict = field(default_factory=dict)
    latency_unbounded: dict = field(default_factory=dict)
    throughput_ips: float | None = None      # images per second
    iterations: int | None = None
    # The runner's figures (RUNNER_FIGURES, read through the parts) and the backend's own; see the docstring.
    figures: dict = field(default_factory=dict)
    method: dict = field(default_factory=dict)      # timer, warm-up, statistic, iterations policy
    state: dict = field(default_factory=dict)       # clocks / power mode / versions during the run
    device_facts: dict = field(default_factory=dict)
    model_info: dict = field(default_factory=dict)  # path, sha256, input shape as run
    settings: dict = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    wall_s: float | None = None
    # The timed window on the board's clock (epoch seconds), as the backend reports it; telemetry is
    # summarized over exactly this window. None when the backend cannot tell.
    timed_window: dict | None = None
    # What the board's sampler saw during the timed window (edgeprof.telemetry): the summary and the raw
    # samples; None when no sampler ran. Flags: [{"code", "detail"}], why a figure may not be comparable.
    telemetry: dict | None = None
    flags: list = field(default_factory=list)
    # For items of a plan (edgeprof.lab): {"hash", "name", "item"}, how a rerun knows what is done.
    plan: dict | None = None
    # --repeat N: a run carries {"group", "index", "of"}; the summary of the N runs (edgeprof.validity
    # summarize_repeats) carries {"summary": true, "runs", "ok", "result_ids", "statistic", "run_figures_ms",
    # "between_runs_rel"} and the group.
    repeat: dict | None = None
    # --jobs / --gpus (edgeprof.concurrency): a job carries {"group", "index", "of", "gpu"}; the aggregate of the
    # jobs measured together {"aggregate": true, "group", "jobs", "gpus", "result_ids"}.
    jobs: dict | None = None
    # --duration (edgeprof.telemetry.timeline): {"window_s", "windows": [per-window figures], "first",
    # "steady" (None when the run never settled), "drift_rel", "rule"}; None for runs without windows.
    timeline: dict | None = None
    # Kept for `results show`, not for tables:
    commands: list = field(default_factory=list)
    raw_log: str = ""
    prototxt_diff: str = ""
    id: int | None = None

    def fail(self, error: str) -> "Result":
        self.status = "failed"
        self.error = error
        return self

    # What every backend reports, as typed parts read from the fields above on each access (the docstring).
    latency = property(Latency.of)
    timing = property(Timing.of)
    memory = property(Memory.of)
    power = property(Power.of)

    @property
    def flag_list(self) -> list[Flag]:
        return [Flag.of(stored) for stored in self.flags or []]

    @property
    def own_figures(self) -> dict:
        """The backend's own figures: those its runner reports besides RUNNER_FIGURES (variant, provider...)."""
        return {key: value for key, value in self.figures.items() if key not in RUNNER_FIGURES}

    def to_dict(self, full: bool = False) -> dict:
        doc = {
            "id": self.id, "run_id": self.run_id, "device": self.device, "model": self.model,
            "backend": self.backend, "batch": self.batch, "status": self.status, "error": self.error,
            "span": self.span, "latency_ms": dict(self.latency_ms), "latency_ci95_ms": self.latency_ci95_ms,
            "latency_unbounded": self.latency_unbounded, "throughput_ips": self.throughput_ips,
            "iterations": self.iterations, self.backend: dict(self.figures), "method": self.method,
            "state": self.state, "device_facts": self.device_facts, "model_info": self.model_info,
            "settings": self.settings, "started_at": self.started_at, "finished_at": self.finished_at,
            "wall_s": self.wall_s, "timed_window": self.timed_window, "flags": self.flags,
            "telemetry": self.telemetry, "plan": self.plan, "repeat": self.repeat,
            "jobs": self.jobs, "timeline": self.timeline, "figures": self.own_figures,
        }
        if full:
            doc.update(commands=self.commands, raw_log=self.raw_log, prototxt_diff=self.prototxt_diff)
        return doc

    @classmethod
    def from_dict(cls, doc: dict) -> "Result":
        """The Result of a to_dict document; the backend-named key holds every figure ("figures" only the
        backend's own, and older documents lack it)."""
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__ and k != "figures"}
        return cls(**known, figures=doc.get(doc["backend"], doc.get("figures", {})))
