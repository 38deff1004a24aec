"""A TX2 heating up in the middle of a --duration run: sim-tx2's thermal ramp (tests/lab/jetson_sim/README.md)
raises the SoC zones past GPU-therm's passive trip point and its cooling device drops the GPU clock, as thermal
throttling does on a real TX2. thermal_throttle must be dated at the window where the ramp began, and the
steady state must come from the windows after it (edgeprof.telemetry.timeline)."""
import json
import time
from pathlib import Path

import pytest

from edgeprof.devices import connect, get_device

from ..conftest import json_lines
from .test_power import start_measure, wait_for
from .test_telemetry import board_time

pytestmark = pytest.mark.lab

RAMP_HOOK = "/var/lib/jetson-sim/thermal_ramp"
# LeNet: thousands of iterations a window, so the windows' medians are steady enough on this VM for a steady
# state to be found (AlexNet's two or three a window on a busy VM are not).
LENET = Path(__file__).resolve().parent.parent / "lab" / "models" / "lenet.prototxt"
# 48 C (a busy board) to the 98 C peak in 1 s: within the window it starts in, as the test needs. A real TX2
# takes minutes; the rate is the test's choice, not the board's.
RISE_C_PER_S = 50.0
FIRST_WINDOW = "for f in /tmp/edgeprof.*/windows-*.jsonl; do [ -s \"$f\" ] && exit 0; done; exit 1"


def test_a_thermal_ramp_mid_run_is_dated_and_the_steady_state_follows_it(edgeprof_cli, lab_inventory):
    tx2 = connect(get_device("sim-tx2", lab_inventory))
    proc = start_measure(edgeprof_cli, lab_inventory, "--backend", "pytorch", str(LENET), "--duration", "20",
                         "--window", "2", "--wait", "600")
    try:
        # The runner's window log (onboard/timing.py log_window) holds a line once the first window has ended.
        wait_for(lambda: tx2.run(["sh", "-c", FIRST_WINDOW]).ok, 600, "the first window to end")
        time.sleep(3)   # into the third of ten windows
        ramp_at = board_time(tx2)
        ramp = json.dumps({"start_s": ramp_at, "rise_c_per_s": RISE_C_PER_S})
        assert tx2.run(["sudo", "-n", "tee", RAMP_HOOK], stdin=ramp + "\n").ok
        out, err = proc.communicate(timeout=300)
    finally:
        tx2.run(["sudo", "-n", "rm", "-f", RAMP_HOOK])
        tx2.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    [result] = json_lines(out)
    assert result["status"] == "ok", result["error"]
    windows = result["timeline"]["windows"]
    holding = [w["index"] for w in windows if w["start_s"] <= ramp_at < w["end_s"]]
    assert holding, f"the ramp began outside the timed windows ({ramp_at} vs {windows})"
    [hot] = [f for f in result["flags"] if f["code"] == "thermal_throttle"]
    # The zones pass 91.5 C (5 C below GPU-therm's 96.5 C passive trip) 0.9 s after the ramp's start: in its
    # window, or the next where it began in a window's last second.
    began = hot["began"]["window"]
    assert began in (holding[0], holding[0] + 1), (hot, holding, windows)
    assert all("thermal_throttle" not in w["flags"] for w in windows[:began])
    assert all("thermal_throttle" in w["flags"] for w in windows[began:])
    # The cooling device's cap (nvpmodel's GPU_THROTTLED_HZ) against the pinned clock.
    assert windows[-1]["gpu_freq_mhz_min"] == 624 and windows[0]["gpu_freq_mhz_min"] > 624
    assert windows[-1]["temp_max_c"] == 98 and windows[0]["temp_max_c"] < 60
    steady = result["timeline"]["steady"]
    if len(windows) - began < 3:
        pytest.fail(f"fewer than 3 windows after the ramp (began {began} of {len(windows)}): start it earlier")
    if steady is not None:
        # Never across the ramp: the steady state is the throttled board's, whatever the medians did.
        assert steady["windows"][0] >= began and steady["windows"][1] == len(windows) - 1
        assert steady["iterations"] == sum(w["iterations"] for w in windows[steady["windows"][0]:])
    else:
        assert any(f["code"] == "not_steady" for f in result["flags"])
