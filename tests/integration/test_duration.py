"""--duration on the lab: a run timed in windows on sim-desktop (PyTorch, CPU) keeps a timeline whose windows
hold every iteration, stored and read back; caffe time, which has no windows, refuses it by name."""
import json
import time

from ..conftest import json_lines


def test_a_duration_run_keeps_its_windows_and_their_telemetry(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--duration", "6",
                        "--window", "2", "--wait", "600", "--json", check=None)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "ok", result["error"]
    line = result["timeline"]
    windows = line["windows"]
    # 2 s windows over 6 s: three, or four where the last iteration crossed the end by a little.
    assert 3 <= len(windows) <= 4 and line["window_s"] == 2.0
    assert sum(w["iterations"] for w in windows) == result["iterations"] == len(result["pytorch"]["times_ms"])
    assert all(w["samples"] >= 1 and w["median_ms"] > 0 for w in windows if w["iterations"])
    assert result["method"]["iterations_policy"].startswith("duration: 6.0 s in windows of 2.0 s")
    assert (line["steady"] is None) == any(f["code"] == "not_steady" for f in result["flags"])
    assert line["first"]["windows"] == [0, 0]
    # Stored whole, and shown as a table by measure without --json.
    shown = json.loads(edgeprof_cli("results", "show", str(result["id"]), "--json", check=0).stdout)
    assert shown["timeline"] == line


def test_caffe_time_refuses_a_duration(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--duration", "5", "--wait", "600", "--json",
                        check=None)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "failed"
    assert result["error"].startswith("--duration: caffe time runs its own fixed number of back-to-back")


def test_a_clock_drop_mid_run_is_dated_by_its_window(edgeprof_cli, lab_inventory):
    """sim-tx2's GPU clock hook (tests/lab/jetson_sim/README.md) drops the clock in the middle of a 15 s run
    of 3 s windows: clocks_below_pinned begins in the window that holds the drop, not before."""
    from edgeprof.devices import connect, get_device

    from .test_power import start_measure, wait_for
    from .test_telemetry import GPU_HOOK, board_time
    tx2 = connect(get_device("sim-tx2", lab_inventory))
    proc = start_measure(edgeprof_cli, lab_inventory, "--backend", "pytorch", "alexnet", "--duration", "15",
                         "--window", "3", "--wait", "600")
    try:
        wait_for(lambda: tx2.run(["pgrep", "-f", "[t]orch_runner.py"]).stdout.strip(), 600, "the runner to start")
        time.sleep(8)   # past the net's load (about 1 s) and warm-up (1 s): inside the timed windows
        dropped_at = board_time(tx2)
        assert tx2.run(["sudo", "-n", "tee", GPU_HOOK], stdin="318750000\n").ok
        out, err = proc.communicate(timeout=300)
    finally:
        tx2.run(["sudo", "-n", "rm", "-f", GPU_HOOK])
        tx2.close()
    assert proc.returncode == 0, err
    [result] = json_lines(out)
    windows = result["timeline"]["windows"]
    holding = [w["index"] for w in windows if w["start_s"] <= dropped_at < w["end_s"]]
    assert holding, f"the hook was written outside the timed windows ({dropped_at} vs {windows})"
    [below] = [f for f in result["flags"] if f["code"] == "clocks_below_pinned"]
    # tegrastats prints the clock it reads at each interval: the first line after the drop is in the same
    # window, or in the next when the drop came in a window's last interval.
    assert below["began"]["window"] in (holding[0], holding[0] + 1), (below, holding, windows)
    assert all("clocks_below_pinned" not in w["flags"] for w in windows[:below["began"]["window"]])
    assert windows[-1]["gpu_freq_mhz_min"] == 318
    assert f"window {below['began']['window'] + 1} of {len(windows)})" in below["detail"]
