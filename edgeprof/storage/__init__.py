"""Where results live: SQLite by default (`sqlite.ResultStore`, one file), or PostgreSQL for a team
(`postgres.PostgresResultStore`); one row per result as it completes, the same schema in both.

    with open_store("lab.sqlite") as store: ...                     # or "postgresql://host/db"
"""
from __future__ import annotations

import os

from .base import SCHEMA_VERSION, SQLStore, StoreError, is_postgres_url
from .postgres import PostgresResultStore
from .sqlite import ResultStore, default_db_path


def open_store(db: str | os.PathLike | None = None) -> SQLStore:
    """The results database `db` names: a postgresql:// URL or a SQLite file; None: $EDGEPROF_DB, else
    the default SQLite file (default_db_path)."""
    db = db or os.environ.get("EDGEPROF_DB")
    if db and is_postgres_url(db):
        return PostgresResultStore(str(db))
    return ResultStore(db)


__all__ = ["PostgresResultStore", "ResultStore", "SCHEMA_VERSION", "SQLStore", "StoreError", "default_db_path",
           "open_store"]
