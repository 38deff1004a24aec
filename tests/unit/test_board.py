"""What every result records about its model before a backend adds its own: the input shapes as run; what
the board's probe finds."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from edgeprof.board import Board
from edgeprof.devices import get_device
from edgeprof.models import resolve
from edgeprof.onboard import source
from edgeprof.transport import WORKDIR_TEMPLATE


def test_a_result_records_the_input_shape_it_ran():
    board = Board(get_device("local"), transport=None, run_id="r1")
    result = board.new_result(resolve("alexnet"), "caffe", 4)
    assert result.model_info["input_shapes"] == {"data": [4, 3, 227, 227]}
    assert board.new_result(resolve("torchvision:resnet18"), "pytorch", 2).model_info["input_shapes"] is None


def test_the_probe_makes_the_work_folder_and_asks_sudo_only_when_told(tmp_path, monkeypatch):
    """sudo reports a user it refuses to the board's admin, so the probe runs `sudo -n true` only for a run
    that will use sudo (power.needs_root): never for a desktop under --clocks leave, and never for a root
    login, which needs no sudo."""
    import dataclasses

    from edgeprof.board import BoardPolicy, probe
    from edgeprof.devices import builtin_profiles
    from edgeprof.power import needs_root
    from edgeprof.transport.local import LocalTransport
    asked = tmp_path / "asked"
    (tmp_path / "sudo").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {asked}\n[ "$1" = -n ] && exit 1\n')
    (tmp_path / "sudo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    local = get_device("local")
    tx2 = dataclasses.replace(local, profile=builtin_profiles()["tx2"])
    leave, lock = BoardPolicy(clocks="leave"), BoardPolicy(clocks="lock")
    assert not needs_root(local, leave) and needs_root(local, lock) and needs_root(tx2, leave)
    assert not needs_root(local, BoardPolicy()) and needs_root(tx2, BoardPolicy())   # the families' defaults
    facts, workdir, root_by = probe(LocalTransport(), sudo=needs_root(local, leave))
    try:
        assert root_by is None and not asked.exists() and "workdir" not in facts and facts["cpus"] >= 1
        assert os.stat(workdir).st_mode & 0o777 == 0o700 and workdir.startswith("/tmp/edgeprof.")
    finally:
        shutil.rmtree(workdir)
    facts, workdir, root_by = probe(LocalTransport(), sudo=True)
    shutil.rmtree(workdir)
    assert "sudo" not in facts
    if os.geteuid() == 0:
        assert root_by == "root" and not asked.exists()
    else:
        assert root_by == "asks" and asked.read_text() == "-n true\n"


@pytest.mark.parametrize("sudo, root_by", [
    ("exit 0", "passwordless"),
    ("exit 1", "asks"),
    (None, "missing"),
])
def test_the_probe_tells_how_a_login_that_is_not_root_gets_root(sudo, root_by):
    """probe.sh run as nobody, with a PATH of this machine's tools and a sudo that answers `sudo -n true` as
    given (or none). The real sudo of both kinds is met on the lab (sim-tx2's two logins)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the probe as another user (setpriv)")
    # pytest's own folders are private to root: nobody's PATH goes in one of its own under /tmp.
    tools = Path(tempfile.mkdtemp(prefix="edgeprof-probe-test."))
    tools.chmod(0o755)
    for tool in ("mktemp", "id", "hostname", "uname", "nproc", "awk", "head", "tr", "grep", "python3"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    if sudo is not None:
        (tools / "sudo").write_text(f"#!/bin/sh\n{sudo}\n")
        (tools / "sudo").chmod(0o755)
    as_nobody = [shutil.which("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    try:
        done = subprocess.run([*as_nobody, "/bin/sh", "-c", source("probe.sh"), "probe.sh", WORKDIR_TEMPLATE, "sudo"],
                              capture_output=True, text=True, env={"PATH": str(tools)}, cwd="/")
    finally:
        shutil.rmtree(tools)
    workdir, said = done.stdout.splitlines()[:2]
    shutil.rmtree(workdir.removeprefix("workdir="))
    assert said == f"sudo={root_by}", done
