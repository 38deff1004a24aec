"""Rows that another writer of a shared database (or damage) can leave: every reading command completes on
them, in SQLite and in PostgreSQL, without a traceback, and says what it could not use.

Each case writes one row with raw SQL through the database's own client, next to results edgeprof stored,
and runs `results list`, `results show`, `results export` (csv, json, md), `compare` and `report --html`
in-process. A row whose run, names, batch, status, span or latency is unusable (or that is no JSON object)
reads as a failed result whose error says why; one with other unusable parts is kept with those parts left
out and the flag unusable_stored_data saying what (edgeprof.storage.documents)."""
from __future__ import annotations

import html
import json
import re
import sqlite3
from contextlib import closing

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from edgeprof import cli
from edgeprof.cli import common
from edgeprof.storage import open_store
from edgeprof.storage.documents import UNUSABLE_FLAG

from ..reporting.samples import caffe_result, pytorch_result

HOSTILE_MODEL = "hostile"


def good_doc(telemetry: bool = False) -> dict:
    """The document edgeprof itself would store for a PyTorch result of model `hostile`."""
    doc = pytorch_result(HOSTILE_MODEL, 12.0, telemetry=telemetry).to_dict()
    doc.pop("id")
    return doc


def changed(change, telemetry: bool = False) -> str:
    doc = good_doc(telemetry)
    change(doc)
    return json.dumps(doc)


def bad_samples(doc):
    samples = doc["telemetry"]["samples"]
    samples[1:5] = [17, {"kind": "proc", "t": "soon", "temps_c": {}}, {"kind": "proc", "t": 1.0, "temps_c": {}},
                    {"kind": "tegrastats", "t": 1.0}]


# name: (the stored document's text, the reader's note, whether the row reads as a failed result)
CASES = {
    "lone surrogate in the model": (
        changed(lambda d: d.update(model="net\ud800")), "lone UTF-16 surrogates) shown as U+FFFD in model", False),
    "batch is a list": (changed(lambda d: d.update(batch=[8])), "batch [8] is not a whole number", True),
    "batch is an object": (changed(lambda d: d.update(batch={"n": 8})), 'batch {"n": 8} is not a whole number',
                           True),
    "model is a list": (changed(lambda d: d.update(model=["alexnet"])), 'model ["alexnet"] is not text', True),
    "model is an object": (changed(lambda d: d.update(model={"name": "alexnet"})),
                           'model {"name": "alexnet"} is not text', True),
    "flag without a code": (changed(lambda d: d.update(flags=[{"detail": "hot"}])),
                            "(not a flag with a text code)", False),
    "times_ms not numbers": (changed(lambda d: d["pytorch"].update(times_ms=["fast"] * 20)),
                             "pytorch.times_ms (not a list of numbers)", False),
    "ci95_ms not numbers": (changed(lambda d: d["pytorch"].update(times_ms=None, ci95_ms="narrow")),
                            "pytorch.ci95_ms (not two numbers)", False),
    "per_layer not an object": (changed(lambda d: d["pytorch"].update(per_layer=["conv1", 1.0])),
                                "pytorch.per_layer (not an object with a list of layers)", False),
    "malformed telemetry samples": (changed(bad_samples, telemetry=True),
                                    "telemetry samples (not a sampler record of the expected types)", False),
    "power_total is a list": (changed(lambda d: d["telemetry"].update(power_total=[3.5]), telemetry=True),
                              "telemetry.power_total (not an object of numbers)", False),
    "latency is text": (changed(lambda d: d["latency_ms"].update(median="fast")),
                        'latency_ms.median "fast" is not a number', True),
    "latency is NaN": (changed(lambda d: d["latency_ms"].update(median=float("nan"))),
                       "latency_ms.median NaN is not a number", True),
    "repeat without its group": (changed(lambda d: d.update(repeat={"summary": True, "runs": "3"})),
                                 "repeat (not a --repeat group with its run numbers)", False),
    "interval not a pair": (changed(lambda d: d.update(latency_ci95_ms={"median": [1.0, "x"]})),
                            "latency_ci95_ms (not [low, high] number pairs)", False),
    "unbounded is a list": (changed(lambda d: d.update(latency_unbounded=["p99"])),
                            "latency_unbounded (a list, not an object)", False),
    "document is a list": ("[1, 2]", "its document is a list, not a JSON object", True),
    "document is text": ('"a result"', "its document is text, not a JSON object", True),
    "document is null": ("null", "its document is null, not a JSON object", True),
    "document is not JSON": ('{"model": ', "its document is not JSON", True),
    "document nests too deep": ('{"state": ' + "[" * 5000 + "]" * 5000 + "}", "its document nests too deep to decode",
                                True),
}


