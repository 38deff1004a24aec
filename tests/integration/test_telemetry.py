"""Telemetry during the measured window, against the lab: sim-tx2's simulated tegrastats (as root, with
rails) and sim-desktop's /proc; the sampler stopped by Ctrl-C and by the lease guard after SIGKILL; the
simulator's GPU clock hook (tests/lab/jetson_sim/README.md) dropping the clock mid-window."""
import json
import signal
import time

import pytest

from edgeprof.devices import connect, get_device
from edgeprof.parsers import tegrastats

from ..conftest import json_lines
from .test_power import caffe_running, start_measure, wait_for

GPU_HOOK = "/var/lib/jetson-sim/gpu_clock_override"
# Caffe's alexnet on the lab: about 0.2 s an iteration, so 60 iterations give a window of several seconds.
LONG_ALEXNET = ["alexnet", "--iterations", "60"]


@pytest.fixture
def tx2(lab_inventory):
    transport = connect(get_device("sim-tx2", lab_inventory))
    yield transport
    transport.close()


def in_window(result: dict) -> list[dict]:
    window = result["timed_window"]
    return [r for r in result["telemetry"]["samples"]
            if r["kind"] in ("tegrastats", "nvidia-smi", "proc") and window["start_s"] <= r["t"] <= window["end_s"]]


def board_time(board) -> float:
    return float(board.run(["date", "+%s.%N"]).stdout)


def running_sampler(board) -> dict:
    """The start record of the sampler of the run in progress (its pid and its tool's), once caffe runs."""
    def found():
        if not caffe_running(board):
            return None
        head = board.run(["sh", "-c", "head -q -n 1 /tmp/edgeprof.*/telemetry-*.jsonl.part 2>/dev/null"]).stdout
        return json.loads(head.splitlines()[0]) if head.strip() else None
    wait_for(lambda: found() is not None, 60, "the sampler and caffe to run")
    return found()


def alive(board, pid: int) -> bool:
    """Running, as the board's kernel sees it (a zombie is not: its parent may reap late)."""
    state = board.run(["sh", "-c", 'grep -s "^State:" "/proc/$1/status"', "alive", str(pid)]).stdout
    return bool(state) and "zombie" not in state


