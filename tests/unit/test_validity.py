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


def test_spread_over_ten_percent_of_the_median_is_flagged_and_under_it_is_not():
    quiet = result_with([100 + (i % 10) for i in range(50)])
    noisy = result_with([100 + (i % 10) * 5 for i in range(50)])
    assess(quiet)
    assess(noisy)
    assert quiet.flags == []
    [flag] = noisy.flags
    assert flag["code"] == "high_spread" and flag["figures"]["iqr_rel"] > 0.10 and "of the median" in flag["detail"]


def test_a_failed_result_or_one_without_iteration_times_is_left_alone():
    caffe = Result(device="d", model="m", backend="caffe", batch=1, run_id="r")
    caffe.latency_ms["mean"] = 5.0
    assess(caffe)
    assert caffe.latency_ci95_ms == {} and caffe.flags == [] and caffe.latency_ms["mean"] == 5.0
