"""Power-mode sweeps on simulated TX2s (tests/lab/jetson_sim): every mode of the board's own nvpmodel.conf
measured with its clocks pinned, a mode that asks for a reboot refused and listed, the original state back
after the sweep and after the host process dies mid-sweep. The simulator's timing does not change with the
mode (the inference runs on the host's CPUs); its clocks and power rails do."""
import json
import signal
import subprocess
import time

import pytest

from edgeprof.devices import connect, get_device

from ..conftest import json_lines
from .test_power import board_state, start_measure, wait_for

LENET = "tests/lab/models/lenet.prototxt"
# Each TX2 mode's GPU and EMC ceiling once jetson_clocks pins it: the conf's limits rounded up to the
# simulator's clock tables (tests/lab/jetson_sim/nvpmodel.conf), EMC as capped.
CEILINGS = {"MAXN": (1300500000, 1866000000), "MAXQ": (854250000, 1331200000),
            "MAXP_CORE_ALL": (1134750000, 1600000000), "MAXP_CORE_ARM": (1134750000, 1600000000)}


def on_board(lab_inventory, name):
    transport = connect(get_device(name, lab_inventory))
    yield transport
    transport.run(["sudo", "rm", "-f", "/var/lib/jetson-sim/reboot_modes"])
    transport.close()


@pytest.fixture
def board12(lab_inventory):
    yield from on_board(lab_inventory, "sim-tx2-12")


@pytest.fixture
def board11(lab_inventory):
    yield from on_board(lab_inventory, "sim-tx2-11")


def test_sweep_measures_each_mode_refuses_a_reboot_and_restores_the_board(edgeprof_cli, board12):
    before = board_state(board12)
    assert board12.run(["sudo", "sh", "-c", "echo 4 > /var/lib/jetson-sim/reboot_modes"]).ok
    proc = edgeprof_cli("measure", "--device", "sim-tx2-12", "--power-modes", "all", "-n", "300", "--wait", "600",
                        LENET, "--json", "--budget-w", "100")
    assert proc.returncode == 1, proc.stderr      # the refused mode's item is a failed result
    assert board_state(board12) == before
    results = {r["state"]["power_sweep"]["mode_name"]: r for r in json_lines(proc.stdout)}
    assert list(results) == ["MAXN", "MAXQ", "MAXP_CORE_ALL", "MAXP_CORE_ARM", "MAXP_CORE_DENVER"]  # conf id order
    refused = results.pop("MAXP_CORE_DENVER")
    assert refused["status"] == "failed" and "needs a reboot" in refused["error"]
    assert "not measured in power mode MAXP_CORE_DENVER" in proc.stderr
    for mode, result in results.items():
        state = result["state"]
        assert result["status"] == "ok", result["error"]
        assert state["power_mode"]["mode_name"] == mode
        assert state["power_sweep"]["mode_id"] == state["power_mode"]["mode_id"]
        gpu, emc = CEILINGS[mode]
        for reading in (state["pinned"], state["clocks_start"], state["clocks_end"]):
            assert (reading["gpu"]["cur_hz"], reading["emc"]["cur_hz"]) == (gpu, emc), mode
        assert result["telemetry"]["power_total"]["mean_w"] > 0
    assert not results["MAXQ"]["state"]["clocks_end"]["cpus"][1]["online"]        # Denver cores off in MAXQ
    # compare reads the sweep back: one table, every measured mode in it, the budget answered.
    shown = edgeprof_cli("compare", "--budget-w", "100", "--budget-ms", "1000", check=0).stdout
    assert "power modes: lenet caffe batch 1 on sim-tx2-12" in shown
    assert "fastest mode under 100 W: " in shown and "lowest-power mode meeting 1000 ms: " in shown
    assert "not measured: MAXP_CORE_DENVER" in shown


def test_unknown_mode_names_the_boards_modes_and_changes_nothing(edgeprof_cli, board12):
    before = board_state(board12)
    proc = edgeprof_cli("measure", "--device", "sim-tx2-12", "--power-modes", "MAXN,15W", "--wait", "600", LENET,
                        check=2)
    assert "no power mode 15W in its /etc/nvpmodel.conf" in proc.stderr and "MAXQ (id 1)" in proc.stderr
    assert board_state(board12) == before


def test_killed_mid_sweep_in_a_mode_with_cpus_offline_the_board_restores_itself(edgeprof_cli, lab_inventory,
                                                                                  board11):
    before = board_state(board11)
    lease_s = 10
    proc = start_measure(edgeprof_cli, lab_inventory, "--power-modes", "MAXQ", "-n", "1000000", "--lease",
                         str(lease_s), "--wait", "600", LENET, device="sim-tx2-11")
    seen = ""
    while "caffe lenet batch 1" not in seen.split("power mode MAXQ", 1)[-1]:
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    time.sleep(1)
    assert "NV Power Mode: MAXQ" in board_state(board11)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # The guard restores through MAXN (every CPU online) before the stored clocks and the original mode.
    wait_for(lambda: board_state(board11) == before, lease_s + 20, "the board to restore itself")
    log = board11.run(["sudo", "sh", "-c", "cat /var/lib/edgeprof/interrupted.*/restore.log; "
                                           "cat /var/lib/edgeprof/interrupted.*/restore"]).stdout
    assert "nvpmodel_first 0" in log and "ignored" not in log


def test_sweep_refused_before_connecting_where_it_cannot_apply(edgeprof_cli):
    desktop = edgeprof_cli("measure", "--device", "local", "--power-modes", "all", LENET, check=2)
    assert "nvpmodel power modes exist on Jetson boards only" in desktop.stderr
    leave = edgeprof_cli("measure", "--device", "sim-tx2-12", "--power-modes", "all", "--clocks", "leave", LENET,
                         check=2)
    assert "drop --clocks leave" in leave.stderr
    both = edgeprof_cli("measure", "--device", "sim-tx2-12", "--power-modes", "all,MAXN", LENET, check=2)
    assert "all, or mode names" in both.stderr


def test_a_sweep_bundle_reruns_the_same_modes(edgeprof_cli, tmp_path):
    """The bundle of a sweep lists its modes in one measure command of reproduce.sh."""
    made = json_lines(edgeprof_cli("measure", "--device", "sim-tx2-12", "--power-modes", "MAXQ,MAXN", "-n", "20",
                                   "--wait", "600", LENET, "--json", check=0).stdout)
    bundle = tmp_path / "sweep.tar.gz"
    edgeprof_cli("bundle", "--run", made[0]["run_id"], "-o", bundle, check=0)
    script = subprocess.run(["tar", "xzf", str(bundle), "-O", "edgeprof-bundle/reproduce.sh"], capture_output=True,
                            text=True, check=True).stdout
    [command] = [line for line in script.splitlines() if line.startswith("edgeprof measure")]
    assert command.endswith("--power-modes MAXQ,MAXN || status=$?") and "--clocks max" in command
    assert json.loads(subprocess.run(["tar", "xzf", str(bundle), "-O", "edgeprof-bundle/manifest.json"],
                                     capture_output=True, text=True, check=True).stdout)["results"][0]["power_mode"] \
        == {"mode_name": "MAXQ", "mode_id": 1}
