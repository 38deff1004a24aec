"""Window statistics, energy and flags (edgeprof.telemetry.summary) on real tegrastats and nvidia-smi output
(tests/parsers/logs/*/SOURCES.md): each fixture line becomes a sampler record at a chosen board time."""
import csv
import re
from pathlib import Path

import pytest

from edgeprof.telemetry.summary import (NVIDIA_SMI_FIELDS, NVIDIA_SMI_POWER_TOTAL, readings, summarize)

LOGS = Path(__file__).parent.parent / "parsers" / "logs"
T0 = 1_800_000_000.0
WINDOW = {"start_s": T0 + 1.0, "end_s": T0 + 2.0}
PINNED_TX2 = {"power_mode": {"mode_name": "MAXN", "mode_id": 0}, "clocks_pinned": True,
              "pinned": {"power_mode": "MAXN", "gpu": {"min_hz": 1300500000, "max_hz": 1300500000, "cur_hz": 1300500000},
                         "emc": {"min_hz": 1866000000, "max_hz": 1866000000, "cur_hz": 1866000000}, "cpus": []},
              "clocks_start": {"power_mode": "MAXN"}, "clocks_end": {"power_mode": "MAXN"}}


def lines(name: str) -> list[str]:
    return [line for line in (LOGS / name).read_text().splitlines() if line.strip()]


def start(**extra) -> dict:
    return {"kind": "start", "t": T0, "pid": 1, "child_pid": 2, "interval_ms": 100, "utc_offset_s": 0,
            "trip_points_c": {}, **extra}


def tegrastats_records(line_list: list[str], first: float = 1.1, step: float = 0.1) -> list[dict]:
    return [{"kind": "tegrastats", "t": T0 + first + i * step, "line": line} for i, line in enumerate(line_list)]


def summary_of(records, *, state=None, power_total="VDD_IN", inferences=10, window=WINDOW, errors=()):
    return summarize([start()] + records, window, inferences=inferences, power_total=power_total,
                     state=state or {}, interval_ms=100, errors=list(errors))


def codes(flags) -> list[str]:
    return [f["code"] for f in flags]


def test_tx2_window_statistics_and_energy():
    line = lines("tegrastats/tx2_r32_datadog_agent.txt")[0]
    # Five samples inside the window, one before and one after it that must not count.
    outside = [{"kind": "tegrastats", "t": T0 + 0.5, "line": line.replace("VDD_IN 3056/3056", "VDD_IN 9000/9000")},
               {"kind": "tegrastats", "t": T0 + 2.5, "line": line.replace("VDD_IN 3056/3056", "VDD_IN 9000/9000")}]
    summary, flags = summary_of(outside + tegrastats_records([line] * 5, first=1.1, step=0.2))
    assert summary["samples_in_window"] == 5 and summary["window_s"] == pytest.approx(1.0)
    assert summary["gpu_load_pct"] == {"mean": 0, "max": 0}
    assert summary["gpu_freq_mhz"] == {"min": 624, "max": 624}
    assert summary["emc_freq_mhz"] == {"min": 1600, "max": 1600}
    assert summary["cpu_freq_mhz"] == {"min": 345, "max": 345}   # the two Denver cores are off
    assert summary["ram_peak_mb"] == 2344
    assert summary["temps_max_c"]["Tdiode"] == 34.25 and summary["temps_max_c"]["PMIC"] == 100.0
    assert summary["rails_mean_mw"]["VDD_IN"] == 3056 and summary["rails_mean_mw"]["VDD_SYS_GPU"] == 152
    assert summary["power_total"] == {"definition": "VDD_IN", "mean_w": pytest.approx(3.056)}
    # mean board power x window duration / inferences
    energy = summary["energy"]
    assert energy["window_j"] == pytest.approx(3.056 * 1.0)
    assert energy["per_inference_j"] == pytest.approx(3.056 / 10)
    assert energy["inferences_per_j"] == pytest.approx(10 / 3.056)
    assert flags == []


def test_a_sum_of_rails_is_the_board_total():
    xavier = lines("tegrastats/agx_xavier_r32_datadog_agent.txt")[0]
    summary, _ = summary_of(tegrastats_records([xavier] * 5), power_total="GPU+CPU+SOC+CV+VDDRQ+SYS5V")
    assert summary["power_total"]["mean_w"] == pytest.approx((0 + 311 + 932 + 0 + 621 + 1482) / 1000)
    orin = lines("tegrastats/agx_orin_jp51_catid_blog.txt")[0]
    summary, _ = summary_of(tegrastats_records([orin] * 5),
                            power_total="VIN_SYS_5V0+VDDQ_VDD2_1V8AO+VDD_GPU_SOC+VDD_CPU_CV")
    assert summary["power_total"]["mean_w"] == pytest.approx((4032 + 301 + 2399 + 400) / 1000)
    assert summary["gpu_freq_mhz"] == {"min": 0, "max": 0}
    assert "CV0" not in summary["temps_max_c"]   # -256C: sensor off


