"""Where results live: SQLite by default (`sqlite.ResultStore`, one file), or PostgreSQL for a team
(`postgres.PostgresResultStore`); one row per result as it completes, the same schema in both. Every row is
checked as it is read (`documents`): readers get well-typed Results whoever wrote the row.

    with open_store("lab.sqlite") as store: ...       # or "postgresql://host/db", or "host=db.lab dbname=edgeprof"
"""
from __future__ import annotations

import os

from .base import SCHEMA_VERSION, SQLStore, StoreError, names_postgres
from .postgres import PostgresResultStore
from .sqlite import ResultStore, default_db_path


def open_store(db: str | os.PathLike | None = None) -> SQLStore:
    """The results database `db` names: a postgresql:// URL or libpq key=value connection string
    (base.names_postgres), else a SQLite file; None: $EDGEPROF_DB, else the default SQLite file
    (default_db_path)."""
    db = db or os.environ.get("EDGEPROF_DB")
    if db and names_postgres(db):
        return PostgresResultStore(str(db))
    return ResultStore(db)


__all__ = ["PostgresResultStore", "ResultStore", "SCHEMA_VERSION", "SQLStore", "StoreError", "default_db_path",
           "names_postgres", "open_store"]
