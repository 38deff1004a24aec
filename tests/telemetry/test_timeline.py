"""A --duration run's windows (edgeprof.telemetry.timeline): per-window figures from the iterations and the
telemetry inside each window, perf_analyzer's stability rule for the steady state, not_steady, and window
flags dated by the minute they began."""
import pytest

from edgeprof.result import Result
from edgeprof.telemetry import timeline

T0 = 1000.0


def run(medians, *, per_window=5, window_s=30.0, flags=()):
    """A result of len(medians) windows of `window_s`, each with `per_window` iterations at its median."""
    marks = [{"start_s": T0 + k * window_s, "end_s": T0 + (k + 1) * window_s, "iterations": per_window}
             for k in range(len(medians))]
    result = Result(device="sim-tx2", model="alexnet", backend="pytorch", batch=2, run_id="r")
    result.figures = {"times_ms": [m for m in medians for _ in range(per_window)], "windows": marks}
    result.settings = {"window_s": window_s, "duration_s": window_s * len(medians)}
    result.flags = [dict(f) for f in flags]
    return result


def proc(t, cpu_mhz, temp=40.0):
    return {"kind": "proc", "t": t, "cpu_load_pct": [90.0], "cpu_freq_mhz": [cpu_mhz], "ram_used_mb": 900.0,
            "temps_c": {"CPU": temp}}


def test_the_steady_state_is_the_agreeing_windows_at_the_end():
    result = run([30.0, 20.0, 20.5, 19.8, 20.2, 20.0])
    assert timeline.analyse(result, [], None) == []
    line = result.timeline
    assert [w["median_ms"] for w in line["windows"]] == [30.0, 20.0, 20.5, 19.8, 20.2, 20.0]
    # 5 iterations of batch 2 in 30 s; a p99 needs 368 iterations.
    assert line["windows"][0]["throughput_ips"] == pytest.approx(10 / 30) and line["windows"][0]["p99_ms"] is None
    # The warm first window is not part of it: its throughput equals the rest (same count per window) but its
    # median is 50 % above theirs.
    assert line["steady"]["windows"] == [1, 5] and line["steady"]["iterations"] == 25
    assert line["steady"]["median_ms"] == 20.0 and line["first"]["median_ms"] == 30.0
    assert line["drift_rel"] == pytest.approx(-1 / 3)


def test_windows_that_still_drift_at_the_end_are_not_steady():
    result = run([20.0, 22.0, 25.0, 29.0, 34.0])
    [flag] = timeline.analyse(result, [], None)
    assert flag["code"] == "not_steady" and "25, 29, 34 ms" in flag["detail"]
    assert result.timeline["steady"] is None and result.timeline["drift_rel"] == pytest.approx(0.7)
    [short] = timeline.analyse(run([20.0, 20.0]), [], None)
    assert "only 2 windows, 3 needed" in short["detail"]


def test_a_window_flag_is_dated_by_the_first_window_that_raises_it():
    # The CPU clock holds at 2035 MHz for two windows and drops in the third (minute 2 of 30 s windows).
    records = [{"kind": "start", "t": T0 - 1}] + [proc(T0 + s, 2035.2) for s in range(1, 60, 2)] + \
              [proc(T0 + 61, 2035.2)] + [proc(T0 + s, 1113.6, temp=80.0) for s in range(63, 120, 2)]
    result = run([20.0, 20.0, 26.0, 26.0, 26.0, 26.0],
                 flags=[{"code": "clocks_moved",
                         "detail": "clocks changed during the timed window: cpu0 1113.6-2035.2 MHz"},
                        {"code": "high_spread", "detail": "IQR ..."}])
    assert timeline.analyse(result, records, None) == []
    moved, spread = result.flags
    assert moved["began"] == {"window": 2, "minute": 2}
    assert moved["detail"].endswith("(from minute 2, window 3 of 6)")
    assert "began" not in spread    # not a telemetry flag: not dated
    rows = result.timeline["windows"]
    assert [r["flags"] for r in rows[:3]] == [[], [], ["clocks_moved"]]
    assert rows[0]["cpu_freq_mhz_min"] == 2035.2 and rows[3]["cpu_freq_mhz_min"] == 1113.6
    assert rows[0]["temp_max_c"] == 40.0 and rows[3]["temp_max_c"] == 80.0
    # The steady state is the slow windows after the drop.
    assert result.timeline["steady"]["windows"] == [2, 5] and result.timeline["steady"]["median_ms"] == 26.0


def test_results_without_windows_have_no_timeline():
    result = run([20.0, 20.0, 20.0])
    result.figures.pop("windows")
    assert timeline.analyse(result, [], None) == [] and result.timeline is None


def tegrastats(t, gpu_mhz, gpu_c):
    return {"kind": "tegrastats", "t": t, "line": (
        f"RAM 1393/7852MB (lfb 1858x4MB) CPU [88%@2035,off,off,98%@2035,88%@2035,98%@2035] EMC_FREQ 31%@1866 "
        f"GR3D_FREQ 93%@{gpu_mhz} APE 150 PLL@47C MCPU@47C PMIC@50C Tboard@43C GPU@{gpu_c}C BCPU@47C "
        f"thermal@46.4C Tdiode@44.5C VDD_SYS_GPU 180/180 VDD_SYS_SOC 684/684 VDD_4V0_WIFI 0/0 VDD_IN 3413/3413 "
        f"VDD_SYS_CPU 185/185 VDD_SYS_DDR 919/919")}


def test_a_board_that_began_throttling_has_its_steady_state_after_it():
    """GPU-therm passes its passive trip in window 3 of 7 (the GPU clock dropping with it) while the medians
    stay put, as on the lab's simulated TX2: thermal_throttle is dated at window 3, and the steady state is
    windows 3-7, not the whole run, since the board before it was another board."""
    start = {"kind": "start", "t": T0 - 1, "trip_points_c": {"GPU-therm": [["passive", 96.5], ["critical", 101.5]]}}
    records = [start] + [tegrastats(T0 + s, 1300, 48) for s in range(1, 60, 2)] + \
              [tegrastats(T0 + s, 624, 98) for s in range(61, 210, 2)]
    result = run([20.0] * 7, flags=[{"code": "thermal_throttle", "detail": "during the timed window: GPU at 98 C"}])
    assert timeline.analyse(result, records, None) == []
    [flag] = result.flags
    assert flag["began"] == {"window": 2, "minute": 2}
    assert [r["flags"] for r in result.timeline["windows"][:3]] == [[], [], ["thermal_throttle"]]
    assert result.timeline["steady"]["windows"] == [2, 6]


def test_throttling_that_began_in_the_last_windows_leaves_no_steady_state():
    start = {"kind": "start", "t": T0 - 1, "trip_points_c": {"GPU-therm": [["passive", 96.5]]}}
    records = [start] + [tegrastats(T0 + s, 1300, 48) for s in range(1, 120, 2)] + \
              [tegrastats(T0 + s, 624, 98) for s in range(121, 150, 2)]
    [flag] = timeline.analyse(run([20.0] * 5), records, None)
    assert flag["code"] == "not_steady"
    assert "throttling changed in the last 3 windows (window 4 differs from the last one's thermal_throttle)" \
        in flag["detail"]
