"""What every result records about its model before a backend adds its own: the input shapes as run."""
from edgeprof.board import Board
from edgeprof.devices import get_device
from edgeprof.models import resolve


def test_a_result_records_the_input_shape_it_ran():
    board = Board(get_device("local"), transport=None, run_id="r1")
    result = board.new_result(resolve("alexnet"), "caffe", 4)
    assert result.model_info["input_shapes"] == {"data": [4, 3, 227, 227]}
    assert board.new_result(resolve("torchvision:resnet18"), "pytorch", 2).model_info["input_shapes"] is None


def test_the_probe_makes_the_work_folder_and_asks_sudo_only_when_told(tmp_path, monkeypatch):
    """sudo reports a user it refuses to the board's admin, so the probe runs `sudo -n true` only for a run
    that will use sudo (power.needs_root): never for a desktop under --clocks leave."""
    import dataclasses
    import os
    import shutil

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
    facts, workdir, passwordless = probe(LocalTransport(), sudo=needs_root(local, leave))
    try:
        assert passwordless is None and not asked.exists() and "workdir" not in facts and facts["cpus"] >= 1
        assert os.stat(workdir).st_mode & 0o777 == 0o700 and workdir.startswith("/tmp/edgeprof.")
    finally:
        shutil.rmtree(workdir)
    facts, workdir, passwordless = probe(LocalTransport(), sudo=True)
    shutil.rmtree(workdir)
    assert passwordless is False and asked.read_text() == "-n true\n" and "sudo" not in facts
