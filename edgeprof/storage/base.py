"""What the SQLite and PostgreSQL result stores share: the schema, its migrations, and every query.

A store subclass supplies only its dialect: how to connect, how a write transaction starts, where the schema
version lives, and the two column definitions that differ (the id and the creation time). Every SQL string
here uses `?` placeholders; the dialect's `_sql()` turns them into its own.

Each result is written in its own transaction the moment it completes, so a crash or Ctrl-C later in a sweep
loses nothing already measured. The full JSON document is stored next to a few indexed columns; the raw log
and commands go in their own columns because tables never need them.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from urllib.parse import unquote

from ..errors import StoreError
from ..result import Result
from .documents import COLUMNS, load_result

_COLUMNS = ", ".join(COLUMNS)      # what every read selects: load_result's row

# libpq reads a connection string in one of two forms
# (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING): a URI, by its scheme, or
# keyword=value settings. psql takes any database name holding an "=" for settings
# (https://www.postgresql.org/docs/current/app-psql.html), but a SQLite path may hold one too
# (runs/batch=8/results.sqlite), so here settings are recognized by how they start: a keyword of letters,
# digits and underscores (all of libpq's are; a path starting with ".", "/" or "~" is not), then "=", with
# spaces allowed before and around it. A mistyped keyword still goes to libpq, which names it, and never
# becomes a file; a SQLite file named like settings is written ./host=x.
_URL_SCHEMES = ("postgresql://", "postgres://")
_CONNINFO_START = re.compile(r"\s*\w+\s*=", re.ASCII)


def is_postgres_url(target: str) -> bool:
    return target.startswith(_URL_SCHEMES)


def names_postgres(db: str | os.PathLike) -> bool:
    """Whether `db` names a PostgreSQL database: a postgresql:// URL or a libpq key=value connection string
    (host=db.lab dbname=edgeprof ...). A path object always names a SQLite file."""
    return isinstance(db, str) and (is_postgres_url(db) or _CONNINFO_START.match(db) is not None)


# libpq's connection parameters that hold a secret: the server password and the passphrase of the client's
# SSL key (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
_SECRET_KEYWORDS = ("password", "sslpassword")
# One setting of a libpq key=value connection string: a keyword, "=" with optional spaces around it, and a
# value that is either in single quotes or runs to the next space; in both a backslash takes the next
# character as it is (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING). An
# unterminated quote runs to the end. Anything else is a stray word, which libpq refuses.
_CONNINFO_WORD = re.compile(r"(?P<keyword>[^\s=]+)\s*=\s*(?P<value>'(?P<quoted>(?:\\.|[^\\'])*)(?:'|\\?\Z)"
                            r"|(?P<bare>(?:\\.|[^\s\\])*)\\?)|\S+", re.S)


def _passwords(target: str) -> list[tuple[int, int, str]]:
    """Where `target`, a postgresql:// URL or a libpq key=value string, writes a password: the start and end
    of each non-empty value as written, and the value as libpq reads it."""
    found = []
    if is_postgres_url(target):
        # A URI (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS): libpq looks
        # for the "@" that ends user:password up to the first "/" only, so a password may hold "?" or "#".
        # Up to the last "@" there: a password with a raw "@" in it is still covered whole.
        start = target.index("://") + 3
        authority_end = target.find("/", start)
        if authority_end == -1:
            authority_end = len(target)
        userinfo_end = target.rfind("@", start, authority_end)
        colon = target.find(":", start, userinfo_end) if userinfo_end != -1 else -1
        if colon != -1:
            found.append((colon + 1, userinfo_end))
        # The query: "&"-separated keyword=value, both percent-decoded by libpq (pass%77ord is password too).
        query = target.find("?", max(start, userinfo_end + 1))
        position = query + 1
        for setting in target[position:].split("&") if query != -1 else []:
            keyword, equals, _ = setting.partition("=")
            if equals and unquote(keyword) in _SECRET_KEYWORDS:
                found.append((position + len(keyword) + 1, position + len(setting)))
            position += len(setting) + 1
        return [(start, end, unquote(target[start:end])) for start, end in found if end > start]
    for match in _CONNINFO_WORD.finditer(target):
        if match["keyword"] in _SECRET_KEYWORDS and match.end("value") > match.start("value"):
            value = match["quoted"] if match["quoted"] is not None else match["bare"]
            found.append((*match.span("value"), re.sub(r"\\(.)", r"\1", value, flags=re.S)))
    return found


def redact(target: str) -> str:
    """`target`, a postgresql:// URL or a libpq key=value connection string, with every password in it (URL
    user:password@, ?password=..., password=... settings; sslpassword alike) written ***, for messages."""
    for start, end, _ in reversed(_passwords(target)):
        target = target[:start] + "***" + target[end:]
    return target


def hide_passwords(message: str, target: str) -> str:
    """`message`, a driver's error about connecting to `target`, with every password `target` holds written
    ***, both as written there and as libpq reads it (percent-decoded; unquoted): libpq quotes what it could
    not parse, e.g. 'invalid percent-encoded token: "pa%zzss"', or the whole URI."""
    secrets = {text for start, end, value in _passwords(target) for text in (target[start:end], value) if text}
    # Longest first: a secret inside a longer one must not leave the rest of the longer one behind.
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def _backfill_plan(store: "SQLStore") -> None:
    # Version 1 kept the plan only inside the JSON document. Batches by id keep memory flat on large stores.
    last = 0
    while True:
        rows = store._execute(f"SELECT {_COLUMNS} FROM results WHERE id > ? ORDER BY id LIMIT 500",
                              (last,)).fetchall()
        if not rows:
            return
        for row in rows:
            # Loaded as every read loads it: another writer may have left anything in the document.
            plan = store._row(row).plan
            if plan:
                store._execute("UPDATE results SET plan_hash = ?, plan_item = ? WHERE id = ?",
                               (plan["hash"], plan["item"], row[0]))
        last = rows[-1][0]


# MIGRATIONS[n] brings a database from schema version n to n + 1, in one transaction together with the
# version bump. A step is SQL ({id_column} and {now} filled in by the dialect) or a function of the store.
MIGRATIONS: list[tuple[str | Callable[["SQLStore"], None], ...]] = [
    # 1: the results table (edgeprof 0.1's SQLite schema, PRAGMA user_version = 1).
    ("""CREATE TABLE IF NOT EXISTS results (
        id {id_column},
        run_id TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT {now},
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
    )""",
     "CREATE INDEX IF NOT EXISTS results_by_item ON results (device, model, backend, batch)",
     "CREATE INDEX IF NOT EXISTS results_by_run ON results (run_id)"),
    # 2: the plan's hash and item key as indexed columns: a plan run asks for them before every item (see
    # edgeprof.lab.runner), and a JSON path would be spelled differently in SQLite and PostgreSQL.
    ("ALTER TABLE results ADD COLUMN plan_hash TEXT",
     "ALTER TABLE results ADD COLUMN plan_item TEXT",
     _backfill_plan,
     "CREATE INDEX IF NOT EXISTS results_by_plan ON results (plan_hash, status)"),
]
SCHEMA_VERSION = len(MIGRATIONS)


class SQLStore:
    """A results database. Subclasses: edgeprof.storage.sqlite.ResultStore, .postgres.PostgresResultStore."""

    # The dialect: the id column (an automatic integer key) and the creation time as ISO 8601 UTC text.
    id_column: str
    now: str
    location: str   # where the results are, for messages (no password)

    # --- the dialect's part ---
    def _execute(self, sql: str, args: Sequence = ()):
        """Run one statement (outside a transaction: on its own); returns a cursor."""
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction that other writers wait for; commits at the end, rolls back on an error."""
        raise NotImplementedError

    def _locked_version(self) -> int:
        """Inside _transaction: the schema version, with other openers held off until the commit."""
        raise NotImplementedError

    def _set_version(self, version: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def cache_at_most(self, kib: int) -> None:
        """Keep at most `kib` KiB of the database's pages in this process for this connection (a lab opens
        one per board thread). PostgreSQL caches on its server: nothing to do."""

    # --- shared ---
    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        with self._transaction():
            version = self._locked_version()
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.location} was written by a newer edgeprof (schema {version}); "
                                 f"upgrade edgeprof")
            for migration in MIGRATIONS[version:target]:
                for step in migration:
                    if callable(step):
                        step(self)
                    else:
                        self._execute(step.format(id_column=self.id_column, now=self.now))
            if version < target:
                self._set_version(target)

    _in_batch = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The add() calls inside as one transaction: all of them stored, or (an error) none."""
        with self._transaction():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    def add(self, result: Result) -> int:
        doc = result.to_dict()
        doc.pop("id")
        plan = result.plan or {}
        with nullcontext() if self._in_batch else self._transaction():
            cursor = self._execute(
                "INSERT INTO results (run_id, device, model, backend, batch, status, error, doc, commands, raw_log,"
                " prototxt_diff, plan_hash, plan_item) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (result.run_id, result.device, result.model, result.backend, result.batch, result.status,
                 result.error, json.dumps(doc), json.dumps(result.commands), result.raw_log,
                 result.prototxt_diff, plan.get("hash"), plan.get("item")))
            result.id = cursor.fetchone()[0]
        return result.id

    def get(self, result_id: int) -> Result | None:
        row = self._execute(f"SELECT {_COLUMNS} FROM results WHERE id = ?", (result_id,)).fetchone()
        return self._row(row) if row else None

    def query(self, *, device: str | None = None, model: str | None = None, backend: str | None = None,
              run_id: str | None = None, limit: int | None = None) -> list[Result]:
        where, args = [], []
        for column, value in (("device", device), ("model", model), ("backend", backend), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._row(r) for r in self._execute(sql, args).fetchall()]

    def select(self, run_ids: Sequence[str] = (), *, devices: Sequence[str] = (), models: Sequence[str] = (),
               backends: Sequence[str] = ()) -> list[Result]:
        """Results of the given runs (every stored result without any), narrowed to any of the given devices,
        models and backends (all of them where none is given)."""
        found = [r for run in run_ids or [None] for r in self.query(run_id=run)]
        wanted = {"device": devices, "model": models, "backend": backends}
        return [r for r in found if all(not values or getattr(r, key) in values for key, values in wanted.items())]

    def plan_items_ok(self, plan_hash: str, device: str | None = None) -> set[str]:
        """The keys of a plan's items stored ok (edgeprof.lab resumes a plan by skipping them); with `device`,
        that device's only. A lab's board thread asks before each item: SQLite keeps plan_item after a row's
        raw log and document, in overflow pages, so every row of the plan read for it costs a walk through
        them (16 ms of CPU per question over 256 stored items), while `device` is read from the row's first
        page and leaves the other boards' rows unread (0.04 ms)."""
        sql, args = "SELECT plan_item FROM results WHERE plan_hash = ? AND status = 'ok'", [plan_hash]
        if device is not None:
            sql, args = sql + " AND device = ?", args + [device]
        return {item for (item,) in self._execute(sql, args).fetchall()}

    def query_plan(self, plan_hash: str) -> list[Result]:
        rows = self._execute(f"SELECT {_COLUMNS} FROM results WHERE plan_hash = ? ORDER BY id", (plan_hash,))
        return [self._row(r) for r in rows.fetchall()]

    @staticmethod
    def _row(row) -> Result:
        # Checked as it is loaded: another writer of a shared database, or damage, may have left anything in
        # the row (edgeprof.storage.documents).
        return load_result(dict(zip(COLUMNS, row)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLStore", "StoreError", "hide_passwords", "is_postgres_url",
           "names_postgres", "redact"]