def test_without_root_there_is_no_power_and_no_energy():
    summary, flags = summary_of(tegrastats_records(lines("tegrastats/tx2_jp46_nonroot_jetson_stats_issue187.txt")[:6],
                                                   step=0.15))
    assert summary["power_total"]["mean_w"] is None and summary["energy"]["per_inference_j"] is None
    assert summary["rails_mean_mw"] == {} and summary["gpu_freq_mhz"] is None
    assert summary["gpu_load_pct"] == {"mean": 0, "max": 0}
    assert flags == []


def test_real_emc_and_cpu_clock_changes_are_flagged():
    # Three consecutive lines of a TX2 (L4T 28.2) whose EMC went from 1866 to 102 MHz and whose A57s slowed.
    summary, flags = summary_of(tegrastats_records(lines("tegrastats/tx2_r28_2_gustavz_issue24.txt"), step=0.3),
                                power_total="VDD_IN")
    assert summary["emc_freq_mhz"] == {"min": 102, "max": 1866}
    [moved] = [f for f in flags if f["code"] == "clocks_moved"]
    assert "EMC 102-1866 MHz" in moved["detail"] and "cpu0 345-1303 MHz" in moved["detail"]
    assert "GPU" not in moved["detail"]   # 140 MHz throughout


def test_gpu_clock_dropped_below_the_pinned_value():
    # A pinned TX2 (MAXN, GPU 1300.5 MHz) whose GPU clock fell mid-window, as the lab simulator's hook does.
    line = lines("tegrastats/tx2_r32_datadog_agent.txt")[0].replace("GR3D_FREQ 0%@624", "GR3D_FREQ 99%@1300") \
        .replace("EMC_FREQ 4%@1600", "EMC_FREQ 4%@1866")
    dropped = line.replace("@1300 ", "@318 ")
    summary, flags = summary_of(tegrastats_records([line] * 4 + [dropped] * 4), state=PINNED_TX2)
    assert summary["gpu_freq_mhz"] == {"min": 318, "max": 1300}
    assert codes(flags) == ["clocks_moved", "clocks_below_pinned"]
    assert "GPU down to 318 MHz (pinned 1300.5)" in flags[1]["detail"]
    # Pinned and steady: 1300 MHz printed for 1300.5 MHz pinned is not "below".
    assert summary_of(tegrastats_records([line] * 8), state=PINNED_TX2)[1] == []


def test_temperature_near_a_trip_point():
    line = lines("tegrastats/tx2_r32_datadog_agent.txt")[0]   # GPU@35C
    records = tegrastats_records([line] * 5)
    hot = {"GPU-therm": [["passive", 38.0], ["critical", 101.0]], "thermal-fan-est": [["active", 20.0]]}
    _, flags = summarize([start(trip_points_c=hot)] + records, WINDOW, inferences=10, power_total="VDD_IN",
                         state={}, interval_ms=100, errors=[])
    assert codes(flags) == ["thermal_throttle"] and "GPU at 35 C, trip point 38 C" in flags[0]["detail"]
    # Fan ("active") trip points are not throttling; far from the passive one is fine.
    cool = {"GPU-therm": [["passive", 97.0]], "thermal-fan-est": [["active", 20.0]]}
    _, flags = summarize([start(trip_points_c=cool)] + records, WINDOW, inferences=10, power_total="VDD_IN",
                         state={}, interval_ms=100, errors=[])
    assert flags == []


def test_power_mode_changed_around_the_window():
    line = lines("tegrastats/tx2_r32_datadog_agent.txt")[0]
    state = {**PINNED_TX2, "clocks_pinned": False, "clocks_end": {"power_mode": "MAXQ"}}
    _, flags = summary_of(tegrastats_records([line] * 5), state=state)
    assert codes(flags) == ["power_mode_changed"]
    assert "set MAXN, read MAXN before and MAXQ after" in flags[0]["detail"]


