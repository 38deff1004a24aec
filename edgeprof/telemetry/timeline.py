"""A long run (`--duration S`) as a timeline of windows, and its steady state.

The board runner closes a window every `--window S` seconds (edgeprof/onboard/timing.py, run_for) and says
how many timed iterations ended in each; the iterations are `times_ms` in order, so window k holds the next
`iterations` of them. Each window gets its own figures: the median, the p99 where its iterations can bound
it (edgeprof.validity), throughput, and from the telemetry samples inside it the lowest GPU, EMC and CPU
clocks, the hottest sensor and the mean board power, plus the telemetry flags it raises on its own.

Steady state, as Triton's perf_analyzer judges a measurement stable: three consecutive windows whose
medians and throughputs each lie within 10 % of their own average (perf_analyzer's --stability-percentage
default, over its three measurement windows,
https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/perf_analyzer/docs/cli.html).
edgeprof takes the run's end: the last three windows must agree, and the steady state extends back over
every window for which the triple starting there still agrees. Its figures pool those windows' iterations.
No agreeing triple at the end: `not_steady`. A thermal or clock flag that the whole window raised is
dated by the first window that raises it on its own ("from minute M").

A board that throttled is another board: the steady state also stops, going back, at the first window whose
throttling flags (THROTTLE_FLAGS) differ from the last window's, even where the medians agree (the GPU
clock a throttled Jetson drops to may not change a CPU- or memory-bound net's latency, yet what was measured
before it is not the state the run ended in). So a run that began throttling at window K has its steady
state from window K on, or none where fewer than three windows follow.
"""
from __future__ import annotations

from ..onboard.timing import percentile
from ..validity import iterations_needed
from .summary import Reading, clock_flags, readings, stats_of, throttle_flags

# perf_analyzer's default stability percentage and window count (see the module docstring).
STABLE_WITHIN = 0.10
STABLE_WINDOWS = 3
# The window flags a long run dates: what changes while it runs.
DATED_FLAGS = ("thermal_throttle", "power_throttle", "hw_slowdown", "clocks_moved", "clocks_below_pinned")
# The window flags that say the board slowed itself (clocks_moved alone is a governor at work on an unpinned
# board, every window).
THROTTLE_FLAGS = ("thermal_throttle", "power_throttle", "hw_slowdown", "clocks_below_pinned")


def _median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


def _p99(values: list[float]) -> float | None:
    """The p99 of one window, or None when its iterations cannot bound it (validity.iterations_needed)."""
    return percentile(sorted(values), 99) if len(values) >= iterations_needed(0.99) else None


