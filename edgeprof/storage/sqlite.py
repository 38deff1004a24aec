"""SQLite result store: one file, the default. The schema and every query are shared with PostgreSQL
(edgeprof.storage.base); this is the dialect."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .base import SQLStore, StoreError, names_postgres, redact


def default_db_path() -> Path:
    """$EDGEPROF_DB, else ~/.local/share/edgeprof/results.sqlite."""
    named = os.environ.get("EDGEPROF_DB")
    if named and names_postgres(named):
        raise StoreError(f"EDGEPROF_DB names a PostgreSQL database ({redact(named)}): open it with "
                         f"edgeprof.storage.open_store()")
    if named:
        return Path(named).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "edgeprof" / "results.sqlite"


# The first 16 bytes of every SQLite 3 database file (https://www.sqlite.org/fileformat.html, 1.3.1).
_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_is_sqlite(path: Path) -> None:
    """An existing file must be a SQLite database already: anything else is the user's and is never
    written to (SQLite would turn an empty or foreign file into a database, or fail halfway)."""
    if not path.exists():
        return
    if not path.is_file():
        raise StoreError(f"{path} is not a file; name a SQLite file (new or edgeprof's) with --db")
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except OSError as e:
        raise StoreError(f"{path}: cannot read it ({e.strerror})") from None
    if head and head != _SQLITE_HEADER:
        raise StoreError(f"{path} is not a SQLite database (it starts with {head[:16]!r}); edgeprof does not "
                         f"write to it. Name another file with --db.")


# POSIX advisory locks belong to the process, and closing any descriptor of a file drops all of them,
# SQLite's included (https://www.sqlite.org/howtocorrupt.html, section 2.2). _check_is_sqlite opens and closes
# the file: done while another ResultStore of this process holds the database, it would let a reader in
# another process, closing its own connection, find no other user, checkpoint and delete the WAL this process
# still writes to, and every result written after that would be lost. So the header is read only while this
# process has no store open on that file (one that did read it already); counted by (device, inode).
_open_files: Counter[tuple[int, int]] = Counter()
_open_files_lock = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


class ResultStore(SQLStore):
    id_column = "INTEGER PRIMARY KEY"
    now = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path else default_db_path()
        self.location = str(self.path)
        self._db, self._file = None, None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _open_files_lock:
                if not _open_files[_file_key(self.path)]:
                    _check_is_sqlite(self.path)
                # isolation_level=None: no implicit transactions; writes take BEGIN IMMEDIATE in _transaction().
                self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                self._file = _file_key(self.path)
                if self._file:
                    _open_files[self._file] += 1
            # Text that is not UTF-8 (a damaged file, or another program's bytes) would fail the whole query
            # ("Could not decode to UTF-8"); decoded with surrogateescape, each bad byte becomes a lone
            # surrogate, which the loader (edgeprof.storage.documents) shows as U+FFFD with a note.
            self._db.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
            self._use_wal()
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            self.close()
            raise StoreError(f"{self.path}: cannot use it as edgeprof's results database ({e}). If it is damaged, "
                             f"move it aside (its results stay in it) and name a new file with --db.") from None
        except BaseException:
            self.close()   # a newer schema (_migrate), Ctrl-C: the connection and its count go too
            raise

    def _use_wal(self, timeout_s: float = 30.0) -> None:
        """WAL: readers do not block the writer during a sweep. Switching a new file to it takes a lock that
        SQLite does not wait for (two processes opening one new database at once: "database is locked"), so
        this waits here."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _execute(self, sql: str, args: Sequence = ()):
        return self._db.execute(sql, args)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock at BEGIN, so two processes migrating the same file run one after
        # the other instead of both reading version 0.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _locked_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _set_version(self, version: int) -> None:
        self._db.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        with _open_files_lock:
            if self._db:
                self._db.close()
            if self._file:
                _open_files[self._file] -= 1
                self._file = None

    def cache_at_most(self, kib: int) -> None:
        # SQLite's page cache is 2 MiB per connection by default (https://www.sqlite.org/pragma.html#pragma_cache_size,
        # a negative size is in KiB), filled by the rows this connection writes: 0.8 MB a board thread writing 2
        # results, up to 2 MiB with more; at 64 KiB 0.47 MB, with the same CPU per result (build VM).
        self._db.execute(f"PRAGMA cache_size = {-int(kib)}")


__all__ = ["ResultStore", "default_db_path"]
