"""One measurement: what was measured, how, under what state, and what came out.

`Result.to_dict()` is the public JSON shape (`measure --json`, `results show --json`, exports). Keys are
only ever added, never renamed. Every figure says its span (compute, host, caffe_forward, ...) and the
method that produced it; a figure a tool does not provide is None, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LATENCY_KEYS = ("median", "mean", "p90", "p99", "min", "max")


def empty_latency() -> dict:
    return {k: None for k in LATENCY_KEYS}


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
    figures: dict = field(default_factory=dict)     # the backend's own figures, under its name in to_dict
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
            "jobs": self.jobs, "timeline": self.timeline,
        }
        if full:
            doc.update(commands=self.commands, raw_log=self.raw_log, prototxt_diff=self.prototxt_diff)
        return doc

    @classmethod
    def from_dict(cls, doc: dict) -> "Result":
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__ and k != "figures"}
        return cls(**known, figures=doc.get(doc["backend"], {}))
