"""edgeprof.validity: distribution-free percentile intervals (their coverage checked by simulation against a
known distribution), percentiles a sample cannot bound, and the not_converged / high_spread flags."""
import math
import random

import pytest

from edgeprof.result import Result
from edgeprof.validity import assess, iterations_needed, percentile_interval


@pytest.mark.parametrize("q, n", [(0.5, 20), (0.9, 60), (0.99, 400)])
def test_intervals_cover_the_true_quantile_at_least_95_percent_of_the_time(q, n):
    true = -math.log(1 - q)          # the q-quantile of an exponential(1)
    rng = random.Random(7)
    trials, covered = 2000, 0
    for _ in range(trials):
        lo, hi = percentile_interval(sorted(rng.expovariate(1.0) for _ in range(n)), q)
        covered += lo <= true <= hi
    # Order-statistic intervals are conservative: coverage >= 95 %; 2000 trials put the estimate within
    # about 1 point of the truth.
    assert covered / trials >= 0.94


def test_a_sample_too_small_for_a_tail_percentile_bounds_none():
    assert [iterations_needed(q) for q in (0.5, 0.9, 0.95, 0.99)] == [6, 36, 72, 368]
    assert percentile_interval(sorted(range(367)), 0.99) is None
    assert percentile_interval(sorted(range(368)), 0.99) is not None
    assert percentile_interval([1.0] * 5, 0.5) is None and percentile_interval([1.0] * 6, 0.5) == (1.0, 1.0)


def result_with(times, **figures):
    ordered = sorted(times)
    n = len(ordered)
    latency = {"median": ordered[n // 2], "p90": ordered[int(n * 0.9)], "p99": ordered[-1], "mean": sum(times) / n,
               "min": ordered[0], "max": ordered[-1], "iqr": ordered[(3 * n) // 4] - ordered[n // 4]}
    return Result(device="d", model="m", backend="pytorch", batch=1, run_id="r", latency_ms=latency,
                  settings={"target_ci": 0.01, "max_time_s": 30.0},
                  figures={"times_ms": list(times), "stop_reason": "converged", "ci_rel": 0.004, **figures})


def test_a_p99_from_30_iterations_is_null_with_its_reason():
    result = result_with([10 + 0.01 * i for i in range(30)])
    assess(result)
    assert result.latency_ms["p99"] is None and result.latency_ms["p90"] is None
    assert result.latency_unbounded["p99"] == {
        "reason": "30 iterations cannot bound the p99 (95 % distribution-free interval)", "iterations_needed": 368}
    lo, hi = result.latency_ci95_ms["median"]
    assert lo <= result.latency_ms["median"] <= hi and result.flags == []


def test_a_run_that_hit_its_time_cap_is_not_converged():
    result = result_with([56.0 + (i % 7) for i in range(40)], stop_reason="time_cap", ci_rel=0.23)
    assess(result)
    [flag] = [f for f in result.flags if f["code"] == "not_converged"]
    assert flag["detail"] == ("the stop rule hit its 30.0 s cap after 40 iterations with the median's 95 % "
                              "interval at +-23.0% (target 1.0%)")
    assert flag["figures"] == {"ci_rel": 0.23, "target_ci": 0.01, "iterations": 40}


def test_spread_over_a_quarter_of_the_median_is_flagged_and_under_it_is_not():
    quiet = result_with([100 + (i % 10) * 2 for i in range(50)])     # IQR about 10 % of the median
    noisy = result_with([100 + (i % 10) * 12 for i in range(50)])    # about 40 %
    assess(quiet)
    assess(noisy)
    assert quiet.flags == []
    [flag] = noisy.flags
    assert flag["code"] == "high_spread" and flag["figures"]["iqr_rel"] > 0.25 and "of the median" in flag["detail"]


def test_a_failed_result_or_one_without_iteration_times_is_left_alone():
    caffe = Result(device="d", model="m", backend="caffe", batch=1, run_id="r")
    caffe.latency_ms["mean"] = 5.0
    assess(caffe)
    assert caffe.latency_ci95_ms == {} and caffe.flags == [] and caffe.latency_ms["mean"] == 5.0


def run_result(median, interval, index, flags=()):
    result = Result(device="d", model="m", backend="pytorch", batch=1, run_id="r", span="compute",
                    figures={"variant": "fp16"}, flags=list(flags), iterations=100, throughput_ips=1000 / median)
    result.id = index
    result.latency_ms.update(median=median, min=median * 0.9, max=median * 1.3)
    result.latency_ci95_ms = {"median": list(interval)}
    return result


def test_three_repeats_summarize_with_an_interval_at_least_as_wide_as_the_widest_run():
    from edgeprof.validity import summarize_repeats
    runs = [run_result(10.0, (9.9, 10.1), 1), run_result(11.0, (10.5, 11.6), 2),
            run_result(10.4, (10.35, 10.45), 3, [{"code": "high_spread", "detail": "IQR 32%"}])]
    summary = summarize_repeats(runs)
    low, high = summary.latency_ci95_ms["median"]
    assert summary.latency_ms["median"] == 10.4 and (low, high) == (9.9, 11.6)
    assert high - low >= max(hi - lo for r in runs for lo, hi in [r.latency_ci95_ms["median"]])
    assert summary.repeat == {"summary": True, "runs": 3, "ok": 3, "result_ids": [1, 2, 3], "statistic": "median",
                              "run_figures_ms": [10.0, 10.4, 11.0], "between_runs_rel": pytest.approx(1.0 / 10.4)}
    assert summary.flags == [{"code": "high_spread", "detail": "run 3: IQR 32%"}]
    assert summary.iterations == 300 and summary.figures == {"variant": "fp16"} and summary.status == "ok"


def test_repeats_of_a_mean_only_backend_summarize_their_means_and_one_good_run_is_not_enough():
    from edgeprof.validity import summarize_repeats
    caffe = []
    for i, mean in enumerate((20.0, 22.0, 21.0)):
        r = Result(device="d", model="m", backend="caffe", batch=1, run_id="r")
        r.latency_ms["mean"] = mean
        caffe.append(r)
    summary = summarize_repeats(caffe)
    assert summary.latency_ms["mean"] == 21.0 and summary.latency_ci95_ms == {"mean": [20.0, 22.0]}
    failed = summarize_repeats([caffe[0], Result(device="d", model="m", backend="caffe", batch=1, run_id="r")
                                .fail("killed")])
    assert failed.status == "failed" and "1 run(s) gave a figure" in failed.error


def test_tables_name_runs_and_summaries():
    from edgeprof.reporting.table import backend_label
    run = run_result(10.0, (9.9, 10.1), 1)
    run.repeat = {"group": "g", "index": 2, "of": 3}
    assert backend_label(run) == "pytorch (fp16, run 2 of 3)"
    run.repeat = {"group": "g", "summary": True, "runs": 3}
    assert backend_label(run) == "pytorch (fp16, summary of 3 runs)"
