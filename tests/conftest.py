"""Shared fixtures. Integration tests run against the test lab (tests/lab/lab up), found through
$EDGEPROF_INVENTORY; when tests/run sets EDGEPROF_LAB_REQUIRED=1 a missing lab is an error, not a skip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .postgres_server import PostgresServer, server_binaries

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def lab_inventory() -> Path:
    path = os.environ.get("EDGEPROF_INVENTORY")
    if not path or not Path(path).is_file():
        if os.environ.get("EDGEPROF_LAB_REQUIRED") == "1":
            pytest.fail("the test lab is required but EDGEPROF_INVENTORY is not set: run tests/lab/lab up")
        pytest.skip("test lab not up (tests/lab/lab up, then export EDGEPROF_INVENTORY=...)")
    return Path(path)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (tests/postgres_server.py); required like the lab."""
    bindir = server_binaries()
    missing = "PostgreSQL's server (apt-get install postgresql)" if bindir is None else None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg (pip install -e '.[postgres]')"
    if missing:
        if os.environ.get("EDGEPROF_LAB_REQUIRED") == "1":
            pytest.fail(f"{missing} is required: run tests/setup")
        pytest.skip(f"needs {missing}; tests/setup installs it")
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the test server."""
    return postgres_server.new_database()


@pytest.fixture
def edgeprof_cli(tmp_path, lab_inventory):
    """Run the real `edgeprof` command in a subprocess with a private results DB and HOME."""
    home = tmp_path / "home"
    home.mkdir()

    def run(*args, inventory=lab_inventory, timeout=600, check=None, env=None):
        environment = {**os.environ, "HOME": str(home), "EDGEPROF_DB": str(tmp_path / "results.sqlite"),
                       "EDGEPROF_INVENTORY": str(inventory), **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "edgeprof.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=environment)
        if check is not None:
            assert proc.returncode == check, proc.stdout + proc.stderr
        return proc

    run.db = tmp_path / "results.sqlite"
    run.home = home
    return run


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def board_entry(inventory: Path, name: str) -> dict:
    """A lab board's inventory entry, to copy into a test's own inventory with changes."""
    return tomllib.loads(inventory.read_text())["devices"][name]


def write_inventory(path: Path, **devices) -> Path:
    lines = []
    for name, entry in devices.items():
        lines.append(f'[devices."{name}"]')
        lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def copies(lab_inventory):
    """The lab's copies of sim-tx2 (tests/lab/lab up --copies N), at least two."""
    from edgeprof.devices import select_devices
    boards = select_devices("tag:copy", lab_inventory) if "copy" in lab_inventory.read_text() else []
    if len(boards) < 2:
        message = "needs the lab's copies of sim-tx2: tests/lab/lab up --copies 16"
        if os.environ.get("EDGEPROF_LAB_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return boards
