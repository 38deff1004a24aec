"""A team's shared PostgreSQL results database (edgeprof.storage.postgres) with the lab's copies of sim-tx2:
two `edgeprof run` processes started at once on the same plan store every item once."""
import os
import subprocess
import sys
from contextlib import ExitStack

from edgeprof.storage import open_store

from ..conftest import json_lines
from .test_lab import write_plan


def test_two_processes_running_one_plan_into_postgres_store_every_item_once(copies, postgres_url, tmp_path,
                                                                              lab_inventory):
    plan = write_plan(tmp_path / "plan.toml", iterations=10)
    env = {**os.environ, "HOME": str(tmp_path), "EDGEPROF_INVENTORY": str(lab_inventory)}
    env.pop("EDGEPROF_DB", None)
    # --wait: a board held by the other process is waited for, not given up; another engineer's run on the
    # shared lab may hold a board for a while too.
    argv = [sys.executable, "-m", "edgeprof.cli", "run", str(plan), "--db", postgres_url, "--json", "--wait", "600"]
    # Output to files, not pipes: a pipe read only after the other process ends would fill up and stop
    # its writer while it holds boards the other one waits for.
    logs = [(tmp_path / f"out{i}", tmp_path / f"err{i}") for i in range(2)]
    with ExitStack() as files:
        processes = [subprocess.Popen(argv, env=env, stdout=files.enter_context(out.open("w")),
                                      stderr=files.enter_context(err.open("w"))) for out, err in logs]
        for process in processes:
            process.wait(timeout=900)
    outputs = [(out.read_text(), err.read_text()) for out, err in logs]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(stderr for _, stderr in outputs)

    total = 2 * len(copies)
    measured = [json_lines(stdout) for stdout, _ in outputs]
    for results, (_, stderr) in zip(measured, outputs):
        # Each process accounts for every item: measured by itself, or found stored by the other.
        skipped = total - len(results)
        assert skipped == 0 or f"{skipped} item(s) already stored" in stderr, stderr
    keys = [r["plan"]["item"] for results in measured for r in results]
    assert len(keys) == len(set(keys)) == total
    (plan_hash,) = {r["plan"]["hash"] for results in measured for r in results}

    with open_store(postgres_url) as store:
        stored = store.query_plan(plan_hash)
    assert all(r.status == "ok" for r in stored)
    assert sorted(r.plan["item"] for r in stored) == sorted(keys)
    # No two measurements overlapped on a board: each board's timed windows are disjoint.
    for board in copies:
        windows = sorted((r.timed_window["start_s"], r.timed_window["end_s"]) for r in stored
                         if r.device == board.name)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(windows, windows[1:])), windows
