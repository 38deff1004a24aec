"""A libpq key=value connection string (host=db.lab dbname=edgeprof user=u password=...) names PostgreSQL,
given as --db or EDGEPROF_DB: it opens the PostgreSQL store, never becomes a SQLite file, and is shown with its
password written ***."""
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from edgeprof.cli import main
from edgeprof.result import Result
from edgeprof.storage import PostgresResultStore, ResultStore, StoreError, default_db_path, names_postgres, open_store


@pytest.mark.parametrize("target", [
    "host=db.lab dbname=edgeprof user=u password=secret",
    "dbname=edgeprof",
    "  host = db.lab port=5433",
    "service=lab",
    "hots=db.lab password=secret",          # a mistyped keyword: libpq's to refuse, not a file's name
    "postgresql://u@db.lab/edgeprof",
    "postgres://db.lab",
])
def test_postgres_targets(target):
    assert names_postgres(target)


@pytest.mark.parametrize("target", [
    "results.sqlite", "/data/batch=8/results.sqlite", "./host=db.lab", "~/host=x.sqlite", "runs/a=b.sqlite",
    "", Path("host=db.lab"),
])
def test_sqlite_paths(target):
    assert not names_postgres(target)


@pytest.fixture
def conninfo(postgres_url) -> str:
    """The test database as key=value settings, with a password the server (trust authentication) ignores."""
    url = urlsplit(postgres_url)
    return (f"host={url.hostname} port={url.port} dbname={url.path.lstrip('/')} user={url.username} "
            f"password='Se kr3t'")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Commands run in an empty folder: any file they create from the string would show up there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_key_value_string_opens_postgres(conninfo, in_tmp):
    with open_store(conninfo) as store:
        assert isinstance(store, PostgresResultStore)
        assert store.location.endswith("password=***") and "kr3t" not in store.location
        store.add(Result(device="d", model="alexnet", backend="caffe", batch=1, run_id="r1"))
    with open_store(conninfo) as store:
        assert [r.model for r in store.query()] == ["alexnet"]
    assert os.listdir(in_tmp) == []


@pytest.mark.parametrize("given_as", ["--db", "EDGEPROF_DB"])
def test_the_cli_reads_postgres_and_shows_no_password(conninfo, in_tmp, monkeypatch, given_as):
    with open_store(conninfo) as store:
        store.add(Result(device="d", model="alexnet", backend="caffe", batch=1, run_id="r1"))
    if given_as == "EDGEPROF_DB":
        monkeypatch.setenv("EDGEPROF_DB", conninfo)
        args = ["results", "list"]
    else:
        monkeypatch.delenv("EDGEPROF_DB", raising=False)
        args = ["results", "list", "--db", conninfo]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "alexnet" in result.output and "password=***" in result.output and "kr3t" not in result.output
    result = CliRunner().invoke(main, [*args[:1], "show", "99", *args[2:]])
    assert result.exit_code == 2 and "no result 99 in host=" in result.output and "kr3t" not in result.output
    assert os.listdir(in_tmp) == []


def test_an_unreachable_or_mistyped_one_is_an_error_not_a_file(postgres_server, in_tmp):
    # A port nobody listens on: bound here, never listening.
    import socket
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        result = CliRunner().invoke(main, ["results", "list", "--db",
                                           f"host=127.0.0.1 port={port} user=u password=Sekr3t"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot open the results database host=127.0.0.1" in result.output and "Sekr3t" not in result.output
    result = CliRunner().invoke(main, ["results", "list", "--db", "hots=db.lab password=Sekr3t"])
    assert result.exit_code == 2 and "Sekr3t" not in result.output
    assert 'invalid connection option "hots"' in result.output and "written ./NAME" in result.output
    assert os.listdir(in_tmp) == []


def test_edgeprof_db_as_key_value_is_not_the_default_sqlite_file(monkeypatch):
    monkeypatch.setenv("EDGEPROF_DB", "host=db.lab password=Sekr3t")
    with pytest.raises(StoreError, match=r"PostgreSQL database \(host=db.lab password=\*\*\*\)"):
        default_db_path()
    with pytest.raises(StoreError):
        ResultStore()
