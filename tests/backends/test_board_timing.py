"""Tests of the timing core every board runner imports (edgeprof/onboard/timing.py): the statistics,
the warm-up and stopping rules, and the figures it reports. Standard library only, like the module."""
import itertools
import time

import pytest

from edgeprof.onboard import timing as bt
from edgeprof.onboard.harness import JsonUsageParser


def timing_args(*argv):
    parser = JsonUsageParser()
    bt.add_timing_arguments(parser)
    args = parser.parse_args(list(argv))
    bt.check_timing_arguments(parser, args)
    return args


# --- statistics ----------------------------------------------------------------------------------------

def test_percentile_interpolates_like_numpy():
    assert bt.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert bt.percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)
    assert bt.percentile([5.0], 99) == 5.0


def test_median_ci_order_statistics():
    assert bt.median_ci([1, 2, 3, 4, 5]) is None  # 5 samples cannot give 95 %
    assert bt.median_ci([1, 2, 3, 4, 5, 6]) == (1, 6)  # coverage 1 - 2/64
    # n = 100: P(B <= 39) = 0.018 <= 0.025 < P(B <= 40) = 0.028, so ranks 40 and 61 (1-based).
    assert bt.median_ci(list(range(1, 101))) == (40, 61)
    # Large n stays exact (log-space binomial) and near the normal approximation n/2 -+ 0.98 sqrt(n).
    lo, hi = bt.median_ci(list(range(1, 10001)))
    assert (lo, hi) == (4902, 5099)


def test_summary_figures():
    s = bt.summarize([10.0] * 9 + [20.0])
    lat = s["latency_ms"]
    assert (lat["median"], lat["min"], lat["max"], lat["mean"]) == (10.0, 10.0, 20.0, 11.0)
    assert lat["iqr"] == 0.0 and lat["p99"] == pytest.approx(19.1)
    assert s["ci95_ms"] == [10.0, 10.0] and s["ci_rel"] == 0.0


# --- the loop ------------------------------------------------------------------------------------------

def counting_step(times):
    """A step returning the next of `times` and counting its calls."""
    source = iter(times)
    calls = []

    def step():
        calls.append(1)
        return next(source), None
    return step, calls


def test_fixed_iterations_after_the_warmup():
    step, calls = counting_step(itertools.repeat(2.0))
    times, window, reason, warmup = bt.measure(step, timing_args("--iterations", "7", "--warmup", "4",
                                                                 "--warmup-s", "0"))
    assert (times, reason, warmup, len(calls)) == ([2.0] * 7, "forced", 4, 11)
    report = bt.timing_report(times, window, reason, warmup, batch=8)
    assert report["iterations"] == 7 and report["times_ms"] == [2.0] * 7 and report["stop_reason"] == "forced"
    assert report["latency_ms"]["median"] == 2.0 and report["warmup_iterations"] == 4
    assert report["timed_window"]["start_s"] <= report["timed_window"]["end_s"]
    # Throughput comes from the window's wall time, not from the latencies.
    assert report["throughput_ips"] == pytest.approx(8 * 7 / window["wall_s"])


def test_zero_iterations_run_nothing():
    step, calls = counting_step(itertools.repeat(1.0))
    times, window, reason, warmup = bt.measure(step, timing_args("--iterations", "0"))
    assert (times, window, reason, warmup, calls) == ([], None, None, 0, [])
    report = bt.timing_report(times, window, reason, warmup, batch=1)
    assert report["latency_ms"] is None and report["timed_window"] is None and report["throughput_ips"] is None


def test_adaptive_stops_once_the_median_is_pinned():
    step, _ = counting_step(itertools.repeat(1.0))
    times, _, reason, _ = bt.measure(step, timing_args("--warmup-s", "0", "--min-time-s", "0"))
    assert reason == "converged" and len(times) == 20  # identical times: the CI is exact at the first check


def test_adaptive_gives_up_at_the_time_cap():
    # Ever longer iterations (a board heating up) never pin the median within 0.01 %.
    step, _ = counting_step(itertools.count(1.0))
    times, _, reason, _ = bt.measure(step, timing_args("--warmup-s", "0", "--min-time-s", "0",
                                                       "--max-time-s", "0.05", "--target-ci", "0.0001"))
    assert reason == "time_cap" and len(times) >= 1


def sleeping_step(ms):
    def step():
        time.sleep(ms / 1000.0)
        return ms, None
    return step