def _lowest(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def window_rows(times_ms: list[float], marks: list[dict], samples: list[Reading], *, batch: int, state: dict,
                trip_points: dict) -> list[dict]:
    rows, first = [], 0
    for index, mark in enumerate(marks):
        times = times_ms[first:first + mark["iterations"]]
        first += mark["iterations"]
        inside = [s for s in samples if mark["start_s"] <= s.t <= mark["end_s"]]
        span_s = mark["end_s"] - mark["start_s"]
        power = [s.power_total_w for s in inside if s.power_total_w is not None]
        temps = [v for s in inside for v in s.temps_c.values()]
        stats = stats_of(inside)
        flags = clock_flags(stats, state) + throttle_flags(stats, inside, trip_points)
        rows.append({
            "index": index, "start_s": mark["start_s"], "end_s": mark["end_s"], "iterations": len(times),
            "median_ms": _median(times) if times else None, "p99_ms": _p99(times),
            "throughput_ips": batch * len(times) / span_s if times and span_s > 0 else None,
            "gpu_freq_mhz_min": _lowest([s.gpu_freq_mhz for s in inside]),
            "emc_freq_mhz_min": _lowest([s.emc_freq_mhz for s in inside]),
            "cpu_freq_mhz_min": _lowest([v for s in inside for v in s.cpu_freq_mhz or []]),
            "temp_max_c": max(temps) if temps else None,
            "power_mean_w": sum(power) / len(power) if power else None,
            "samples": len(inside), "flags": [f["code"] for f in flags]})
    return rows


def _agree(rows: list[dict]) -> bool:
    """The windows' medians and throughputs each within STABLE_WITHIN of their average."""
    for key in ("median_ms", "throughput_ips"):
        values = [r[key] for r in rows]
        if any(v is None for v in values):
            return False
        mean = sum(values) / len(values)
        if mean <= 0 or max(abs(v - mean) for v in values) > STABLE_WITHIN * mean:
            return False
    return True


def _throttling(row: dict) -> set[str]:
    return {code for code in row["flags"] if code in THROTTLE_FLAGS}


def steady_from(rows: list[dict]) -> int | None:
    """The first window of the steady state at the run's end, or None when the last windows disagree or
    differ in throttling (see the module docstring)."""
    start, end_state = None, _throttling(rows[-1]) if rows else set()
    for index in range(len(rows) - STABLE_WINDOWS, -1, -1):
        triple = rows[index:index + STABLE_WINDOWS]
        if not _agree(triple) or any(_throttling(r) != end_state for r in triple):
            break
        start = index
    return start


def _pooled(times_ms: list[float], rows: list[dict], first_iteration: int, batch: int) -> dict:
    times = times_ms[first_iteration:first_iteration + sum(r["iterations"] for r in rows)]
    span_s = rows[-1]["end_s"] - rows[0]["start_s"]
    return {"windows": [rows[0]["index"], rows[-1]["index"]], "iterations": len(times),
            "median_ms": _median(times), "p99_ms": _p99(times),
            "throughput_ips": batch * len(times) / span_s if span_s > 0 else None}


def analyse(result, records: list[dict], power_total: str | None) -> list[dict]:
    """Set `result.timeline` from the runner's windows (result.figures["windows"]) and the sampler's
    records; returns the flags to add (not_steady), after dating the result's own window flags."""
    marks = (result.figures or {}).get("windows")
    times = (result.figures or {}).get("times_ms") or []
    if not marks or result.status != "ok":
        return []
    start = next((r for r in records if r.get("kind") == "start"), {})
    rows = window_rows(times, marks, readings(records, power_total), batch=result.batch, state=result.state,
                       trip_points=start.get("trip_points_c") or {})
    window_s = result.settings.get("window_s")
    begin = rows[0]["start_s"]
    for flag in result.flags:
        dated = next((r for r in rows if flag.get("code") in DATED_FLAGS and flag["code"] in r["flags"]), None)
        if dated is not None:
            minute = int((dated["start_s"] - begin) // 60) + 1
            flag["began"] = {"window": dated["index"], "minute": minute}
            flag["detail"] += f" (from minute {minute}, window {dated['index'] + 1} of {len(rows)})"
    steady = steady_from(rows)
    first_median = rows[0]["median_ms"]
    result.timeline = {
        "window_s": window_s, "windows": rows,
        "first": _pooled(times, rows[:1], 0, result.batch),
        "steady": None if steady is None else _pooled(times, rows[steady:], sum(r["iterations"] for r in rows[:steady]),
                                                      result.batch),
        "drift_rel": (rows[-1]["median_ms"] - first_median) / first_median if first_median else None,
        "rule": f"the last {STABLE_WINDOWS} windows' medians and throughputs within {STABLE_WITHIN:.0%} of their "
                f"average, extended back while that holds (perf_analyzer's stability rule)",
    }
    if steady is not None:
        return []
    medians = ", ".join(f"{r['median_ms']:.4g}" if r["median_ms"] is not None else "-" for r in rows[-STABLE_WINDOWS:])
    changed = [r["index"] for r in rows[-STABLE_WINDOWS:] if _throttling(r) != _throttling(rows[-1])]
    if len(rows) < STABLE_WINDOWS:
        why = f"only {len(rows)} windows, {STABLE_WINDOWS} needed"
    elif changed:
        why = (f"the board's throttling changed in the last {STABLE_WINDOWS} windows (window {changed[-1] + 1} "
               f"differs from the last one's {', '.join(sorted(_throttling(rows[-1]))) or 'no throttling'})")
    else:
        why = (f"the last {STABLE_WINDOWS} windows' medians {medians} ms (or throughputs) differ by more than "
               f"{STABLE_WITHIN:.0%} from their average")
    return [{"code": "not_steady", "detail": f"no steady state at the end of the run: {why}; run longer "
                                             f"(--duration) or find what drifts in the timeline"}]
