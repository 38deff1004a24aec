"""A dropped SSH connection: mid-item, edgeprof reconnects, runs the item whose result did not come back once
more on the new connection, and goes on, each item stored once (edgeprof.transport.reconnecting,
session.Sweep); during the board's restore, it releases the board again (power.lease). Also what the transport
makes of a dead link, of a file the board refuses, and of a board too slow to answer its lease renewals. The
drops are real: the board's sshd processes serving the connection are killed or stopped (found in the copy's
network namespace), as when a board's sshd restarts, its link resets or the board is starved of CPU."""
import os
import subprocess
import time

import pytest

from ..conftest import json_lines
from .test_power import start_measure


def netns_processes(board: str) -> dict[int, str]:
    """pid -> command line of the processes in the board's network namespace (the lab's ep-NAME)."""
    pids = subprocess.run(["ip", "netns", "pids", f"ep-{board}"], capture_output=True, text=True).stdout.split()
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[int(pid)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            pass    # it ended meanwhile
    return found


def test_a_connection_killed_mid_item_is_reconnected_and_the_item_run_once_more(edgeprof_cli, lab_inventory,
                                                                                 copies):
    board = copies[-1].name
    proc = start_measure(edgeprof_cli, lab_inventory, "alexnet", "googlenet", "--iterations", "20", "--wait", "600",
                         device=board)
    try:
        deadline = time.monotonic() + 600      # --wait 600: other tests may hold the board first
        while not any("caffe time -model" in cmd and "alexnet" in cmd for cmd in netns_processes(board).values()):
            assert time.monotonic() < deadline and proc.poll() is None, "caffe did not start on the board"
            time.sleep(0.2)
        sessions = [pid for pid, cmd in netns_processes(board).items() if cmd.startswith("sshd: edgeprof")]
        assert sessions
        subprocess.run(["kill", "-KILL", *map(str, sessions)], check=True)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    results = json_lines(out)
    assert [(r["model"], r["status"]) for r in results] == [("alexnet", "ok"), ("googlenet", "ok")], err
    assert "reconnected (attempt 1)" in err and "running the item again" in err
    stored = json_lines(edgeprof_cli("results", "list", "--json", check=0).stdout)
    assert sorted(r["model"] for r in stored) == ["alexnet", "googlenet"]      # each item stored once


def test_a_connection_killed_while_the_board_is_restored_is_reconnected_and_the_board_freed(edgeprof_cli,
                                                                                            lab_inventory, copies):
    """The link dies while the lease's release restores the board (the sim's restore_waits hook holds `jetson_clocks
    --restore` until the link is cut): edgeprof reconnects and releases again, so the board is restored and free
    at once, not only when its guard's lease runs out (a lab's next run found such boards busy)."""
    board = copies[-1].name
    hook = lab_inventory.parent / board / "var-lib-jetson-sim" / "restore_waits"    # the copy's /var/lib/jetson-sim
    hook.touch()
    proc = start_measure(edgeprof_cli, lab_inventory, "alexnet", "--iterations", "5", "--wait", "600", device=board)
    try:
        deadline = time.monotonic() + 600      # --wait 600: other tests may hold the board first
        # The simulated tool itself (the lease script's text, in its own command line, names it too).
        while not any("/usr/bin/jetson_clocks --restore" in cmd and "lease.sh" not in cmd
                      for cmd in netns_processes(board).values()):
            assert time.monotonic() < deadline and proc.poll() is None, "the board's restore did not start"
            time.sleep(0.2)
        sessions = [pid for pid, cmd in netns_processes(board).items() if cmd.startswith("sshd: edgeprof")]
        assert sessions
        subprocess.run(["kill", "-KILL", *map(str, sessions)], check=True)
        hook.unlink()
        out, err = proc.communicate(timeout=300)
    finally:
        hook.unlink(missing_ok=True)
        proc.kill()
    assert proc.returncode == 0, err
    assert [(r["model"], r["status"]) for r in json_lines(out)] == [("alexnet", "ok")], err
    assert "reconnected (attempt 1)" in err
    # Free now: a run that does not wait gets the board.
    edgeprof_cli("measure", "--device", board, "alexnet", "--iterations", "1", "--json", check=0)


@pytest.mark.parametrize("warm", [False, True], ids=["no-sftp-yet", "sftp-open"])
@pytest.mark.parametrize("call", [lambda t: t.run(["true"]), lambda t: t.put_text("/tmp/edgeprof-dead-link", "x"),
                                  lambda t: t.get_text("/etc/hostname")], ids=["run", "put_text", "get_text"])
def test_every_call_on_a_dead_connection_is_a_lost_connection(lab_inventory, copies, call, warm):
    """Once the board's sshd sessions are gone, each kind of call raises TransportError (what the reconnecting
    transport acts on), never paramiko's own EOFError or SSHException: one of those, from a file upload on a
    64-board lab, once ended a board's sweep as an "internal error" and lost its item."""
    from edgeprof.devices import connect, get_device
    from edgeprof.transport import TransportError
    board = copies[-1].name
    transport = connect(get_device(board, lab_inventory))
    try:
        if warm:
            transport.get_text("/etc/hostname")
            transport.run(["true"])
        sessions = [pid for pid, cmd in netns_processes(board).items() if cmd.startswith("sshd: edgeprof")]
        subprocess.run(["kill", "-KILL", *map(str, sessions)], check=True)
        time.sleep(0.5)
        with pytest.raises(TransportError, match="SSH connection"):
            call(transport)
    finally:
        transport.close()


def test_a_board_that_answers_its_renewals_late_keeps_its_lease(lab_inventory, copies):
    """A board too busy to answer for 7.5 s (its sshd stopped, as a starved board's is) while its 12 s lease is
    renewed every 3 s: the renewal sent meanwhile is answered late, and still keeps the lease, so the guard never
    restores the board under the run. (A renewal is stopped only when the lease would have run out anyway.)"""
    import signal
    from edgeprof.devices import connect, get_device
    from edgeprof.power.lease import acquire
    board = copies[-1].name
    transport = connect(get_device(board, lab_inventory))
    lease = acquire(transport, None, run_id="slowrenewal", lease_s=12, wait_s=0)
    sessions = []
    try:
        time.sleep(1)
        sessions = [pid for pid, cmd in netns_processes(board).items() if cmd.startswith("sshd: edgeprof")]
        for pid in sessions:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(7.5)
        for pid in sessions:
            os.kill(pid, signal.SIGCONT)
        time.sleep(13)      # longer than the lease: only the renewals after the stall keep it
        assert lease._renewer.is_alive()
        assert transport.run(["cat", f"{lease.path}/owner"]).stdout.strip() == lease.owner
    finally:
        for pid in sessions:
            os.kill(pid, signal.SIGCONT)
        lease.release()
        transport.close()


def test_a_file_the_board_refuses_is_no_lost_connection(lab_inventory, copies):
    """No such folder: the board's answer comes back as RemoteFileError through the reconnecting transport,
    which does not reconnect for it (a lab run whose work folder its guard had removed reconnected and ran the
    item again, to fail the same way, saying the connection had dropped)."""
    from edgeprof.devices import connect, get_device
    from edgeprof.transport import RemoteFileError
    from edgeprof.transport.reconnecting import ReconnectingTransport
    device = get_device(copies[-1].name, lab_inventory)
    transport = ReconnectingTransport(lambda: connect(device))
    try:
        with pytest.raises(RemoteFileError, match="cannot write /nonexistent-folder/x: No such file"):
            transport.put_text("/nonexistent-folder/x", "x")
        with pytest.raises(RemoteFileError, match="cannot read /nonexistent-folder/x: No such file"):
            transport.get_text("/nonexistent-folder/x")
        assert transport.reconnects == 0 and transport.run(["true"]).ok
    finally:
        transport.close()
