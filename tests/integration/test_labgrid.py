"""Boards from a real labgrid coordinator and exporter on loopback (tests/labgrid_server.py), with places for
the last two of the lab's copies of sim-tx2, tagged family=tx2. edgeprof gets no inventory: the places'
NetworkService resources and tags are all it knows; SSH keys come from ~/.ssh as for any host."""
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from edgeprof.storage import open_store

from ..labgrid_server import LabgridServer
from .test_lab import write_plan

LENET = Path(__file__).resolve().parent.parent / "lab" / "models" / "lenet.prototxt"


@pytest.fixture
def labgrid(copies, tmp_path):
    try:
        import labgrid  # noqa: F401
    except ImportError:
        if os.environ.get("EDGEPROF_LAB_REQUIRED") == "1":
            pytest.fail("labgrid is required: run tests/setup")
        pytest.skip("needs labgrid (pip install -e '.[labgrid]')")
    server = LabgridServer(tmp_path / "labgrid").start(
        {b.name: {"address": b.host, "username": b.user, "family": b.profile.family} for b in copies[-2:]})
    yield server
    server.stop()


@pytest.fixture
def edgeprof(tmp_path, labgrid, lab_inventory):
    """Start `edgeprof ARGS...` against the coordinator, with a private HOME whose ~/.ssh knows the lab."""
    lab = lab_inventory.read_text()
    key = next(line.split('"')[1] for line in lab.splitlines() if line.startswith("key ="))
    known_hosts = next(line.split('"')[1] for line in lab.splitlines() if line.startswith("known_hosts ="))
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "config").write_text(f"Host *\n  IdentityFile {key}\n")
    (ssh / "known_hosts").write_text(Path(known_hosts).read_text())
    env = {**os.environ, "HOME": str(ssh.parent), "EDGEPROF_DB": str(tmp_path / "results.sqlite"),
           "LG_COORDINATOR": labgrid.address}
    env.pop("EDGEPROF_INVENTORY", None)
    files = ExitStack()
    count = iter(range(100))

    def start(*args) -> subprocess.Popen:
        # Output to files: a pipe nobody reads yet could stop a process that holds a place.
        n = next(count)
        process = subprocess.Popen([sys.executable, "-m", "edgeprof.cli", *map(str, args)], env=env,
                                   stdout=files.enter_context((tmp_path / f"out{n}").open("w")),
                                   stderr=files.enter_context((tmp_path / f"err{n}").open("w")))
        process.out, process.err = tmp_path / f"out{n}", tmp_path / f"err{n}"
        return process

    start.db = str(tmp_path / "results.sqlite")
    yield start
    files.close()


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    process.wait(timeout)
    return process.returncode, process.out.read_text(), process.err.read_text()


def nothing_held(labgrid: LabgridServer) -> bool:
    return (labgrid.client("who").strip().splitlines()[1:] == []
            and labgrid.client("reservations").strip() == "")


def test_two_runs_asking_for_the_same_place_take_turns(labgrid, edgeprof, copies):
    place = copies[-1].name
    runs = [edgeprof("measure", LENET, "--place", place, "-n", "300", "--json", "--wait", "300") for _ in range(2)]
    outcomes = [finish(run) for run in runs]
    assert [rc for rc, _, _ in outcomes] == [0, 0], outcomes
    waited = [err for _, _, err in outcomes if f"waiting for labgrid to allocate name={place}" in err]
    assert len(waited) == 1, outcomes   # the second one queued in the coordinator...
    assert not any("is busy" in err for _, _, err in outcomes)   # ...so the board's lease never had to wait
    with open_store(edgeprof.db) as store:
        results = store.query()
    assert [r.device for r in results] == [place, place] and all(r.status == "ok" for r in results)
    first, second = sorted((r.timed_window["start_s"], r.timed_window["end_s"]) for r in results)
    assert first[1] <= second[0]   # no measurement overlapped on the board
    assert nothing_held(labgrid)


def test_a_plan_runs_on_reserved_places_and_gives_them_back(labgrid, edgeprof, copies, tmp_path):
    plan = write_plan(tmp_path / "plan.toml", devices="ignored-with-labgrid", iterations=10)
    rc, out, err = finish(edgeprof("run", plan, "--reserve", "family=tx2", "--count", "2", "--json", "--wait", "300"))
    assert rc == 0, err
    with open_store(edgeprof.db) as store:
        results = store.query()
    assert sorted(r.device for r in results) == sorted(b.name for b in copies[-2:] for _ in range(2))
    assert all(r.status == "ok" and r.device_facts["family"] == "tx2" for r in results)
    assert nothing_held(labgrid)


def test_a_reservation_not_satisfied_in_time_fails_clearly_and_is_withdrawn(labgrid, edgeprof, copies):
    place = copies[-1].name
    labgrid.client("-p", place, "acquire", user="alice")
    rc, out, err = finish(edgeprof("measure", LENET, "--place", place, "--wait", "2"))
    assert rc == 2
    assert f"labgrid reservation for name={place} not satisfied within 2 s" in err and "alice" in err, err
    assert labgrid.client("reservations").strip() == ""
    labgrid.client("-p", place, "release", "--kick")
    assert nothing_held(labgrid)


def test_ctrl_c_while_measuring_releases_the_place(labgrid, edgeprof, copies):
    place = copies[-1].name
    run = edgeprof("measure", LENET, "--place", place, "-n", "1000000", "--json", "--wait", "300")
    deadline = time.monotonic() + 120
    while "caffe lenet" not in run.err.read_text():
        assert run.poll() is None and time.monotonic() < deadline, run.err.read_text()
        time.sleep(0.2)
    assert place in labgrid.client("who")
    run.send_signal(signal.SIGINT)
    rc, _, err = finish(run, 120)
    assert rc == 130, err
    assert nothing_held(labgrid)