def test_a_duration_runs_in_windows_that_hold_every_iteration():
    times, window, reason, _ = bt.measure(sleeping_step(10.0), timing_args("--warmup", "1", "--warmup-s", "0",
                                                                           "--duration-s", "0.5", "--window-s", "0.2"))
    assert reason == "duration" and window["wall_s"] >= 0.5
    windows = window["windows"]
    # 0.2 s, 0.2 s and the 0.1 s left: consecutive, on the board's clock, each with its iterations.
    assert len(windows) == 3 and sum(w["iterations"] for w in windows) == len(times)
    assert all(a["end_s"] == b["start_s"] for a, b in zip(windows, windows[1:]))
    assert windows[0]["start_s"] == window["start_s"] and all(w["iterations"] >= 5 for w in windows)
    report = bt.timing_report(times, window, reason, 1, batch=1)
    assert report["windows"] == windows and report["stop_reason"] == "duration"
    settings = bt.timing_settings(timing_args("--duration-s", "60", "--window-s", "5"))
    assert (settings["duration_s"], settings["window_s"]) == (60.0, 5.0)
    described = bt.describe_method(dict(report, timer="perf_counter", warmup_iterations=1,
                                        settings=bt.timing_settings(timing_args("--duration-s", "0.5",
                                                                                "--window-s", "0.2"))))
    assert described["iterations_policy"] == "duration: 0.5 s in windows of 0.2 s (3 windows)"


def test_fixed_rate_arrivals_wait_between_queries_and_count_what_is_late():
    # 10 ms queries every 40 ms: each waits for its arrival, none is late, and the run lasts the 12 gaps.
    times, window, reason, _ = bt.measure(sleeping_step(10.0), timing_args(
        "--warmup", "0", "--warmup-s", "0", "--iterations", "12", "--arrival", "fixed-rate=25"))
    arrival = window["arrival"]
    assert reason == "arrivals" and len(times) == 12 and arrival["missed_deadlines"] == 0
    assert window["wall_s"] >= 11 * 0.040 and arrival["achieved_hz"] <= 25.5
    assert all(t >= 10.0 for t in times) and arrival["queued_ms"]["max"] < 10.0
    # The same queries at 200 Hz: every one is late, and the backlog grows, so the time from arrival does.
    times, window, _, _ = bt.measure(sleeping_step(10.0), timing_args(
        "--warmup", "0", "--warmup-s", "0", "--iterations", "12", "--arrival", "fixed-rate=200"))
    assert window["arrival"]["missed_deadlines"] == 12 and times[-1] > times[0] + 40
    assert window["arrival"]["service_ms"]["median"] == 10.0   # sleeping_step reports its own 10 ms
    report = bt.timing_report(times, window, "arrivals", 0, batch=1)
    assert report["arrival"]["queries"] == 12 and report["arrival"]["scenario"] == "fixed-rate"


def test_poisson_arrivals_follow_their_seed():
    def gaps(seed):
        _, window, _, _ = bt.measure(sleeping_step(1.0), timing_args(
            "--warmup", "0", "--warmup-s", "0", "--duration-s", "0.3", "--window-s", "0.1",
            "--arrival", "poisson=100", "--arrival-seed", str(seed)))
        return window["arrival"]["queries"], window["windows"]
    (queries, windows), (again, _) = gaps(7), gaps(7)
    # The arrivals, not the host's speed, decide how many queries 0.3 s holds: the same for one seed.
    assert queries == again and 10 <= queries <= 60
    assert sum(w["iterations"] for w in windows) == queries and len(windows) == 3
    settings = bt.timing_settings(timing_args("--arrival", "poisson=100", "--arrival-seed", "7"))
    assert (settings["arrival"], settings["arrival_seed"]) == ("poisson=100", 7)


@pytest.mark.parametrize("argv", [["--iterations", "-1"], ["--min-iterations", "0"], ["--target-ci", "0"],
                                  ["--arrival", "fixed=30"], ["--arrival", "poisson=0"],
                                  ["--arrival", "fixed-rate=nan"],
                                  ["--duration-s", "0"], ["--duration-s", "5", "--window-s", "-1"],
                                  ["--duration-s", "5", "--iterations", "10"]])
def test_bad_timing_options_are_json_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        timing_args(*argv)
    assert stopped.value.code == 2
    assert '"kind": "usage"' in capsys.readouterr().out


def test_settings_carry_the_policy():
    args = timing_args("--min-iterations", "5")
    assert bt.timing_settings(args) == {"iterations": None, "warmup": 3, "warmup_s": 1.0, "min_iterations": 5,
                                        "min_time_s": 1.0, "max_time_s": 30.0, "target_ci": 0.01,
                                        "duration_s": None, "window_s": None, "arrival": "back-to-back",
                                        "arrival_seed": None}


# --- the processor and memory --------------------------------------------------------------------------

def test_process_and_processor_facts():
    assert bt.rss_peak_bytes() > 1e6
    assert bt.cpu_name()
