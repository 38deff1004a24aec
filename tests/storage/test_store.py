"""The result stores, SQLite and PostgreSQL, behave alike: every field back, filters, plans, schema
migrations, and writers in several processes at once."""
import json
import multiprocessing
import subprocess
import sys

import pytest

from edgeprof.result import Result
from edgeprof.storage import (SCHEMA_VERSION, PostgresResultStore, ResultStore, StoreError, default_db_path,
                              open_store)
from edgeprof.storage.documents import load_result


def sample(**changes) -> Result:
    result = Result(device="sim-tx2", model="alexnet", backend="caffe", batch=1, run_id="r1", span="caffe_forward",
                    figures={"forward_ms": 12.9, "layers": []}, raw_log="I... Average Forward pass: 12.9 ms.",
                    commands=[{"command": "caffe time", "exit_status": 0, "duration_s": 1.0}],
                    prototxt_diff="-dim: 10\n+dim: 1\n")
    result.latency_ms["mean"] = 12.9
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def in_plan(item: str, status: str = "ok", plan_hash: str = "h1") -> Result:
    result = sample(plan={"hash": plan_hash, "name": "p", "item": item})
    return result.fail("boom") if status != "ok" else result


def test_round_trip_keeps_everything(db):
    with open_store(db) as store:
        stored = sample(plan={"hash": "h1", "name": "p", "item": "a"}, telemetry={"samples": [{"t": 1.5}]})
        store.add(stored)
        back = store.get(stored.id)
    assert back.to_dict(full=True) == stored.to_dict(full=True)
    assert back.to_dict()["caffe"]["forward_ms"] == 12.9


def test_query_filters_newest_first(db):
    with open_store(db) as store:
        for model in ("alexnet", "vgg16", "alexnet"):
            store.add(sample(model=model))
        store.add(sample(model="alexnet", run_id="r2"))
        assert [r.id for r in store.query(model="alexnet")] == [4, 3, 1]
        assert [r.id for r in store.query(model="alexnet", run_id="r1", limit=1)] == [3]
        assert [r.id for r in store.query()] == [4, 3, 2, 1]


def test_failed_result_keeps_its_error(db):
    with open_store(db) as store:
        failed = sample().fail("caffe aborted (SIGABRT): Not Implemented Yet")
        store.add(failed)
        assert store.get(failed.id).status == "failed"
        assert store.get(failed.id).error.startswith("caffe aborted")
        assert store.get(999) is None


def test_plan_items_ok_counts_only_ok_items_of_that_plan(db):
    with open_store(db) as store:
        for result in (in_plan("a"), in_plan("b", "failed"), in_plan("c", plan_hash="h2"), sample()):
            store.add(result)
        assert store.plan_items_ok("h1") == {"a"}
        assert [r.plan["item"] for r in store.query_plan("h1")] == ["a", "b"]
    with open_store(db) as store:  # reopened: nothing migrates twice, nothing lost
        assert store.plan_items_ok("h2") == {"c"}
        assert len(store.query()) == 4


def test_plan_items_ok_of_one_device(db):
    # What a lab's board thread asks before each item: its own board's items only.
    with open_store(db) as store:
        for result in (in_plan("a"), sample(device="sim-tx2-02", plan={"hash": "h1", "name": "p", "item": "b"}),
                       in_plan("c", "failed")):
            store.add(result)
        assert store.plan_items_ok("h1", "sim-tx2") == {"a"}
        assert store.plan_items_ok("h1", "sim-tx2-02") == {"b"}
        assert store.plan_items_ok("h1", "sim-tx2-03") == set()
        assert store.plan_items_ok("h1") == {"a", "b"}


def test_a_store_with_a_small_cache_keeps_working(db):
    with open_store(db) as store:
        store.cache_at_most(64)
        for item in "abc":
            store.add(in_plan(item))
        assert store.plan_items_ok("h1", "sim-tx2") == {"a", "b", "c"}
    if not db.startswith("postgres"):
        with open_store(db) as store:
            store.cache_at_most(64)
            assert store._db.execute("PRAGMA cache_size").fetchone()[0] == -64


class _Version1:
    """The store as edgeprof 0.1 left it: schema version 1, the plan only inside the JSON document."""

    def _migrate(self, target=SCHEMA_VERSION):
        super()._migrate(1)

    def add_v1(self, result: Result) -> None:
        # The INSERT of edgeprof 0.1, which had no plan columns.
        doc = result.to_dict()
        doc.pop("id")
        with self._transaction():
            self._execute("INSERT INTO results (run_id, device, model, backend, batch, status, error, doc, commands,"
                          " raw_log, prototxt_diff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (result.run_id, result.device, result.model, result.backend, result.batch,
                           result.status, result.error, json.dumps(doc), json.dumps(result.commands),
                           result.raw_log, result.prototxt_diff))


class _SQLiteV1(_Version1, ResultStore):
    pass