def test_caffe_on_sim_tx2_keeps_tegrastats_samples_of_its_window(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--iterations", "10", "--json", check=0)
    [result] = json_lines(proc.stdout)
    window, telemetry = result["timed_window"], result["telemetry"]
    assert telemetry["source"] == "tegrastats" and telemetry["errors"] == []
    # The window is caffe's benchmark, on the same clock as the samples, inside the sampler's run.
    samples = telemetry["samples"]
    assert samples[0]["kind"] == "start" and samples[-1] == {**samples[-1], "kind": "end", "reason": "stop file"}
    assert samples[0]["t"] < window["start_s"] < window["end_s"] < samples[-1]["t"]
    inside = in_window(result)
    assert len(inside) == telemetry["samples_in_window"] >= 5
    assert all(r["kind"] == "tegrastats" for r in inside)
    # The sampler's blocks of its lines (the host merges those inside the window instead of parsing them).
    lines = sum(r["kind"] == "tegrastats" for r in samples)
    blocks = [r["lines"] for r in samples if r["kind"] == "block"]
    assert blocks == [10] * (lines // 10) + [lines % 10] * bool(lines % 10)
    # Root's tegrastats: rails and clocks; the clocks are the pinned MAXN ones, so no flag.
    parsed = [tegrastats.parse_line(r["line"]) for r in inside]
    vdd_in = [p.rails_mw["VDD_IN"].cur for p in parsed]
    assert telemetry["gpu_freq_mhz"] == {"min": 1300, "max": 1300}
    assert telemetry["rails_mean_mw"]["VDD_IN"] == pytest.approx(sum(vdd_in) / len(vdd_in))
    assert telemetry["ram_peak_mb"] == max(p.ram_used_mb for p in parsed)
    # Energy per inference = mean board power (VDD_IN on a TX2) x window duration / (batch x iterations).
    mean_w = sum(vdd_in) / len(vdd_in) / 1000
    assert telemetry["power_total"] == {"definition": "VDD_IN", "mean_w": pytest.approx(mean_w)}
    duration = window["end_s"] - window["start_s"]
    assert telemetry["energy"]["per_inference_j"] == pytest.approx(mean_w * duration / 10)
    assert telemetry["energy"]["inferences_per_j"] == pytest.approx(10 / (mean_w * duration))
    assert result["flags"] == []
    # Stored with the result, and shown in the table.
    shown = json.loads(edgeprof_cli("results", "show", result["id"], "--json", check=0).stdout)
    assert shown["telemetry"] == telemetry
    table = edgeprof_cli("results", "list", check=0, env={"COLUMNS": "250"}).stdout
    assert "J/img" in table and f"{telemetry['energy']['per_inference_j']:.4g}" in table
    # The window fits caffe's own account of it: "Total Time" over the timed iterations.
    total_ms = result["caffe"]["total_ms"]
    assert duration * 1000 == pytest.approx(total_ms, rel=0.1, abs=20)


def test_sim_desktop_samples_proc_during_its_window(edgeprof_cli):
    # sim-desktop has no caffe (it is the "board without caffe"); its backend is PyTorch on the CPU.
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "alexnet", "--backend", "pytorch", "-n", "60", "--json",
                        check=0)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "ok", result["error"]
    telemetry = result["telemetry"]
    assert telemetry["source"] == "proc" and telemetry["errors"] == []
    inside = in_window(result)
    # One sample per interval of the window, whatever the host's speed makes the window's length; at most
    # the two partial intervals at its edges missing.
    window = result["timed_window"]
    expected = (window["end_s"] - window["start_s"]) * 1000 / telemetry["interval_ms"]
    assert len(inside) == telemetry["samples_in_window"] >= max(3, expected - 2), (len(inside), expected)
    assert all(r["kind"] == "proc" for r in inside)
    assert telemetry["cpu_load_pct"]["max"] > 50    # the forward passes keep the CPUs busy
    assert telemetry["ram_peak_mb"] == max(r["ram_used_mb"] for r in inside)
    assert telemetry["power_total"]["mean_w"] is None and telemetry["energy"]["per_inference_j"] is None


def test_gpu_clock_dropped_mid_window_is_flagged(edgeprof_cli, lab_inventory, tx2):
    proc = start_measure(edgeprof_cli, lab_inventory, *LONG_ALEXNET)
    try:
        running_sampler(tx2)
        time.sleep(2)   # past the net's load and caffe's warm-up: inside the benchmark
        dropped_at = board_time(tx2)
        assert tx2.run(["sudo", "-n", "tee", GPU_HOOK], stdin="318750000\n").ok
        time.sleep(1)
    finally:
        tx2.run(["sudo", "-n", "rm", "-f", GPU_HOOK])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    [result] = json_lines(out)
    window = result["timed_window"]
    assert window["start_s"] < dropped_at < window["end_s"] - 1, "the hook was not written inside the window"
    assert result["telemetry"]["gpu_freq_mhz"] == {"min": 318, "max": 1300}
    codes = {flag["code"]: flag["detail"] for flag in result["flags"]}
    assert "GPU 318-1300 MHz" in codes["clocks_moved"]
    assert "GPU down to 318 MHz (pinned 1300.5)" in codes["clocks_below_pinned"]
    assert "clocks_moved" in edgeprof_cli("results", "list", check=0, env={"COLUMNS": "250"}).stdout


def test_ctrl_c_leaves_no_sampler_and_no_tegrastats(edgeprof_cli, lab_inventory, tx2):
    proc = start_measure(edgeprof_cli, lab_inventory, "vgg16", "--iterations", "1000")
    started = running_sampler(tx2)
    assert alive(tx2, started["pid"]) and alive(tx2, started["child_pid"])
    assert "tegrastats" in tx2.run(["cat", f"/proc/{started['child_pid']}/cmdline"]).stdout
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    wait_for(lambda: not alive(tx2, started["pid"]) and not alive(tx2, started["child_pid"]), 10,
             "the sampler and tegrastats to stop")
    assert tx2.run(["sh", "-c", "ls -d /tmp/edgeprof.* 2>/dev/null"]).stdout == ""


def test_sigkill_of_the_host_the_guard_stops_the_sampler(edgeprof_cli, lab_inventory, tx2):
    lease_s = 10
    proc = start_measure(edgeprof_cli, lab_inventory, "vgg16", "--iterations", "1000", "--lease", str(lease_s))
    started = running_sampler(tx2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # Nobody on the host can stop it now: it runs on until the board's guard sees the lease expire.
    assert alive(tx2, started["pid"]) and alive(tx2, started["child_pid"])
    wait_for(lambda: not alive(tx2, started["pid"]) and not alive(tx2, started["child_pid"]), lease_s + 15,
             "the guard to stop the sampler and tegrastats")
    assert not caffe_running(tx2)
    wait_for(lambda: tx2.run(["sh", "-c", "ls -d /tmp/edgeprof.* 2>/dev/null"]).stdout == "", 10,
             "the guard to remove the work folder")
    # The next contact reports the interruption (and clears the record, leaving the board as found).
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", check=0)
    assert "was interrupted; the board restored its own state" in proc.stderr
