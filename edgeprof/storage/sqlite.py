"""SQLite result store.

Each result is written in its own transaction the moment it completes, so a crash or Ctrl-C later in a sweep
loses nothing already measured. The full JSON document is stored next to a few indexed columns; the raw log
and commands go in their own columns because tables never need them.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from ..result import Result

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    batch INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    doc TEXT NOT NULL,
    commands TEXT NOT NULL,
    raw_log TEXT NOT NULL,
    prototxt_diff TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_item ON results (device, model, backend, batch);
CREATE INDEX IF NOT EXISTS results_by_run ON results (run_id);
"""


def default_db_path() -> Path:
    if os.environ.get("EDGEPROF_DB"):
        return Path(os.environ["EDGEPROF_DB"]).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "edgeprof" / "results.sqlite"


class ResultStore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer during a sweep
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} was written by a newer edgeprof (schema {version}); upgrade edgeprof")
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def add(self, result: Result) -> int:
        doc = result.to_dict()
        doc.pop("id")
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO results (run_id, device, model, backend, batch, status, error, doc, commands, raw_log,"
                " prototxt_diff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result.run_id, result.device, result.model, result.backend, result.batch, result.status,
                 result.error, json.dumps(doc), json.dumps(result.commands), result.raw_log,
                 result.prototxt_diff))
        result.id = cursor.lastrowid
        return result.id

    def get(self, result_id: int) -> Result | None:
        row = self._db.execute("SELECT id, doc, commands, raw_log, prototxt_diff FROM results WHERE id = ?",
                               (result_id,)).fetchone()
        return self._row(row) if row else None

    def query(self, *, device: str | None = None, model: str | None = None, backend: str | None = None,
              run_id: str | None = None, limit: int | None = None) -> list[Result]:
        where, args = [], []
        for column, value in (("device", device), ("model", model), ("backend", backend), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT id, doc, commands, raw_log, prototxt_diff FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._row(r) for r in self._db.execute(sql, args)]

    def plan_items_ok(self, plan_hash: str) -> set[str]:
        """The keys of a plan's items stored ok (edgeprof.lab resumes a plan by skipping them)."""
        rows = self._db.execute(
            "SELECT json_extract(doc, '$.plan.item') FROM results WHERE status = 'ok' AND "
            "json_extract(doc, '$.plan.hash') = ?", (plan_hash,))
        return {item for (item,) in rows}

    def query_plan(self, plan_hash: str) -> list[Result]:
        sql = ("SELECT id, doc, commands, raw_log, prototxt_diff FROM results "
               "WHERE json_extract(doc, '$.plan.hash') = ? ORDER BY id")
        return [self._row(r) for r in self._db.execute(sql, (plan_hash,))]

    @staticmethod
    def _row(row) -> Result:
        result_id, doc, commands, raw_log, diff = row
        result = Result.from_dict(json.loads(doc))
        result.id, result.commands, result.raw_log, result.prototxt_diff = result_id, json.loads(commands), raw_log, diff
        return result

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