def insert_as_another_writer(db: str, doc, raw_log="") -> None:
    """One row written with the database's own client, indexed columns as edgeprof would fill them."""
    values = ("r1", "sim-tx2", HOSTILE_MODEL, "pytorch", 1, "ok", None, doc, "[]", raw_log, "")
    sql = ("INSERT INTO results (run_id, device, model, backend, batch, status, error, doc, commands, raw_log,"
           " prototxt_diff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    if db.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(db, autocommit=True) as connection:
            connection.execute(sql.replace("?", "%s"), values)
    else:
        with closing(sqlite3.connect(db)) as connection:
            connection.execute(sql, values)
            connection.commit()


def store_good_results(db: str) -> None:
    with open_store(db) as store:
        store.add(caffe_result("alexnet", 20.0))
        store.add(pytorch_result("alexnet", 10.0))


def plain(text: str) -> str:
    """Output with runs of whitespace as one space (rich wraps long lines at spaces)."""
    return " ".join(text.split())


def rendered_markdown(text: str) -> str:
    """The text a reader of the Markdown sees: rendered as GitHub would (tables, raw HTML allowed)."""
    page = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)
    return plain(html.unescape(re.sub(r"<[^>]*>", " ", page)))


def run(*args, db):
    result = CliRunner().invoke(cli.main, [*map(str, args), "--db", db])
    assert result.exit_code == 0 and result.exception is None, (args, result.exc_info, result.output)
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def wide(monkeypatch):
    """A console wide enough that no table cell folds, so a note reads whole in the output."""
    monkeypatch.setattr(common.console, "width", 2000)


@pytest.mark.parametrize("case", CASES)
def test_every_reader_completes_and_says_what_was_unusable(db, tmp_path, wide, case):
    doc, note, fails = CASES[case]
    store_good_results(db)
    insert_as_another_writer(db, doc)
    # What each command shows: a failed row's error everywhere; a kept row's flag code in the tables and
    # its detail where details are printed (JSON, compare's notes, the report).
    shown = note if fails else UNUSABLE_FLAG
    assert shown in plain(run("results", "list", db=db))
    assert shown in plain(run("results", "show", "3", db=db))
    assert shown in run("results", "export", "--format", "csv", db=db).replace('""', '"')
    assert shown in rendered_markdown(run("results", "export", "--format", "md", db=db))
    [stored] = [r for r in json.loads(run("results", "export", "--format", "json", db=db)) if r["id"] == 3]
    if fails:
        assert stored["status"] == "failed" and note in stored["error"]
        assert stored["error"].startswith("unusable stored result: ")
    else:
        [flag] = [f for f in stored["flags"] if f["code"] == UNUSABLE_FLAG]
        assert note in flag["detail"]
    assert note in plain(run("compare", db=db))
    assert note in rendered_markdown(run("compare", "--format", "md", db=db))
    run("report", "r1", "--html", tmp_path / "report.html", db=db)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert note in plain(html.unescape(re.sub(r"<[^>]*>", " ", page)))


def test_a_kept_row_keeps_what_was_usable(db, wide):
    """A row with a bad part is still compared on the rest: its latency and span are the stored ones."""
    store_good_results(db)
    insert_as_another_writer(db, CASES["times_ms not numbers"][0])
    with open_store(db) as store:
        result = store.get(3)
    assert result.status == "ok" and result.latency_ms["median"] > 0 and "times_ms" not in result.figures
    assert result.figures["ci95_ms"] and result.figures["variant"] == "fp32"
    out = plain(run("compare", db=db))
    assert "hostile batch 1, sim-tx2 pytorch (fp32, cuda:0) (result 3): unusable_stored_data" in out


