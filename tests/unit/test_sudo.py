"""How edgeprof gets root on a board (edgeprof.transport.sudo), over this machine's own transport. The real
sudo of both kinds is met on the lab (sim-tx2's two logins: tests/integration/test_power.py), a root login
without sudo on sim-desktop (tests/integration/test_bad_input.py)."""
import pytest

from edgeprof.transport.local import LocalTransport
from edgeprof.transport.sudo import MISSING, ROOT, Sudo, SudoDenied


def test_a_root_login_runs_commands_itself_with_their_environment():
    done = Sudo(LocalTransport(), root_by=ROOT).run(["sh", "-c", 'echo "$EDGEPROF_TEST_VALUE"'],
                                                   env={"EDGEPROF_TEST_VALUE": "kept"})
    assert done.ok and done.stdout == "kept\n" and "sudo" not in done.command


def test_a_board_without_sudo_is_refused_saying_so():
    """As the probe found it (tests/unit/test_board.py runs the probe without sudo): not "sudo needs a
    password", which no password would cure."""
    sudo = Sudo(LocalTransport("board"), root_by=MISSING, ask=lambda prompt: pytest.fail("asked for a password"))
    with pytest.raises(SudoDenied, match=r"^board: this run needs root there \(power mode and clocks\) and the "
                                         r"board has no sudo\. Nothing on the board was changed\. Install sudo"):
        sudo.check()
