"""When a timing should not be believed, from the result's own figures: what its percentiles can claim, and flags.

Percentiles. A sample of n iteration times bounds the q-quantile of the time distribution between two of its
order statistics, whatever the distribution: with B ~ binomial(n, q) the number of times below the
quantile, [x(j), x(k)] (1-based ranks) covers it with probability P(j <= B <= k - 1). The ranks are the
widest-inside ones whose two tails are each at most (1 - confidence) / 2 (W. J. Conover, Practical
Nonparametric Statistics, 3rd ed., 1999, section 3.2, "confidence interval for a quantile"). When no
such rank exists on a side (n < ln(0.025) / ln(q): under 368 iterations for p99, 72 for p95, 36 for p90, 6
for the median), the sample cannot bound that percentile: its value is set to null, with the reason and the
iteration count it would need, instead of a figure interpolated between the largest samples. MLPerf
Inference's early-stopping rule bounds its tail percentiles by sample size for the same reason.

Flags (each with its figures in the detail):
- deadline_missed: under --arrival, a query was not done before the next one arrived (a camera frame still
  in work when the next came).
- interrupted: a --duration run stopped by Ctrl-C before its end; the result holds only the windows that
  had ended (their count, and the seconds done of those asked, in its figures), so its steady state and
  drift describe a shorter run than the one asked for.
- not_converged: the adaptive stop rule ran into its time cap before the median's 95 % interval came within
  its target (stop_reason "time_cap"), so the median is less certain than the run was asked for.
- high_spread: IQR / median above 25 %, torch.utils.benchmark's gross-spread level (_IQR_GROSS_WARN_THRESHOLD;
  it also notes 10 % as "may be unreliable"). On this project's 2-core VM, CPU runs with nothing else
  running showed IQR/median 3-27 % (the upper end in runs where the VM itself slowed down: others' CPU 0.02,
  the stop rule at its cap) while a CPU burner per core gave 40-250 % (benchmarks/quiet_vs_disturbed.py,
  benchmarks/results/quiet-vs-disturbed-2026-12-07.json): at 10 % most quiet runs of a shared VM would be
  flagged and the flag would stop telling them apart. trtexec's CoV warnings at 1-2.5 % are for a GPU alone.
"""
from __future__ import annotations

import math

from .result import Result

