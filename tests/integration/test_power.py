"""Max performance during the run and the board's own state afterwards, on sim-tx2 (simulated nvpmodel,
jetson_clocks: tests/lab/jetson_sim) over real SSH and real sudo."""
import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from edgeprof.devices import connect, get_device

from ..conftest import json_lines

VGG_FOREVER = ["vgg16", "--iterations", "10000"]


@pytest.fixture
def tx2(lab_inventory):
    transport = connect(get_device("sim-tx2", lab_inventory))
    yield transport
    transport.close()


def board_state(tx2) -> str:
    return tx2.run(["sh", "-c", "sudo nvpmodel -q && sudo jetson_clocks --show"]).stdout


def lease_folder(tx2) -> str:
    return tx2.run(["sh", "-c", "ls -A /var/lib/edgeprof 2>/dev/null"]).stdout


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def caffe_running(tx2) -> bool:
    return bool(tx2.run(["pgrep", "-f", "[c]affe time -model /tmp/edgeprof."]).stdout.strip())


def start_measure(edgeprof_cli, lab_inventory, *args, device="sim-tx2", env=None):
    environment = {**os.environ, "HOME": str(edgeprof_cli.home), "EDGEPROF_DB": str(edgeprof_cli.db),
                   "EDGEPROF_INVENTORY": str(lab_inventory), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "edgeprof.cli", "measure", "--device", device, *args, "--json"],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_max_mode_during_the_run_and_the_same_state_after(edgeprof_cli, lab_inventory, tx2):
    before = board_state(tx2)
    assert "NV Power Mode: MAXP_CORE_ARM" in before
    proc = start_measure(edgeprof_cli, lab_inventory, "alexnet", "--iterations", "60")
    wait_for(lambda: caffe_running(tx2), 60, "caffe to start")
    during = board_state(tx2)
    assert "NV Power Mode: MAXN" in during
    assert "GPU MinFreq=1300500000 MaxFreq=1300500000 CurrentFreq=1300500000" in during
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert board_state(tx2) == before
    assert lease_folder(tx2) == ""
    [result] = json_lines(out)
    state = result["state"]
    assert state["clocks_policy"] == "max" and state["clocks_pinned"] is True
    assert state["power_mode"] == {"mode_name": "MAXN", "mode_id": 0}
    assert state["state_before"]["power_mode"] == {"mode_name": "MAXP_CORE_ARM", "mode_id": 3}
    for reading in (state["clocks_start"], state["clocks_end"]):
        assert reading["gpu"]["cur_hz"] == reading["gpu"]["max_hz"] == 1300500000
        assert reading["emc"]["cur_hz"] == reading["emc"]["max_hz"]
        assert all(cpu["cur_hz"] == cpu["max_hz"] for cpu in reading["cpus"] if cpu["online"])


def test_clocks_leave_changes_nothing(edgeprof_cli, tx2):
    before = board_state(tx2)
    [result] = json_lines(edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "2", "--clocks", "leave",
                                       "--json", check=0).stdout)
    assert board_state(tx2) == before
    assert result["state"]["clocks_pinned"] is False and result["state"]["clocks_policy"] == "leave"
    assert result["state"]["power_mode"]["mode_name"] == "MAXP_CORE_ARM"
    assert result["state"]["clocks_start"]["gpu"] == result["state"]["state_before"]["clocks"]["gpu"]


def test_sigkill_of_the_host_process_the_board_restores_itself(edgeprof_cli, lab_inventory, tx2):
    before = board_state(tx2)
    lease_s = 10
    proc = start_measure(edgeprof_cli, lab_inventory, *VGG_FOREVER, "--lease", str(lease_s))
    wait_for(lambda: caffe_running(tx2), 60, "caffe to start")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = time.monotonic()
    assert "NV Power Mode: MAXN" in board_state(tx2)
    wait_for(lambda: board_state(tx2) == before, lease_s + 10, "the board to restore itself")
    print(f"restored {time.monotonic() - killed_at:.1f} s after SIGKILL (lease {lease_s} s)")
    assert not caffe_running(tx2)  # the guard stopped the orphaned benchmark too
    assert tx2.run(["sh", "-c", "ls -d /tmp/edgeprof.* 2>/dev/null"]).stdout == ""
    # The next contact reports what happened.
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", "--json", check=0)
    assert "was interrupted; the board restored its own state" in proc.stderr
    [result] = json_lines(proc.stdout)
    assert any("interrupted" in notice for notice in result["state"]["notices"])
    # Reported once, then cleared.
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", "--json", check=0)
    assert "interrupted" not in proc.stderr


def test_two_runs_on_one_board_never_overlap(edgeprof_cli, lab_inventory, tx2):
    first = start_measure(edgeprof_cli, lab_inventory, "alexnet", "--iterations", "40")
    wait_for(lambda: caffe_running(tx2), 60, "caffe to start")
    refused = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", check=2)
    assert "in use by another edgeprof run" in refused.stderr and "--wait" in refused.stderr
    second = start_measure(edgeprof_cli, lab_inventory, "googlenet", "-n", "2", "--wait", "300")
    out1, _ = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err2
    [a], [b] = json_lines(out1), json_lines(out2)
    assert a["finished_at"] < b["started_at"]
    assert "busy" in err2


