"""The board lease on a shared board: another user of sim-tx2 (`nobody`, a real second account) plants what
they can, and edgeprof runs nothing of theirs, refuses a lease folder that is not its own, and leaves the board
as it found it (edgeprof/power/lease.py, edgeprof/onboard/lease.sh)."""
import os
import shlex
import subprocess

import pytest

from edgeprof.devices import connect, get_device

from ..conftest import json_lines
from .test_power import board_state

PLANTED_MARK = "/var/tmp/planted-script-ran"


def as_user(board, user: str, script: str) -> str:
    """Run `script` on sim-tx2 as `user` (root or nobody) through the login user's sudo."""
    done = board.run(["sudo", "-u", user, "sh", "-c", script])
    assert done.ok, done.stderr
    return done.stdout


@pytest.fixture
def clean_board(lab_inventory):
    """sim-tx2, with the lease places as a freshly flashed board has them, before and after the test."""
    board = connect(get_device("sim-tx2", lab_inventory))
    cleanup = f"rm -rf /var/lib/edgeprof/* /var/tmp/edgeprof /var/tmp/victim {PLANTED_MARK}"
    as_user(board, "root", cleanup)
    before = board_state(board)
    yield board
    as_user(board, "root", cleanup)
    assert board_state(board) == before
    board.close()


def planted_restore_script(path: str) -> str:
    """What a hostile user leaves for root to run: a script that marks that it ran and pins MAXN."""
    return f"printf 'touch {PLANTED_MARK}\\nnvpmodel -m 0\\n' > {path}/restore.sh; chmod 755 {path}/restore.sh"


def test_a_planted_lease_in_the_old_world_writable_folder_is_never_run(edgeprof_cli, clean_board):
    board = clean_board
    before = board_state(board)
    as_user(board, "root", "echo untouched > /var/tmp/victim && chmod 644 /var/tmp/victim")
    # As the old layout allowed anyone to: a stale lease with an old mtime, a restore script and a link where
    # root used to store the clocks.
    as_user(board, "nobody", "mkdir -p /var/tmp/edgeprof/lease && chmod 1777 /var/tmp/edgeprof && "
                           "echo 0 > /var/tmp/edgeprof/lease/expires && echo 'run x' > /var/tmp/edgeprof/lease/owner && "
                           "ln -s /var/tmp/victim /var/tmp/edgeprof/lease/clocks.conf && "
                           + planted_restore_script("/var/tmp/edgeprof/lease") +
                           " && touch -d '2020-01-01' /var/tmp/edgeprof/lease")
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", "--json", check=0)
    [result] = json_lines(proc.stdout)
    assert result["state"]["power_mode"]["mode_name"] == "MAXN"   # the run itself went ahead
    assert "edgeprof no longer uses it and ran nothing from it" in proc.stderr
    assert any("/var/tmp/edgeprof/lease" in notice for notice in result["state"]["notices"])
    assert as_user(board, "root", f"ls {PLANTED_MARK} 2>/dev/null || true") == ""
    assert as_user(board, "root", "cat /var/tmp/victim") == "untouched\n"
    assert board_state(board) == before
    # The planted folder is left as it was: it is not edgeprof's to remove.
    assert as_user(board, "root", "ls /var/tmp/edgeprof/lease").split() == ["clocks.conf", "expires", "owner",
                                                                          "restore.sh"]


@pytest.mark.parametrize("tamper, found", [
    ("chown -R nobody {d}", "belongs to uid 65534, not to uid 0"),
    ("chmod 666 {d}/restore", "is writable by group or others (mode 666)"),
    ("chmod 777 {d}", "is writable by group or others (mode 777)"),
    ("ln -s /etc/shadow {d}/clocks.conf", "is a symbolic link"),
    ("mv {d} /var/lib/edgeprof/real && ln -s /var/lib/edgeprof/real {d}", "/var/lib/edgeprof/lease is a symbolic link"),
])
def test_a_stale_lease_folder_not_edgeprofs_own_is_refused_and_kept(edgeprof_cli, clean_board, tamper, found):
    """A lease whose restore would pin MAXN if it ran, made unsafe in one way: refused, nothing run, kept."""
    board = clean_board
    before = board_state(board)
    d = "/var/lib/edgeprof/lease"
    as_user(board, "root", f"mkdir -p {d} && echo 0 > {d}/expires && echo 'run x' > {d}/owner && "
                         f"echo 'nvpmodel 0' > {d}/restore && touch -d 2020-01-01 {d} && " + tamper.format(d=d))
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "-n", "1", check=2)
    assert "edgeprof will not use its lease folder /var/lib/edgeprof/lease" in proc.stderr
    assert found in proc.stderr and "Nothing was run from it" in proc.stderr
    assert "sudo rm -rf /var/lib/edgeprof" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert board_state(board) == before
    assert "restore" in as_user(board, "root", f"ls {d}/")