CONFIDENCE = 0.95
HIGH_SPREAD_IQR_REL = 0.25
# latency_ms keys that are percentiles, and their q.
PERCENTILES = {"median": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def _binomial_cdf(n: int, q: float) -> list[float]:
    """P(B <= k) for k = 0..n, B ~ binomial(n, q), through log-gamma (no overflow at large n)."""
    cdf, total = [], 0.0
    log_q, log_p = math.log(q), math.log1p(-q)
    for k in range(n + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q
                          + (n - k) * log_p)
        cdf.append(min(total, 1.0))
    return cdf


def percentile_interval(ordered: list[float], q: float, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The distribution-free interval of the q-quantile from a sorted sample, or None when n cannot bound it."""
    n, tail = len(ordered), (1 - confidence) / 2
    if n == 0:
        return None
    cdf = _binomial_cdf(n, q)
    # lower rank j (1-based): the largest with P(B <= j - 1) <= tail; upper rank k: the smallest with
    # P(B >= k) = 1 - P(B <= k - 1) <= tail.
    lower = max((j for j in range(1, n + 1) if cdf[j - 1] <= tail), default=None)
    upper = min((k for k in range(1, n + 1) if 1 - cdf[k - 1] <= tail), default=None)
    if lower is None or upper is None:
        return None
    return ordered[lower - 1], ordered[upper - 1]


def iterations_needed(q: float, confidence: float = CONFIDENCE) -> int:
    """The smallest n whose sample can bound the q-quantile on both sides: max(q, 1 - q)^n <= tail."""
    return math.ceil(math.log((1 - confidence) / 2) / math.log(max(q, 1 - q)))


def assess(result: Result) -> None:
    """Add the percentile intervals, null the percentiles the sample cannot bound, and flag the timing."""
    times = (result.figures or {}).get("times_ms")
    if result.status != "ok" or not times:
        return
    ordered = sorted(times)
    result.flags = result.flags + timing_flags(result, len(ordered))
    for name, q in PERCENTILES.items():
        if result.latency_ms.get(name) is None:
            continue
        interval = percentile_interval(ordered, q)
        if interval is None:
            needed = iterations_needed(q)
            result.latency_ms[name] = None
            result.latency_unbounded[name] = {
                "reason": f"{len(ordered)} iterations cannot bound the {name} (95 % distribution-free interval)",
                "iterations_needed": needed}
        else:
            result.latency_ci95_ms[name] = list(interval)


def timing_flags(result: Result, iterations: int) -> list[dict]:
    """not_converged and high_spread, from the runner's stop reason and its latency_ms median and IQR."""
    flags = []
    figures = result.figures or {}
    if figures.get("stop_reason") == "time_cap":
        target = result.settings.get("target_ci")
        reached = figures.get("ci_rel")
        flags.append({"code": "not_converged", "detail": (
            f"the stop rule hit its {result.settings.get('max_time_s', '?')} s cap after {iterations} iterations "
            f"with the median's 95 % interval at +-{_percent(reached)} (target {_percent(target)})"),
            "figures": {"ci_rel": reached, "target_ci": target, "iterations": iterations}})
    median, iqr = result.latency_ms.get("median"), result.latency_ms.get("iqr")
    if median and iqr is not None and iqr / median > HIGH_SPREAD_IQR_REL:
        flags.append({"code": "high_spread", "detail": (
            f"IQR {iqr:.4g} ms is {iqr / median:.0%} of the median {median:.4g} ms (over "
            f"{HIGH_SPREAD_IQR_REL:.0%}: iterations disagree, e.g. other load on the board)"),
            "figures": {"iqr_ms": iqr, "median_ms": median, "iqr_rel": iqr / median}})
    arrival = figures.get("arrival")
    if isinstance(arrival, dict) and arrival.get("missed_deadlines"):
        missed, queries = arrival["missed_deadlines"], arrival["queries"]
        flags.append({"code": "deadline_missed", "detail": (
            f"{missed} of {queries} queries ({missed / queries:.0%}) were not done before the next one arrived "
            f"({arrival['scenario']} at {arrival['rate_hz']:g} Hz): the board does not keep up with that rate, "
            f"and the queries after a miss waited in a queue (their times include it)"),
            "figures": {"missed_deadlines": missed, "queries": queries, "rate_hz": arrival["rate_hz"]}})
    return flags


def interrupted_flag(windows: list[dict], asked_s: float | None) -> dict:
    """interrupted, for a result built from the windows a stopped --duration run had finished."""
    done_s = windows[-1]["end_s"] - windows[0]["start_s"] if windows else 0.0
    asked = f" of the {asked_s:g} s asked" if asked_s else ""
    return {"code": "interrupted", "detail": (
        f"stopped (Ctrl-C) after {len(windows)} finished window(s), {done_s:.1f} s{asked}: the figures are "
        f"those windows' only"),
        "figures": {"windows": len(windows), "seconds_done": round(done_s, 3), "seconds_asked": asked_s}}


def _percent(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "unknown"


def summarize_repeats(runs: list[Result]) -> Result:
    """One result for N runs of the same item in fresh processes (`--repeat N`): the median of the runs'
    headline figures (their medians; for Caffe, which times only a mean, their means), and an interval for
    it that includes the run-to-run variation one process cannot show: the hull of the runs' own intervals
    (a run without one contributes its figure), so at least as wide as the widest of them and spanning the
    runs' spread; from 6 runs on, widened where the order-statistic interval of the run figures is wider.
    Tail percentiles stay per run (in the runs' own results), not pooled."""
    first = runs[0]
    summary = Result(device=first.device, model=first.model, backend=first.backend, batch=first.batch,
                     run_id=first.run_id, span=first.span, method=dict(first.method), state=dict(first.state),
                     device_facts=first.device_facts, model_info=first.model_info, settings=dict(first.settings),
                     started_at=first.started_at, plan=first.plan)
    if first.figures.get("variant"):
        summary.figures = {"variant": first.figures["variant"]}
    ok = [r for r in runs if r.status == "ok"]
    stat = "median" if ok and all(r.latency_ms.get("median") is not None for r in ok) else "mean"
    ok = [r for r in ok if r.latency_ms.get(stat) is not None]
    if len(ok) < 2:
        return summary.fail(f"--repeat {len(runs)}: {len(ok)} run(s) gave a figure; a summary needs two")
    figures = sorted(r.latency_ms[stat] for r in ok)
    half = len(figures) // 2
    centre = figures[half] if len(figures) % 2 else (figures[half - 1] + figures[half]) / 2
    intervals = [r.latency_ci95_ms.get(stat) or [r.latency_ms[stat]] * 2 for r in ok]
    low, high = min(i[0] for i in intervals), max(i[1] for i in intervals)
    of_runs = percentile_interval(figures, 0.5)
    if of_runs:
        low, high = min(low, of_runs[0]), max(high, of_runs[1])
    summary.latency_ms[stat] = centre
    summary.latency_ci95_ms = {stat: [low, high]}
    summary.iterations = sum(r.iterations or 0 for r in ok)
    throughputs = sorted(r.throughput_ips for r in ok if r.throughput_ips)
    summary.throughput_ips = throughputs[len(throughputs) // 2] if throughputs else None
    summary.repeat = {"summary": True, "runs": len(runs), "ok": len(ok), "result_ids": [r.id for r in runs],
                      "statistic": stat, "run_figures_ms": figures,
                      "between_runs_rel": (figures[-1] - figures[0]) / centre if centre else None}
    summary.method = {**summary.method, "statistic": (
        f"median of {len(ok)} runs' {stat}s, each run a fresh process; 95 % interval: the hull of the runs' "
        f"intervals" + (" and of the order-statistic interval of the run figures" if of_runs else ""))}
    # A run's flag is the summary's too: the summary is made of that run.
    summary.flags = [dict(f, detail=f"run {i + 1}: {f.get('detail', '')}") for i, r in enumerate(runs)
                     for f in r.flags]
    return summary


__all__ = ["CONFIDENCE", "HIGH_SPREAD_IQR_REL", "assess", "iterations_needed", "percentile_interval",
           "summarize_repeats", "timing_flags"]
