"""`edgeprof run PLAN.toml` over the lab's copies of sim-tx2 (tests/lab/lab up --copies N): boards in
parallel, resume by plan hash, SIGKILL in the middle and every board restored by its own guard."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprof.devices import connect

from ..conftest import json_lines

MODELS = Path(__file__).resolve().parent.parent / "lab" / "models"
FLASHED_MODE = "NV Power Mode: MAXP_CORE_ARM\n3"


def write_plan(path, *, devices="tag:copy", iterations=20, lease_s=180, shuffle=False):
    path.write_text(f'''name = "lab-test"
devices = ["{devices}"]
models = ["{MODELS / 'lenet.prototxt'}", "{MODELS / 'cifar10_quick.prototxt'}"]
backends = ["caffe"]
iterations = {iterations}
lease_s = {lease_s}
shuffle = {str(shuffle).lower()}
seed = 3
''')
    return path


def power_state(board) -> tuple[str, str]:
    transport = connect(board)
    try:
        mode = transport.run(["sudo", "-n", "nvpmodel", "-q"]).stdout.strip()
        clocks = transport.run(["sudo", "-n", "jetson_clocks", "--show"]).stdout
        # The copies share the host's PID space: any caffe or tegrastats left would show on every board.
        leftovers = transport.run(["sh", "-c", "ls -d /var/lib/edgeprof/lease /tmp/edgeprof.* 2>/dev/null; "
                                   "pgrep -x caffe; pgrep -x tegrastats; true"]).stdout.strip()
        return mode, clocks, leftovers
    finally:
        transport.close()


def test_plan_runs_every_board_and_a_rerun_skips_what_is_stored(edgeprof_cli, copies, tmp_path):
    plan = write_plan(tmp_path / "plan.toml", shuffle=True)
    first = edgeprof_cli("run", plan, "--json", check=0)
    results = json_lines(first.stdout)
    assert len(results) == 2 * len(copies)
    assert {r["device"] for r in results} == {b.name for b in copies}
    assert all(r["status"] == "ok" and r["plan"]["hash"] == results[0]["plan"]["hash"] for r in results)
    # Shuffled per board with the plan's seed: not every board runs the models in the same order.
    orders = {}
    for r in sorted(results, key=lambda r: r["id"]):
        orders.setdefault(r["device"], []).append(r["model"])
    assert len({tuple(o) for o in orders.values()}) == 2
    again = edgeprof_cli("run", plan, "--json", check=0)
    assert json_lines(again.stdout) == []
    assert f"{2 * len(copies)} item(s) already stored" in again.stderr


def test_unknown_tag_is_refused_before_any_board_is_touched(edgeprof_cli, copies, tmp_path):
    plan = write_plan(tmp_path / "plan.toml", devices="tag:site=nowhere")
    proc = edgeprof_cli("run", plan, check=2)
    assert "no device matches 'tag:site=nowhere'" in proc.stderr and "family=tx2" in proc.stderr


def test_sigkill_mid_plan_then_rerun_loses_nothing_and_measures_nothing_twice(edgeprof_cli, copies, tmp_path,
                                                                                lab_inventory):
    before = {b.name: power_state(b) for b in copies}
    assert all(state[0] == FLASHED_MODE and state[2] == "" for state in before.values()), before
    plan = write_plan(tmp_path / "plan.toml", iterations=400, lease_s=10)
    env = {**os.environ, "HOME": str(edgeprof_cli.home), "EDGEPROF_DB": str(edgeprof_cli.db),
           "EDGEPROF_INVENTORY": str(lab_inventory)}
    # -X faulthandler: a plan that stores nothing in time is sent SIGABRT, and its threads' stacks say where
    # it stood. Its results go to a file: a pipe nobody reads would stop the plan at its first 64 KiB.
    with open(tmp_path / "results.jsonl", "w") as printed:
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "edgeprof.cli", "run", str(plan),
                                 "--json"], env=env, stdout=printed, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    stored = 0
    while stored < len(copies) // 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if edgeprof_cli.db.exists():
            stored = sqlite3.connect(edgeprof_cli.db).execute("SELECT count(*) FROM results").fetchone()[0]
    assert proc.poll() is None, "the plan finished before it could be killed: raise its iterations"
    if not stored:
        proc.send_signal(signal.SIGABRT)
        _, stacks = proc.communicate(timeout=60)
        pytest.fail(f"the plan stored nothing in 300 s; where its threads stood:\n{stacks[-20000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_with = sqlite3.connect(edgeprof_cli.db).execute("SELECT count(*) FROM results").fetchone()[0]
    assert 0 < killed_with < 2 * len(copies)

    # The guards restore each board once its 10 s lease runs out, and stop what still ran there.
    time.sleep(16)
    after = {b.name: power_state(b) for b in copies}
    assert after == before

    edgeprof_cli("run", plan, "--json", check=0)
    rows = sqlite3.connect(edgeprof_cli.db).execute(
        "SELECT json_extract(doc, '$.plan.item'), status FROM results").fetchall()
    ok_items = [item for item, status in rows if status == "ok"]
    assert len(ok_items) == len(set(ok_items)) == 2 * len(copies)  # none twice, none lost
    assert {b.name: power_state(b) for b in copies} == before


def test_a_board_of_two_items_costs_the_host_sixteen_commands_and_three_uploads(copies, lab_inventory, tmp_path,
                                                                                  monkeypatch):
    """A lab host pays for every SSH round trip (about a millisecond of its CPU each on our 2-core machines:
    benchmarks/lab_parallel.py), so a board's round trips are counted here and a change that adds one shows.
    Per board, 8 commands: the probe (which makes the work folder and checks sudo), the lease (acquire with its
    first restore step and guard; the clocks stored with the restore record; release), the power state read,
    the switch, pinning with the first settled read, the caffe search with its version; and 1 upload, the
    sampler (its three files as one zip). Per item, 4 commands: the sampler's start and stop, caffe, the clocks
    read after it; and the model's upload."""
    from collections import Counter

    from edgeprof.lab import Lab, Plan
    from edgeprof.transport import ssh
    seen = Counter()
    run, put_bytes = ssh.SSHTransport.run, ssh.SSHTransport.put_bytes

    def counted_run(self, argv, **options):
        seen[f"run {' '.join(map(str, argv))[:60]}"] += 1
        return run(self, argv, **options)

    def counted_put(self, path, data):
        seen[f"put {Path(path).name}"] += 1
        return put_bytes(self, path, data)
    monkeypatch.setattr(ssh.SSHTransport, "run", counted_run)
    monkeypatch.setattr(ssh.SSHTransport, "put_bytes", counted_put)
    plan = Plan(devices=[copies[-1].name], backends=["caffe"], iterations=20, name="round-trips",
                models=[str(MODELS / "lenet.prototxt"), str(MODELS / "cifar10_quick.prototxt")])
    done = Lab(str(lab_inventory), db=str(tmp_path / "results.sqlite")).run(plan)
    assert [r.status for r in done.results] == ["ok", "ok"]
    commands = sum(n for what, n in seen.items() if what.startswith("run "))
    uploads = sum(n for what, n in seen.items() if what.startswith("put "))
    assert (commands, uploads) == (16, 3), seen