def test_a_row_no_document_names_is_named_by_its_columns(db):
    store_good_results(db)
    insert_as_another_writer(db, "[1, 2]")
    with open_store(db) as store:
        result = store.get(3)
    assert (result.run_id, result.device, result.model, result.backend, result.batch) == \
        ("r1", "sim-tx2", HOSTILE_MODEL, "pytorch", 1)
    assert result.status == "failed" and result.latency_ms == {k: None for k in result.latency_ms}


def test_a_deep_document_that_decodes_is_cleaned_and_shown(db, wide):
    """As deep as JSON decoding goes, the document is walked for lone surrogates (without recursion) and
    `results show` and the JSON export print it."""
    def deep(doc):
        doc["state"]["deep"] = json.loads("[" * 900 + '"\\ud800"' + "]" * 900)
        doc["model"] = "net\ud800"
    store_good_results(db)
    insert_as_another_writer(db, changed(deep))
    # `results show` prints the state as JSON, U+FFFD as its escape.
    assert "[" * 900 + '"\\ufffd"' in run("results", "show", "3", db=db).replace(" ", "").replace("\n", "")
    [stored] = [r for r in json.loads(run("results", "export", "--format", "json", db=db)) if r["id"] == 3]
    assert stored["status"] == "ok" and stored["model"] == "net\ufffd"
    assert stored["flags"][-1]["detail"].endswith("shown as U+FFFD in model, state.deep" + "[0]" * 900)


def test_the_replacement_character_stands_for_a_lone_surrogate(db, wide):
    store_good_results(db)
    insert_as_another_writer(db, CASES["lone surrogate in the model"][0])
    assert "net\ufffd" in run("results", "list", db=db)
    doc = json.loads(run("compare", "--format", "json", db=db))
    assert [row["model"] for row in doc["rows"]] == ["alexnet", "net\ufffd"]


# --- SQLite only: bytes PostgreSQL's UTF-8 text refuses --------------------------------------------------

@pytest.fixture
def sqlite_db(tmp_path) -> str:
    path = str(tmp_path / "results.sqlite")
    store_good_results(path)
    return path


def test_text_that_is_not_utf8_is_read_with_a_note(sqlite_db, wide):
    """SQLite keeps whatever bytes a writer gives it as TEXT; Python's sqlite3 fails the whole query on them
    unless told how to decode."""
    doc = json.dumps(good_doc()).replace(HOSTILE_MODEL, "net\\u00e9").encode().replace(b"\\u00e9", b"\xe9")
    with closing(sqlite3.connect(sqlite_db)) as connection:
        connection.execute("INSERT INTO results (run_id, device, model, backend, batch, status, doc, commands,"
                           " raw_log, prototxt_diff) VALUES ('r1', 'sim-tx2', 'hostile', 'pytorch', 1, 'ok',"
                           " CAST(? AS TEXT), '[]', CAST(? AS TEXT), '')", (doc, b"caffe \xff\xfe log"))
        connection.commit()
    out = plain(run("results", "show", "3", db=sqlite_db))
    assert "net\ufffd" in out and "caffe \ufffd\ufffd log" in out
    [stored] = [r for r in json.loads(run("results", "export", "--format", "json", db=sqlite_db)) if r["id"] == 3]
    assert "shown as U+FFFD in model, raw_log" in stored["flags"][-1]["detail"]


def test_a_document_stored_as_a_blob_that_is_not_utf8_is_read(sqlite_db):
    doc = json.dumps(good_doc()).replace(HOSTILE_MODEL, "net\\u00e9").encode().replace(b"\\u00e9", b"\xe9")
    with closing(sqlite3.connect(sqlite_db)) as connection:
        connection.execute("INSERT INTO results (run_id, device, model, backend, batch, status, doc, commands,"
                           " raw_log, prototxt_diff) VALUES ('r1', 'sim-tx2', 'hostile', 'pytorch', 1, 'ok', ?,"
                           " '[]', '', '')", (doc,))
        connection.commit()
    with open_store(sqlite_db) as store:
        result = store.get(3)
    assert result.status == "ok" and result.model == "net\ufffd"
    assert result.flags[-1]["detail"].endswith("shown as U+FFFD in model")