def test_few_samples_and_missing_window():
    line = lines("tegrastats/tx2_r32_datadog_agent.txt")[0]
    _, flags = summary_of(tegrastats_records([line] * 2, step=0.4))
    assert codes(flags) == ["few_samples"]
    # Enough for MIN_SAMPLES but not half of what a 1 s window at 100 ms should hold.
    _, flags = summary_of(tegrastats_records([line] * 4, step=0.25))
    assert codes(flags) == ["few_samples"]
    summary, flags = summary_of(tegrastats_records([line] * 5), window=None, errors=["tegrastats exited"])
    assert summary == {} and codes(flags) == ["telemetry_incomplete", "no_timed_window"]


def h100_line(**override) -> str:
    """The H100's real `--format=csv,nounits` row, its cells re-ordered into the sampler's query."""
    header, row = list(csv.reader((LOGS / "nvidia_smi/h100_driver580_csv_nounits.txt").read_text().splitlines(),
                                  skipinitialspace=True))
    cells = {re.sub(r"\s*\[.*\]$", "", name): value for name, value in zip(header, row)}
    aliases = {"clocks.sm": "clocks.current.sm", "clocks.mem": "clocks.current.memory",
               "clocks_throttle_reasons.active": "clocks_event_reasons.active"}
    cells.update({name: cells[real] for name, real in aliases.items()}, **override)
    return ", ".join(cells[name] for name in NVIDIA_SMI_FIELDS)


def test_nvidia_smi_gpu_power_and_its_own_timestamps():
    line = h100_line()   # 2026/11/23 19:38:55.xxx, 100.92 W, idle (reason 0x1: GPU idle, not a throttle)
    stamp = 1795462735.0   # 2026-11-23 19:38:55 UTC
    window = {"start_s": stamp - 0.5, "end_s": stamp + 1.5}
    # Received "late" (t far outside the window): nvidia-smi's own timestamp places the sample.
    records = [{"kind": "nvidia-smi", "t": stamp + 100, "line": line}] * 3 + [
        {"kind": "proc", "t": stamp + 0.1 * i, "cpu_load_pct": [50.0, None], "cpu_freq_mhz": [None, None],
         "ram_used_mb": 1000 + i, "ram_total_mb": 24000, "temps_c": {}} for i in range(10)]
    summary, flags = summarize([start()] + records, window, inferences=64, power_total=None, state={},
                               interval_ms=100, errors=[])
    assert summary["samples_in_window"] == 13
    assert summary["power_total"] == {"definition": NVIDIA_SMI_POWER_TOTAL, "mean_w": 100.92}
    assert summary["energy"]["per_inference_j"] == pytest.approx(100.92 * 2.0 / 64)
    assert summary["gpu_load_pct"] == {"mean": 0, "max": 0} and summary["gpu_freq_mhz"] == {"min": 345, "max": 345}
    assert summary["emc_freq_mhz"] == {"min": 2619, "max": 2619} and summary["gpu_mem_peak_mb"] == 0
    assert summary["ram_peak_mb"] == 1009 and summary["cpu_load_pct"] == {"mean": 50.0, "max": 50.0}
    assert summary["temps_max_c"] == {"GPU": 34}
    assert flags == []


def test_nvml_throttle_reasons():
    stamp = 1795462735.0
    window = {"start_s": stamp - 0.5, "end_s": stamp + 1.5}
    for reasons, expected in (("0x0000000000000020", ["thermal_throttle"]), ("0x0000000000000004", ["power_throttle"]),
                              ("0x0000000000000088", ["power_throttle", "hw_slowdown"])):
        records = [{"kind": "nvidia-smi", "t": stamp, "line": h100_line(**{"clocks_event_reasons.active": reasons,
                                                                          "clocks_throttle_reasons.active": reasons})}]
        _, flags = summarize([start()] + records * 20, window, inferences=1, power_total=None, state={},
                             interval_ms=100, errors=[])
        assert codes(flags) == expected, reasons


def test_other_gpus_and_error_lines_are_not_gpu_0():
    other = h100_line(index="1")
    records = [{"kind": "nvidia-smi", "t": 0.0, "line": other},
               {"kind": "nvidia-smi", "t": 0.0, "line": "Failed to initialize NVML: Driver/library version mismatch"}]
    assert readings([start()] + records, None) == []


def others(t, interval_s, cpu_s, top, load1=0.5):
    return {"kind": "others", "t": t, "interval_s": interval_s, "cpu_s": cpu_s, "top": top, "load1": load1}