def test_sudo_password_from_environment(edgeprof_cli, lab_inventory, tx2):
    password = (lab_inventory.parent / "sudo_password").read_text().strip()
    before = board_state(tx2)
    proc = edgeprof_cli("measure", "--device", "sim-tx2-pw", "alexnet", "-n", "1", "--sudo-password-env", "LAB_PW",
                        "--json", env={"LAB_PW": password}, check=0)
    [result] = json_lines(proc.stdout)
    assert result["state"]["power_mode"]["mode_name"] == "MAXN"
    assert password not in proc.stdout + proc.stderr
    full = edgeprof_cli("results", "show", result["id"], "--json", check=0).stdout
    assert password not in full
    assert board_state(tx2) == before


def test_wrong_sudo_password_changes_nothing(edgeprof_cli, tx2):
    before = board_state(tx2)
    proc = edgeprof_cli("measure", "--device", "sim-tx2-pw", "alexnet", "--sudo-password-env", "LAB_PW",
                        env={"LAB_PW": "not-the-password"}, check=2)
    assert "sudo refused" in proc.stderr and "Nothing on the board was changed" in proc.stderr
    assert board_state(tx2) == before and lease_folder(tx2) == ""


def test_sudo_password_from_the_prompt(lab_inventory, tmp_path, tx2):
    password = (lab_inventory.parent / "sudo_password").read_text().strip()
    pid, fd = pty.fork()
    if pid == 0:  # child: a terminal session, as a user at a shell
        os.environ.update(HOME=str(tmp_path), EDGEPROF_DB=str(tmp_path / "r.sqlite"),
                          EDGEPROF_INVENTORY=str(lab_inventory))
        os.execv(sys.executable, [sys.executable, "-m", "edgeprof.cli", "measure", "--device", "sim-tx2-pw",
                                  "alexnet", "-n", "1", "--json"])
    seen = b""
    deadline = time.monotonic() + 60
    while b"sudo password for sim-tx2-pw" not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(fd, 1024)
    os.write(fd, password.encode() + b"\n")
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode()
    after_prompt = seen.split(b"sudo password for sim-tx2-pw", 1)[1].decode()
    assert password not in after_prompt  # not echoed
    assert '"mode_name": "MAXN"' in after_prompt


def test_a_board_control_failure_between_items_fails_that_item_and_the_sweep_goes_on(lab_inventory, tx2, tmp_path):
    """`jetson_clocks --show` refused between two items (the sim's show_fails hook, set during the cooldown
    before item 2 and removed during the one before item 3): item 2 fails saying why, items 1 and 3 are
    measured, and the board is restored; only a lost connection ends a sweep."""
    from edgeprof.backends import Options
    from edgeprof.session import measure
    from edgeprof.storage import open_store
    hook = "/var/lib/jetson-sim/show_fails"
    cooldowns = []

    def on_status(message):
        if "cooling down" in message:
            cooldowns.append(message)
            change = f"echo 'cannot read the EMC clock' > {hook}" if len(cooldowns) == 1 else f"rm -f {hook}"
            assert tx2.run(["sudo", "sh", "-c", change]).ok

    before = board_state(tx2)
    try:
        with open_store(tmp_path / "results.sqlite") as store:
            results = measure("sim-tx2", ["alexnet"], batches=(1, 2, 3), options=Options(iterations=1), store=store,
                              inventory=str(lab_inventory), cooldown_s=0.1, on_status=on_status)
            stored = store.query()
    finally:
        tx2.run(["sudo", "rm", "-f", hook])
    assert len(cooldowns) == 2
    assert [(r.batch, r.status) for r in results] == [(1, "ok"), (2, "failed"), (3, "ok")]
    assert results[1].error.startswith("not run: reading the clocks before it failed: sim-tx2: `jetson_clocks "
                                       "--show` failed (exit 1): cannot read the EMC clock")
    assert len(stored) == 3
    assert board_state(tx2) == before


def test_a_dead_run_of_this_host_is_named_and_taken_over_on_request(edgeprof_cli, lab_inventory, tx2):
    """SIGKILL leaves the lease to its guard for --lease seconds; the next run from this host sees that
    the holder's process is gone, says so, and with --take-over-dead restores the board and measures now."""
    before = board_state(tx2)
    proc = start_measure(edgeprof_cli, lab_inventory, *VGG_FOREVER, "--lease", "600")
    wait_for(lambda: caffe_running(tx2), 60, "caffe to start")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    refused = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", check=2)
    assert f"pid {proc.pid}) is gone from this host: pass --take-over-dead" in refused.stderr
    assert "NV Power Mode: MAXN" in board_state(tx2) and caffe_running(tx2)   # nothing was touched
    taken = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", "--take-over-dead", "--json",
                         check=0)
    assert "had died on this host; edgeprof restored the board's state now" in taken.stderr
    [result] = json_lines(taken.stdout)
    assert result["state"]["state_before"]["power_mode"]["mode_name"] == "MAXP_CORE_ARM"   # restored first
    assert not caffe_running(tx2) and board_state(tx2) == before
