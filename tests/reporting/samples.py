"""Results as edgeprof stores them, built directly: Caffe results carry only a mean; PyTorch results carry
per-iteration times (`figures["times_ms"]`) drawn from a seeded log-normal around a chosen median; telemetry
is the real summary (edgeprof.telemetry.summary) of real TX2 tegrastats lines (tests/parsers/logs)."""
from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

from edgeprof.result import Result
from edgeprof.telemetry.summary import summarize

LOGS = Path(__file__).resolve().parent.parent / "parsers" / "logs"
TEGRASTATS = LOGS / "tegrastats" / "tx2_r28_2_gustavz_issue24.txt"
T0 = 1_800_000_000.0


def _percentile(ordered, p):
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def lognormal_times(median_ms: float, n: int, seed: int, sigma: float = 0.05) -> list[float]:
    """n per-iteration times whose population median is exactly median_ms (log-normal: median = e^mu)."""
    rng = random.Random(seed)
    return [median_ms * rng.lognormvariate(0.0, sigma) for _ in range(n)]


def telemetry_for(result: Result, window_s: float, moving_clocks: bool = False) -> None:
    """Attach what the board sampler would have: tegrastats every 100 ms from 0.3 s before to 0.3 s after the
    timed window, the window's summary and its flags. The fixture's first line over and over is a steady
    board; its three lines in turn have the EMC and CPU clocks moving (flag clocks_moved)."""
    lines = [line for line in TEGRASTATS.read_text().splitlines() if line.strip()]
    lines = lines if moving_clocks else lines[:1]
    result.timed_window = {"start_s": T0, "end_s": T0 + window_s}
    steps = round((window_s + 0.6) / 0.1)
    records = [{"kind": "start", "t": T0 - 0.35, "pid": 1, "child_pid": 2, "interval_ms": 100, "utc_offset_s": 0,
                "trip_points_c": {}}]
    records += [{"kind": "tegrastats", "t": T0 - 0.3 + i * 0.1, "line": lines[i % len(lines)]} for i in range(steps)]
    inferences = result.batch * result.iterations if result.iterations else None
    summary, flags = summarize(records, result.timed_window, inferences=inferences, power_total="VDD_IN",
                               state=result.state, interval_ms=100, errors=[])
    result.telemetry = {"source": "tegrastats", "interval_ms": 100, **summary, "errors": [], "samples": records}
    result.flags = flags


def caffe_result(model: str, mean_ms: float, *, device: str = "sim-tx2", batch: int = 1, run_id: str = "r1",
                 result_id: int | None = None, telemetry: bool = False, moving_clocks: bool = False) -> Result:
    result = Result(device=device, model=model, backend="caffe", batch=batch, run_id=run_id, span="caffe_forward",
                    iterations=50, throughput_ips=batch * 1000.0 / mean_ms, id=result_id,
                    figures={"forward_ms": mean_ms, "backward_ms": 2.1 * mean_ms, "layers": []},
                    method={"timer": "caffe time -phase TEST", "statistic": "mean of forward passes"})
    result.latency_ms["mean"] = mean_ms
    if telemetry:
        # caffe time's window holds forward and backward passes.
        telemetry_for(result, result.iterations * 3.1 * mean_ms / 1000.0, moving_clocks)
    return result


def pytorch_result(model: str, median_ms: float, *, device: str = "sim-tx2", batch: int = 1, run_id: str = "r1",
                   variant: str = "fp32", n: int = 200, seed: int = 0, result_id: int | None = None,
                   span: str = "compute", sigma: float = 0.05, telemetry: bool = False,
                   moving_clocks: bool = False, with_times: bool = True) -> Result:
    times = lognormal_times(median_ms, n, seed, sigma)
    ordered = sorted(times)
    result = Result(device=device, model=model, backend="pytorch", batch=batch, run_id=run_id, span=span,
                    iterations=n, id=result_id, settings={"processor": "cuda:0"},
                    throughput_ips=batch * 1000.0 / statistics.mean(times))
    result.latency_ms.update(median=_percentile(ordered, 50), mean=statistics.mean(ordered),
                             p90=_percentile(ordered, 90), p99=_percentile(ordered, 99), min=ordered[0],
                             max=ordered[-1])
    result.figures = {"variant": variant, "ci95_ms": [_percentile(ordered, 45), _percentile(ordered, 55)],
                      "warmup_iterations": 10}
    if with_times:
        result.figures["times_ms"] = times
    if telemetry:
        telemetry_for(result, sum(times) / 1000.0, moving_clocks)
    return result


def lab_sweep() -> list[Result]:
    """A run as a lab would make it: two backbones x Caffe and PyTorch fp32/fp16 x batch 1 and 8 on a TX2,
    with telemetry, ids in measurement order; pytorch fp16 on googlenet at batch 8 is no faster than fp32, and
    the clocks moved under pytorch fp32 on alexnet at batch 8 (a flagged result)."""
    results = []
    medians = {("alexnet", 1): 12.9, ("alexnet", 8): 61.0, ("googlenet", 1): 21.5, ("googlenet", 8): 110.0}
    for (model, batch), caffe_ms in medians.items():
        seed = len(results)
        results.append(caffe_result(model, caffe_ms, batch=batch, telemetry=True))
        results.append(pytorch_result(model, caffe_ms * 0.8, batch=batch, seed=seed + 1, telemetry=True,
                                      moving_clocks=(model, batch) == ("alexnet", 8)))
        fp16 = caffe_ms * 0.8 if (model, batch) == ("googlenet", 8) else caffe_ms * 0.55
        results.append(pytorch_result(model, fp16, batch=batch, variant="fp16+channels_last", seed=seed + 2,
                                      telemetry=True))
    for i, result in enumerate(results, start=1):
        result.id = i
    return results
