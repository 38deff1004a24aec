"""Every store test runs against both stores: a SQLite file and a fresh database on a real PostgreSQL."""
import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> str:
    """What --db would name: a SQLite file, or a postgresql:// URL."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return request.getfixturevalue("postgres_url")
