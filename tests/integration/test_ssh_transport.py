"""The SSH transport against the lab's real sshd: exit codes, streams, timeouts and Ctrl-C."""
import os
import signal
import subprocess
import sys
import time

import pytest

from edgeprof.devices import connect, get_device
from edgeprof.transport import CommandTimeout


@pytest.fixture
def board(lab_inventory):
    transport = connect(get_device("sim-tx2", lab_inventory))
    yield transport
    transport.close()


def remote_processes(board, pattern):
    # "[s]leep" matches "sleep" but not the command line of the shell running pgrep itself.
    return board.run(["pgrep", "-f", f"[{pattern[0]}]{pattern[1:]}"]).stdout.split()


def test_abort_comes_back_as_134_with_streams_apart(board):
    result = board.run(["sh", "-c", "echo out; echo err >&2; kill -ABRT $$"])
    assert (result.exit_status, result.stdout) == (134, "out\n")
    # The login shell adds its own report of the abort after the command's stderr.
    assert result.stderr.startswith("err\n") and "Aborted" in result.stderr


def test_arguments_reach_the_board_verbatim(board):
    weird = "a b; rm -rf / $(id) `id` 'quoted' \"double\" \\ * ~"
    assert board.run(["printf", "%s", weird]).stdout == weird


def test_one_connection_is_reused_and_fast(board):
    started = time.perf_counter()
    for _ in range(20):
        assert board.run(["true"]).ok
    assert board.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout == board.run(
        ["sh", "-c", "echo $SSH_CONNECTION"]).stdout
    # Not a speed assert: TCP_NODELAY makes ~20 commands take well under a second; without it ~1 s.
    print(f"20 commands: {time.perf_counter() - started:.3f} s")


def test_timeout_kills_the_remote_process(board):
    with pytest.raises(CommandTimeout, match="stopped it on the board"):
        board.run(["sleep", "47.5"], timeout=1)
    time.sleep(0.5)
    assert remote_processes(board, "sleep 47.5") == []


def test_ctrl_c_stops_the_measurement_on_the_board(edgeprof_cli, lab_inventory, tmp_path):
    env = {**os.environ, "HOME": str(edgeprof_cli.home), "EDGEPROF_DB": str(tmp_path / "r.sqlite"),
           "EDGEPROF_INVENTORY": str(lab_inventory)}
    proc = subprocess.Popen([sys.executable, "-m", "edgeprof.cli", "measure", "--device", "sim-tx2", "vgg16",
                             "--iterations", "1000", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    transport = connect(get_device("sim-tx2", lab_inventory))
    try:
        deadline = time.monotonic() + 60
        while not remote_processes(transport, "caffe time -model /tmp/edgeprof."):
            assert time.monotonic() < deadline, "caffe never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "interrupted" in err
        time.sleep(0.5)
        assert remote_processes(transport, "caffe time -model /tmp/edgeprof.") == []
        # The per-run folder is cleaned up too.
        assert transport.run(["sh", "-c", "ls -d /tmp/edgeprof.* 2>/dev/null"]).stdout == ""
    finally:
        transport.close()
        if proc.poll() is None:
            proc.kill()


def test_a_login_shell_that_prints_first_still_works(board, lab_inventory):
    """A .bashrc that echoes before its interactive check (a lab's banner): sshd runs it for every command
    (Debian's bash reads .bashrc under sshd), so its text comes before edgeprof's PID line."""
    bashrc = "/home/edgeprof-pw/.bashrc"
    assert board.run(["sudo", "sh", "-c", f"cp {bashrc} {bashrc}.orig && "
                                          f"sed -i '1i echo \"Welcome to lab board 7\"' {bashrc}"]).ok
    try:
        other = connect(get_device("sim-tx2-pw", lab_inventory))
        try:
            done = other.run(["sh", "-c", "echo out; sleep 0.2; echo more"])
            assert (done.exit_status, done.stdout) == (0, "out\nmore\n")
            with pytest.raises(CommandTimeout):
                other.run(["sleep", "46.5"], timeout=1)
            time.sleep(0.5)
            assert remote_processes(board, "sleep 46.5") == []   # the PID was still found, and killed
        finally:
            other.close()
    finally:
        board.run(["sudo", "mv", f"{bashrc}.orig", bashrc])
