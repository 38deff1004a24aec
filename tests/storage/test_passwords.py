"""A PostgreSQL password never reaches a message: in the URL's user:password@, in its query (?password=), in
a libpq key=value string, percent-encoded or quoted, and in what the driver says when it cannot connect."""
import socket

import pytest

from edgeprof.storage import PostgresResultStore, StoreError, open_store
from edgeprof.storage.base import hide_passwords, redact


@pytest.mark.parametrize("target, shown", [
    ("postgresql://u:Sekr3t@db.lab:5432/results", "postgresql://u:***@db.lab:5432/results"),
    ("postgres://u:Sekr3t@db.lab/results", "postgres://u:***@db.lab/results"),
    # Percent-encoded, as libpq's URI rules ask for "@", ":" and "/" in a password.
    ("postgresql://u:Se%40kr%3At@db.lab/results", "postgresql://u:***@db.lab/results"),
    # libpq ends user:password at an "@" before the first "/", so "?" and "#" may stand in the password.
    ("postgresql://u:Se?kr#3t@db.lab/results?sslmode=require", "postgresql://u:***@db.lab/results?sslmode=require"),
    ("postgresql://u:Se@kr3t@db.lab/results", "postgresql://u:***@db.lab/results"),
    ("postgresql://u@db.lab/results?password=Sekr3t", "postgresql://u@db.lab/results?password=***"),
    ("postgresql://u@db.lab/results?sslmode=require&password=Se%26kr3t&connect_timeout=5",
     "postgresql://u@db.lab/results?sslmode=require&password=***&connect_timeout=5"),
    # libpq percent-decodes the keyword as well.
    ("postgresql://u@db.lab/results?pass%77ord=Sekr3t", "postgresql://u@db.lab/results?pass%77ord=***"),
    ("postgresql://u:Sekr3t@db.lab/results?sslpassword=K3y", "postgresql://u:***@db.lab/results?sslpassword=***"),
    ("postgresql://u:Sekr3t@db.lab,db2.lab:5433/results?password=Sekr3t",
     "postgresql://u:***@db.lab,db2.lab:5433/results?password=***"),
    # key=value: a value runs to the next space, or is quoted; a backslash escapes a quote, a backslash or a space.
    ("host=db.lab user=u password=Sekr3t dbname=results", "host=db.lab user=u password=*** dbname=results"),
    ("host=db.lab password = 'Se kr\\'3t \\\\' dbname=results", "host=db.lab password = *** dbname=results"),
    ("password=Se\\ kr3t host=db.lab", "password=*** host=db.lab"),
    ("host=db.lab password='Se kr3t", "host=db.lab password=***"),          # unterminated: to the end
    ("host=db.lab sslpassword=K3y", "host=db.lab sslpassword=***"),
    # Nothing to hide.
    ("postgresql://u@db.lab/results", "postgresql://u@db.lab/results"),
    ("postgresql://u:@db.lab/results", "postgresql://u:@db.lab/results"),
    ("postgresql://db.lab/results?user=u&passfile=.pgpass", "postgresql://db.lab/results?user=u&passfile=.pgpass"),
    ("host=db.lab user=u", "host=db.lab user=u"),
])
def test_redact_hides_every_password(target, shown):
    assert redact(target) == shown


@pytest.mark.parametrize("target, message", [
    # libpq quotes a token it could not decode, or the whole URI it could not parse.
    ("postgresql://u:Se%zzkr3t@db.lab/results", 'invalid percent-encoded token: "Se%zzkr3t"'),
    ("postgresql://u:Sekr3t@[::1/results", 'matching "]" in URI: "postgresql://u:Sekr3t@[::1/results"'),
    # Decoded: as libpq uses it.
    ("postgresql://u@db.lab/results?password=Se%40kr3t", "password Se@kr3t rejected"),
    ("password='Se kr\\'3t'", "password Se kr'3t rejected"),
])
def test_driver_messages_lose_the_password_as_written_and_as_decoded(target, message):
    hidden = hide_passwords(message, target)
    assert "kr3t" not in hidden and "***" in hidden


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.parametrize("url", [
    "postgresql://u:Sekr3t@127.0.0.1:{port}/results",
    "postgresql://u@127.0.0.1:{port}/results?password=Sekr3t",
    "postgresql://u:Sek%72%33t@127.0.0.1:{port}/results",
    "postgresql://u@127.0.0.1:{port}/results?sslpassword=Sekr3t&password=Sekr3t",
    # Each of these fails before connecting, with libpq quoting the URL or a part of it.
    "postgresql://u:Sekr%zz3t@127.0.0.1:{port}/results",
    "postgresql://u@127.0.0.1:{port}/results?password=Sekr%zz3t",
    "postgresql://u:Sekr3t@[::1:{port}/results",
    "postgresql://u:Se@kr3t@127.0.0.1:{port}/results",
])
def test_a_failed_connection_never_shows_the_password(postgres_server, closed_port, url):
    with pytest.raises(StoreError) as failure:
        open_store(url.format(port=closed_port))
    message = str(failure.value)
    assert message.startswith("cannot open the results database postgresql://u")
    assert "Sek" not in message and "kr3t" not in message and "***" in message


def test_a_key_value_connection_string_is_redacted_too(postgres_server, closed_port):
    with pytest.raises(StoreError) as failure:
        PostgresResultStore(f"host=127.0.0.1 port={closed_port} user=u password='Se kr3t' dbname=results")
    message = str(failure.value)
    assert f"port={closed_port} user=u password=*** dbname=results: " in message
    assert "kr3t" not in message and "Connection refused" in message