class _PostgresV1(_Version1, PostgresResultStore):
    pass


def test_a_version_1_database_is_migrated_and_keeps_its_plans(db):
    old = (_PostgresV1 if db.startswith("postgresql://") else _SQLiteV1)(db)
    with old:
        with old._transaction():
            assert old._locked_version() == 1
        old.add_v1(in_plan("a"))
        old.add_v1(in_plan("b", "failed"))
        old.add_v1(sample())
    with open_store(db) as store:
        with store._transaction():
            assert store._locked_version() == SCHEMA_VERSION
        assert store.plan_items_ok("h1") == {"a"}
        assert [r.plan["item"] for r in store.query_plan("h1")] == ["a", "b"]
        store.add(in_plan("c"))
        assert store.plan_items_ok("h1") == {"a", "c"}
        assert [r.id for r in store.query()] == [4, 3, 2, 1]


def test_a_newer_schema_is_refused(db):
    with open_store(db) as store:
        with store._transaction():
            store._set_version(SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"newer edgeprof \\(schema {SCHEMA_VERSION + 1}\\)"):
        open_store(db)


def _writer(db: str, writer: int, count: int, start) -> None:
    start.wait()
    with open_store(db) as store:
        for i in range(count):
            store.add(in_plan(f"{writer}|{i}"))


def test_writers_in_several_processes_lose_nothing(db):
    # They start together on a database nobody opened yet, so they also race to create the schema.
    writers, count = 6, 40
    context = multiprocessing.get_context("fork")
    start = context.Barrier(writers)
    processes = [context.Process(target=_writer, args=(db, w, count, start)) for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * writers
    with open_store(db) as store:
        stored = store.query_plan("h1")
    assert sorted(r.plan["item"] for r in stored) == sorted(f"{w}|{i}" for w in range(writers) for i in range(count))
    assert len({r.id for r in stored}) == writers * count


def test_edgeprof_db_selects_the_store(monkeypatch, tmp_path, postgres_url):
    monkeypatch.setenv("EDGEPROF_DB", postgres_url)
    with open_store() as store:
        assert isinstance(store, PostgresResultStore)
    with pytest.raises(StoreError, match="open_store"):
        ResultStore()
    monkeypatch.setenv("EDGEPROF_DB", str(tmp_path / "r.sqlite"))
    with open_store() as store:
        assert isinstance(store, ResultStore) and store.path == default_db_path() == tmp_path / "r.sqlite"


def test_unusable_postgres_is_a_clear_error(monkeypatch, postgres_server):
    with pytest.raises(StoreError, match=r"cannot open the results database postgresql://u:\*\*\*@127.0.0.1:1/x"):
        open_store("postgresql://u:secret@127.0.0.1:1/x")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(StoreError, match=r"pip install 'edgeprof\[postgres\]'"):
        open_store(postgres_server.url())


def test_a_row_stored_before_the_fixed_figures_key_loads_its_figures():
    """Documents of older edgeprof hold the figures only under the backend's name: they load as before, and a
    row of today holds the backend's own figures under "figures" too."""
    doc = sample(figures={"forward_ms": 12.9, "times_ms": [12.8, 13.0], "stop_reason": "fixed"}).to_dict()
    assert doc["figures"] == {"forward_ms": 12.9} and doc["caffe"]["times_ms"] == [12.8, 13.0]
    del doc["figures"]
    row = {"id": 1, "run_id": "r1", "device": "sim-tx2", "model": "alexnet", "backend": "caffe", "batch": 1,
           "status": "ok", "error": None, "doc": json.dumps(doc), "commands": "[]", "raw_log": "", "prototxt_diff": ""}
    loaded = load_result(row)
    assert loaded.figures["forward_ms"] == 12.9 and loaded.timing.times_ms == (12.8, 13.0)
    assert loaded.timing.stop_reason == "fixed" and not loaded.flags


# A separate process that opens the database, counts its results and closes it (as `edgeprof results` does).
COUNT = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM results').fetchone()[0])"


def count_from_another_process(path) -> int:
    return int(subprocess.run([sys.executable, "-c", COUNT, str(path)], check=True, capture_output=True,
                              text=True).stdout)


def test_a_second_store_in_one_process_never_drops_the_first_ones_locks(tmp_path):
    """POSIX locks belong to the process, and closing any descriptor of the file drops them all
    (https://www.sqlite.org/howtocorrupt.html, 2.2). A lab opens one store per board thread; had opening one
    read the file's header while another held the database, a reader in another process closing its
    connection would find no other user, checkpoint and delete the WAL the first store still writes to, and
    every later result of the run would be lost (CI saw a plan store 16 results and the file keep none)."""
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as first:
        first.add(sample())
        with ResultStore(path) as second:
            assert count_from_another_process(path) == 1
            first.add(sample())
            second.add(sample())
            assert count_from_another_process(path) == 3
    assert count_from_another_process(path) == 3
