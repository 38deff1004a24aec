"""edgeprof/onboard/lease.sh on this machine's own /bin/sh, as an unprivileged user would meet it: the folder
checks that stand between another user's files and root. The lab tests (tests/integration/test_lease.py) run
it through sudo on sim-tx2; these pin the checks one by one, with shellcheck on every shell file shipped."""
import os
import shutil
import time
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from edgeprof.power.lease import Restore, lease_script

ONBOARD = Path(resources.files("edgeprof.onboard"))


@pytest.mark.parametrize("script", sorted(ONBOARD.glob("*.sh")), ids=lambda p: p.name)
def test_shellcheck_finds_nothing(script):
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is missing: run tests/setup")
    done = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def lease(tmp_path, *args):
    return subprocess.run(["sh", "-c", lease_script(), "lease.sh", args[0], str(tmp_path / "base/lease"),
                           *args[1:]], capture_output=True, text=True)


def test_acquire_makes_a_private_folder_and_a_second_acquire_is_busy(tmp_path):
    assert lease(tmp_path, "acquire", "60", "run a").stdout == "acquired\n"
    assert oct((tmp_path / "base").stat().st_mode & 0o777) == ("0o755" if os.geteuid() == 0 else "0o700")
    busy = lease(tmp_path, "acquire", "60", "run b")
    assert busy.returncode == 3 and busy.stdout == "busy run a\n"


@pytest.mark.parametrize("tamper, found", [
    (lambda d: (d / "owner").chmod(0o664), "owner is writable by group or others (mode 664)"),
    (lambda d: d.chmod(0o757), "lease is writable by group or others (mode 757)"),
    (lambda d: (d / "clocks.conf").symlink_to("/etc/passwd"), "clocks.conf is a symbolic link"),
    (lambda d: (d / "restore").mkdir(), "restore is not a regular file"),
])
def test_every_action_refuses_a_tampered_folder(tmp_path, tamper, found):
    assert lease(tmp_path, "acquire", "60", "run a").returncode == 0
    tamper(tmp_path / "base/lease")
    for action in (["acquire", "60", "run b"], ["record", "nvpmodel 0"], ["renew", "60", "run a"],
                   ["release", "run a"], ["restore-stale"]):
        done = lease(tmp_path, *action)
        assert done.returncode == 5 and done.stdout.startswith("unsafe ") and found in done.stdout, action
    assert (tmp_path / "base/lease").is_dir()


def test_restore_values_are_checked_before_they_become_commands(tmp_path):
    assert lease(tmp_path, "acquire", "60", "run a").returncode == 0
    marker = tmp_path / "ran"
    (tmp_path / "base/lease/restore").write_text(
        f"stop_work /tmp/edgeprof.x;touch${{IFS}}{marker}\nnvpmodel 1;touch {marker}\n"
        f"nvpmodel_first $(touch {marker})\nsh -c 'touch {marker}'\n")
    done = lease(tmp_path, "release", "run a")
    assert done.returncode == 1 and not marker.exists()
    assert done.stderr.splitlines() == [f"ignored: stop_work /tmp/edgeprof.x;touch${{IFS}}{marker}",
                                        f"ignored: nvpmodel 1;touch {marker}",
                                        f"ignored: nvpmodel_first $(touch {marker})", "ignored: sh"]
    assert not (tmp_path / "base/lease").exists()


def test_restore_data_is_validated_on_the_host_too():
    assert Restore(stop_work="/tmp/edgeprof.Ab12cd34", jetson_clocks=True, nvpmodel=3).text() == \
        "stop_work /tmp/edgeprof.Ab12cd34\njetson_clocks\nnvpmodel 3"
    # A power-mode sweep passes through the max mode first; id 0 is a mode, not "no step".
    assert Restore(nvpmodel_first=0, jetson_clocks=True, nvpmodel=0).text() == \
        "nvpmodel_first 0\njetson_clocks\nnvpmodel 0"
    for bad in ({"stop_work": "/tmp/edgeprof.x/../../etc"}, {"stop_work": "/home/u"}, {"nvpmodel": "0; reboot"},
                {"nvpmodel": -1}, {"nvpmodel": True}, {"nvpmodel_first": "0; reboot"}):
        with pytest.raises(ValueError):
            Restore(**bad)


def test_take_over_acts_on_the_named_owner_only_and_restores(tmp_path):
    assert lease(tmp_path, "acquire", "600", "run a from h pid 1").returncode == 0
    wrong = lease(tmp_path, "take-over", "run b from h pid 2")
    assert wrong.returncode == 3 and wrong.stdout == "lost run a from h pid 1\n"
    assert lease(tmp_path, "take-over", "run a from h pid 1").returncode == 0
    [record] = (tmp_path / "base").glob("interrupted.*.takeover")
    assert (record / "owner").read_text() == "run a from h pid 1\n" and not (tmp_path / "base/lease").exists()


def test_record_with_store_clocks_stores_them_first_and_records_nothing_when_that_fails(tmp_path):
    assert lease(tmp_path, "acquire", "60", "run a").returncode == 0
    tools = tmp_path / "bin"
    tools.mkdir()
    jetson_clocks = tools / "jetson_clocks"
    # jetson_clocks --store FILE writes FILE (the sysfs paths and values it read); this one fails when asked to.
    stored = "/sys/devices/gpu.0/devfreq/17000000.gp10b/min_freq:114750000"
    jetson_clocks.write_text(f'#!/bin/sh\n[ -e "${{0%/*}}/fail" ] && exit 2\n'
                             f'[ "$1" = --store ] && echo "{stored}" > "$2"\n')
    jetson_clocks.chmod(0o755)
    path = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}

    def record(*args):
        return subprocess.run(["sh", "-c", lease_script(), "lease.sh", "record", str(tmp_path / "base/lease"), *args],
                              capture_output=True, text=True, env=path)
    (tools / "fail").touch()
    assert record("jetson_clocks\nnvpmodel 3", "store-clocks").returncode == 1
    assert not (tmp_path / "base/lease/restore").exists() and not (tmp_path / "base/lease/clocks.conf").exists()
    (tools / "fail").unlink()
    assert record("jetson_clocks\nnvpmodel 3", "store-clocks").returncode == 0
    assert (tmp_path / "base/lease/clocks.conf").read_text().startswith("/sys/devices/gpu.0/")
    assert (tmp_path / "base/lease/restore").read_text() == "jetson_clocks\nnvpmodel 3\n"


def test_acquire_records_the_first_restore_steps_and_starts_the_guard_that_applies_them(tmp_path):
    """One round trip takes the lease, records its restore steps and starts its guard: left unrenewed, the
    guard applies them once the lease runs out (here a work folder stopped and removed) and leaves a record."""
    work = Path(subprocess.run(["mktemp", "-d", "/tmp/edgeprof.XXXXXXXX"], capture_output=True, text=True,
                               check=True).stdout.strip())
    try:
        restore = Restore(stop_work=str(work)).text()
        taken = lease(tmp_path, "acquire", "1", "run a", restore, lease_script())
        assert taken.returncode == 0 and taken.stdout == "acquired\n"
        assert (tmp_path / "base/lease/restore").read_text() == restore + "\n"
        deadline = time.monotonic() + 10
        while not list((tmp_path / "base").glob("interrupted.*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        [record] = (tmp_path / "base").glob("interrupted.*")
        assert (record / "owner").read_text() == "run a\n" and not work.exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