def test_other_processes_are_weighted_by_their_overlap_with_the_window():
    from edgeprof.telemetry.summary import other_processes
    records = [others(100.0, 1.0, 0.8, [["burn", 7, 0.8]]),       # 99-100: half inside a 99.5-102.5 window
               others(101.0, 1.0, 1.0, [["burn", 7, 1.0]], load1=1.7),
               others(102.0, 1.0, 1.0, [["burn", 7, 0.9], ["sshd", 3, 0.1]]),
               others(103.0, 1.0, 0.2, [["sshd", 3, 0.2]]),       # 102-103: half inside
               others(110.0, 1.0, 5.0, [["late", 9, 5.0]])]       # after the window: left out
    found = other_processes(records, {"start_s": 99.5, "end_s": 102.5})
    assert found["cpu_s"] == pytest.approx(0.4 + 1.0 + 1.0 + 0.1)
    assert found["cpu_share"] == pytest.approx(2.5 / 3, abs=1e-3) and found["load1_max"] == 1.7
    assert found["top"][0] == {"process": "burn", "pid": 7, "cpu_s": pytest.approx(2.3)}
    assert all(p["process"] != "late" for p in found["top"])


def test_contended_only_past_a_quarter_of_a_cpu_and_names_the_busiest():
    from edgeprof.telemetry.summary import contention_flag, other_processes
    quiet = other_processes([others(11.0, 1.0, 0.03, [["sshd", 3, 0.03]])], {"start_s": 10.0, "end_s": 11.0})
    busy = other_processes([others(11.0, 1.0, 0.9, [["burn", 7, 0.9]])], {"start_s": 10.0, "end_s": 11.0})
    assert contention_flag(quiet) == []
    [flag] = contention_flag(busy)
    assert flag["code"] == "contended" and "burn (7) 0.9 s" in flag["detail"] and flag["figures"] == busy
    assert other_processes([], {"start_s": 0.0, "end_s": 1.0}) is None


def test_other_gpu_processes_in_the_window_give_gpu_shared_with_their_memory():
    from edgeprof.telemetry.summary import gpu_shared_flag, other_processes
    window = {"start_s": 10.0, "end_s": 12.0}
    shared = other_processes([{**others(11.0, 1.0, 0.0, []), "gpu": [["python3", 52114, 6294.0]]},
                              {**others(12.0, 1.0, 0.0, []), "gpu": [["python3", 52114, 6300.0], ["init", 1, None]]},
                              {**others(20.0, 1.0, 0.0, []), "gpu": [["late", 9, 10.0]]}], window)
    assert shared["gpu"] == [{"process": "python3", "pid": 52114, "memory_mb": 6300.0},
                             {"process": "init", "pid": 1, "memory_mb": None}]
    [flag] = gpu_shared_flag(shared)
    assert flag["code"] == "gpu_shared" and flag["detail"] == (
        "other processes held the GPU during the timed window: python3 (52114) 6300 MB, init (1)")
    alone = other_processes([{**others(11.0, 1.0, 0.0, []), "gpu": []}], window)
    assert alone["gpu"] == [] and gpu_shared_flag(alone) == []
    # Could not look: no flag, and the reason is kept, once.
    unknown = other_processes([{**others(11.0, 1.0, 0.0, []), "gpu_error": "no nvmap client table"}] * 2, window)
    assert "gpu" not in unknown and unknown["gpu_errors"] == ["no nvmap client table"]
    assert gpu_shared_flag(unknown) == []


@pytest.mark.parametrize("settings, attributed", [
    ({"processor": "cuda:0"}, True),
    ({"processor": "cpu"}, False),
    ({"processor": "auto", "providers": ["CPUExecutionProvider"]}, False),
    ({"processor": "auto", "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}, True),
])
def test_no_energy_per_inference_from_the_gpu_board_for_an_item_on_the_host_cpu(settings, attributed):
    # Seen on the lent H100 (2026-12-07): ONNX Runtime on the host's CPU got "70 W, 0.74 J/img" from the idle
    # GPU board's power.draw. The GPU's power is kept; energy per inference is given only for work on it.
    from edgeprof.result import Result
    from edgeprof.telemetry.sampler import Recording
    stamp = 1795462735.0
    result = Result(device="local", model="alexnet", backend="onnxruntime", batch=1, run_id="r", iterations=64,
                    settings=settings, timed_window={"start_s": stamp - 0.5, "end_s": stamp + 1.5})
    recording = Recording(source="nvidia-smi+proc", interval_ms=100, power_total=None,
                          records=[start(), {"kind": "nvidia-smi", "t": stamp, "line": h100_line()}])
    recording.attach(result)
    energy = result.telemetry["energy"]
    assert result.telemetry["power_total"]["mean_w"] == 100.92
    assert (energy["per_inference_j"] is not None) is attributed
    assert ("not_attributed" in energy) is not attributed