def test_another_user_cannot_write_where_root_reads(edgeprof_cli, lab_inventory, clean_board):
    board = clean_board
    from .test_power import start_measure, wait_for, caffe_running
    proc = start_measure(edgeprof_cli, lab_inventory, "alexnet", "--iterations", "60")
    wait_for(lambda: caffe_running(board), 60, "caffe to start")
    lease = as_user(board, "root", "stat -c '%U %a %F' /var/lib/edgeprof /var/lib/edgeprof/lease "
                                 "/var/lib/edgeprof/lease/restore /var/lib/edgeprof/lease/clocks.conf")
    assert lease.splitlines() == ["root 755 directory", "root 755 directory", "root 644 regular file",
                                  "root 644 regular file"]
    for attempt in ("echo 'nvpmodel 0' >> /var/lib/edgeprof/lease/restore",
                    "ln -s /etc/shadow /var/lib/edgeprof/lease/clocks-frequencies.conf",
                    "mv /var/lib/edgeprof/lease /var/lib/edgeprof/mine",
                    "mkdir /var/lib/edgeprof/interrupted.1.1"):
        refused = board.run(["sudo", "-u", "nobody", "sh", "-c", attempt])
        assert not refused.ok and "Permission denied" in refused.stderr, attempt
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json_lines(out)[0]["status"] == "ok"
    assert as_user(board, "root", "ls -A /var/lib/edgeprof") == ""


def test_a_renewal_never_extends_another_runs_lease(clean_board):
    """`renew` and `release` act on this run's own lease only (its owner line): a run whose lease was taken
    over neither keeps the other one alive nor restores and removes it."""
    from edgeprof.power.lease import LEASE_DIR, lease_script
    board = clean_board
    as_user(board, "root", f"mkdir -p {LEASE_DIR} && echo 'run other' > {LEASE_DIR}/owner && "
                         f"echo 5 > {LEASE_DIR}/expires && echo 'nvpmodel 0' > {LEASE_DIR}/restore")
    before = board_state(board)
    for action in (["renew", "600", "run mine"], ["release", "run mine"]):
        done = board.run(["sudo", "sh", "-c", lease_script(), "lease.sh", action[0], LEASE_DIR, *action[1:]])
        assert done.exit_status == 3 and done.stdout == "lost run other\n"
    assert as_user(board, "root", f"cat {LEASE_DIR}/expires") == "5\n"
    assert board_state(board) == before


def test_without_sudo_a_lease_folder_another_user_made_is_refused(edgeprof_cli, lab_inventory, tmp_path):
    """sim-desktop (the host's own filesystem, login root) under --clocks leave keeps its lease in
    /var/tmp/edgeprof-0; a folder of that name that another user made first is refused."""
    base = "/var/tmp/edgeprof-0"
    if os.path.exists(f"{base}/lease"):
        pytest.skip(f"{base}/lease is in use on this host")
    subprocess.run(["rm", "-rf", base], check=True)
    subprocess.run(["runuser", "-u", "nobody", "--", "mkdir", "-m", "0777", base], check=True)
    try:
        proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "-n", "1",
                            check=2)
        assert f"edgeprof will not use its lease folder {base}/lease: {base} belongs to uid 65534" in proc.stderr
        assert f"rm -rf {shlex.quote(base)}" in proc.stderr and "Traceback" not in proc.stderr
        assert os.listdir(base) == []
    finally:
        subprocess.run(["rm", "-rf", base], check=True)
