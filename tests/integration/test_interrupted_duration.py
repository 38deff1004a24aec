"""Ctrl-C in the middle of a --duration run keeps the windows done: on sim-tx2, SIGINT to `edgeprof measure
--duration 30 --window 2` after a few windows stops the runner on the board, stores the result of the finished
windows flagged interrupted (with their count and the seconds done of those asked), exits 130, and leaves the
board as found (no runner, the clocks and mode as before)."""
import json
import signal

import pytest

from edgeprof.devices import connect, get_device

from ..conftest import json_lines
from .test_power import board_state, start_measure, wait_for

pytestmark = pytest.mark.lab

# Prints the runner's window log (onboard/timing.py log_window) once it holds a line.
WINDOW_LOG = "for f in /tmp/edgeprof.*/windows-*.jsonl; do [ -s \"$f\" ] && echo \"$f\" && exit 0; done; exit 1"


def test_ctrl_c_keeps_the_windows_done(edgeprof_cli, lab_inventory):
    tx2 = connect(get_device("sim-tx2", lab_inventory))
    try:
        before = board_state(tx2)
        proc = start_measure(edgeprof_cli, lab_inventory, "--backend", "pytorch", "alexnet", "--duration", "30",
                             "--window", "2", "--wait", "600")
        try:
            wait_for(lambda: tx2.run(["sh", "-c", WINDOW_LOG]).ok, 600, "the first window to end")
            log = tx2.run(["sh", "-c", WINDOW_LOG]).stdout.strip()
            workdir = log.rsplit("/", 1)[0]
            # A few windows more: about 8 s into the timed run.
            wait_for(lambda: len(tx2.run(["cat", log]).stdout.splitlines()) >= 4, 60, "four windows")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert "interrupted; 1 finished result(s) are stored" in err
        # Nothing of the run is left on the board: no runner, no work folder; the state as it was.
        # ("[/]tmp/...": the pattern must not match the shell that runs pgrep, whose command line holds it.)
        assert tx2.run(["pgrep", "-af", f"[/]{workdir[1:]}/"]).stdout.strip() == ""
        assert tx2.run(["test", "-e", workdir]).exit_status == 1
        assert board_state(tx2) == before
    finally:
        tx2.close()
    [printed] = json_lines(out)
    stored = json.loads(edgeprof_cli("results", "show", str(printed["id"]), "--json", check=0).stdout)
    assert stored["status"] == "ok"
    windows = stored["timeline"]["windows"]
    assert len(windows) >= 4 and sum(w["iterations"] for w in windows) == stored["iterations"] > 0
    [flag] = [f for f in stored["flags"] if f["code"] == "interrupted"]
    assert flag["figures"]["windows"] == len(windows) and flag["figures"]["seconds_asked"] == 30.0
    assert 6 <= flag["figures"]["seconds_done"] < 30
    assert stored["timed_window"]["start_s"] == windows[0]["start_s"]
    # The telemetry of those windows is there too, summarized over them.
    assert stored["telemetry"]["samples_in_window"] > 0
