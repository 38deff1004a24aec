"""edgeprof.reporting.html and `edgeprof report`: the page is self-contained (no network, no script), holds
the plots and tables the results call for, and renders in real headless Chromium without console errors."""
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgeprof.reporting import html as html_report
from edgeprof.reporting.html import INSTALL_HINT, ReportError, write_report
from edgeprof.result import Result
from edgeprof.storage import ResultStore, open_store

from .samples import caffe_result, lab_sweep, pytorch_result

pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install 'edgeprof[report]' (tests/setup does)")
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402  (pillow comes with matplotlib)

# Headless, offline, no first-run or background work: the page must render from the file alone.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]
# Chromium logs the page's console messages as "INFO:CONSOLE:1] ..." (older builds: "ERROR:CONSOLE(1)");
# the report has no script, so any console message at all is a fault, and so is an uncaught exception.
CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught")
# matplotlib's first three colours (tab10 C0-C2): they appear on the page only where a plot was drawn.
PLOT_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]


class Page(HTMLParser):
    """What the tests look at: tags with their attributes, sections, and the text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.sections, self.text = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section":
            self.sections.append(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag, cls=None):
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def decode_png(src: str):
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_report_is_self_contained_with_every_plot_and_table(tmp_path):
    results = lab_sweep()
    plots = write_report(results, tmp_path / "report.html", title="TX2 backbones")
    text = (tmp_path / "report.html").read_text()
    page = Page(text)
    assert page.sections == ["latency", "comparison", "efficiency", "telemetry", "results"]
    # Nothing is fetched: no script, no linked style sheet, every image inline.
    assert not page.all("script") and not page.all("link") and not re.search(r"(src|href)=\"(?!data:)", text)
    sections = [p.section for p in plots]
    # Two models x latency and memory (the board's RAM from tegrastats) vs batch, two batches x comparison bars
    # and x images per joule, 12 timelines.
    assert sections.count("latency") == 4 and sections.count("comparison") == 2
    assert sections.count("efficiency") == 2 and sections.count("telemetry") == 12
    images = page.all("img")
    assert len(images) == len(plots) == 20
    for attrs in images:
        image = decode_png(attrs["src"])
        assert image.size == (int(attrs["width"]), int(attrs["height"])) and image.size[0] == 800
    assert "no power telemetry" not in text
    # The comparison table: a row per model x batch, a cell per column; the results table: a row per result.
    assert len(page.all("table", "comparison")) == 1 and len(page.all("table", "results")) == 1
    assert text.count("<tr>") == 1 + 4 + 1 + 12
    body = " ".join(page.text)
    assert "TX2 backbones" in body and "n/a: caffe reports only a mean" in body
    assert "clocks_moved" in body          # the flagged result's flag, in the results table and the notes
    assert "clocks_moved: a clock changed during the timed window" in body     # explained once, under the table
    assert "Power, as the telemetry defines it: VDD_IN." in body        # what the power figure covers


def test_without_power_telemetry_the_page_says_so(tmp_path):
    results = [caffe_result("alexnet", 12.9, result_id=1), pytorch_result("alexnet", 10.3, result_id=2)]
    plots = write_report(results, tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert "no power telemetry" in text and "no telemetry samples stored" in text
    assert {p.section for p in plots} == {"latency", "comparison"}
    assert "<title>edgeprof report: run r1</title>" in text


def test_only_failed_results_still_make_a_page(tmp_path):
    failed = caffe_result("vgg16", 1.0, result_id=1).fail("out of memory at batch 8")
    assert write_report([failed], tmp_path / "report.html") == []
    text = (tmp_path / "report.html").read_text()
    assert "No successful result" in text and "failed: out of memory at batch 8" in text
    with pytest.raises(ReportError, match="no results"):
        write_report([], tmp_path / "empty.html")


def test_png_dir_holds_the_same_plots(tmp_path):
    plots = write_report(lab_sweep()[:3], tmp_path / "report.html", png_dir=tmp_path / "png")
    files = sorted((tmp_path / "png").iterdir())
    assert [f.name for f in files] == [f"{p.name}.png" for p in plots]
    assert files[0].name == "01-alexnet-latency-vs-batch.png"
    assert [f.read_bytes() for f in files] == [p.png for p in plots]


# --- stored values are data ----------------------------------------------------------------------------

# Markup in every form a value could break out of: an element, a quoted attribute (both quotes), the style
# sheet, an entity. Console messages, not alert(): a script that ran shows in the browser's log (an alert would
# block headless Chromium instead).
HOSTILE = "<script>console.error(1)</script>\"'</style><img src=x onerror=console.error(2)>&amp;"


def hostile_results() -> list[Result]:
    """What another writer of a shared database can store: markup in every text, a batch that is text, a
    fraction or beyond any float, a latency that is text."""
    named = pytorch_result(f"{HOSTILE} model", 10.0, device=f"{HOSTILE} device", run_id=f"{HOSTILE} run",
                           variant=f"{HOSTILE} variant", telemetry=True)
    named.span = f"{HOSTILE} span"
    named.throughput_ips = f"{HOSTILE} ips"
    named.flags = [{"code": f"{HOSTILE} code", "detail": f"{HOSTILE} detail"}]
    named.telemetry["source"] = f"{HOSTILE} source"
    text_batch = pytorch_result("alexnet", 11.0, telemetry=True)
    text_batch.batch = f"{HOSTILE} batch"
    fraction_batch = pytorch_result("alexnet", 12.0)
    fraction_batch.batch = 2.5
    huge_batch = pytorch_result("alexnet", 12.5)
    huge_batch.batch = 10**400
    text_latency = caffe_result("alexnet", 13.0)
    text_latency.latency_ms["mean"] = f"{HOSTILE} latency"
    negative_latency = caffe_result("alexnet", 13.5)
    negative_latency.latency_ms["mean"] = -13.5
    failed = caffe_result("vgg16", 14.0).fail(f"{HOSTILE} error")
    failed.batch = f"{HOSTILE} failed batch"
    return [named, text_batch, fraction_batch, huge_batch, text_latency, negative_latency, failed]


def store_as_another_writer(store, result: Result) -> None:
    """Store `result` as a writer with the database's own client could: the document exactly as given,
    whatever edgeprof's columns would accept (PostgreSQL's batch column takes only integers)."""
    doc = result.to_dict()
    doc.pop("id")
    batch, result.batch = result.batch, 1
    store.add(result)
    result.batch = batch
    doc["batch"] = batch
    with store._transaction():
        store._execute("UPDATE results SET doc = ? WHERE id = ?", (json.dumps(doc), result.id))


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return request.getfixturevalue("postgres_url")


def assert_no_markup_from_values(text: str) -> Page:
    page = Page(text)
    assert "<script" not in text.lower() and not page.all("script")
    assert [tag for tag, _ in page.tags].count("style") == 1        # the page's own style sheet, in <head>
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in page.all("img"))
    assert not [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    return page


def test_stored_markup_and_a_text_batch_are_printed_as_text(db, tmp_path):
    with open_store(db) as store:
        for result in hostile_results():
            store_as_another_writer(store, result)
        stored = {r.batch if r.status == "ok" else "failed" for r in store.query()}
    # A batch that is not a whole number and a latency that is not a number read back as failed results
    # saying so (edgeprof.storage.documents); a whole batch out of range and a negative latency are numbers.
    assert stored == {1, 10**400, "failed"}
    runs = [f"{HOSTILE} run", "r1"]
    proc = cli("report", *runs, "--html", tmp_path / "report.html", "--title", f"{HOSTILE} title", db=db)
    assert proc.returncode == 0, proc.stderr
    page = assert_no_markup_from_values((tmp_path / "report.html").read_text())
    body = " ".join(page.text)
    # Every value is on the page as the text it is, once the browser has decoded the escapes.
    for what in ("title", "model", "device", "run", "variant", "span", "code", "detail", "error"):
        assert f"{HOSTILE} {what}" in body, what
    assert f"Raw samples of {HOSTILE} source" in body
    assert page.text.count(f"{HOSTILE} title") == 2        # <title> and <h1>
    # What the loader could not use is named, its value quoted (cut short) as text: three failed results, each
    # in the comparison's notes and in the results table.
    assert body.count("failed: unusable stored result: batch ") == 6 and "is not a whole number" in body
    assert 'unusable stored result: latency_ms.mean "<script>' in body and "throughput_ips" in body
    # The markup-named result is plotted (its name in the images' alt text); the two whose batch or latency
    # edgeprof would not measure are listed instead.
    assert any(attrs["alt"] == f"{HOSTILE} model latency vs batch" for attrs in page.all("img"))
    assert body.count("Not plotted or compared") == 2
    assert "is not a whole number from 1 to 65536" in body and "is not a positive number" in body


def test_plot_texts_are_literal(tmp_path, monkeypatch):
    """matplotlib reads "$...$" as mathtext: names are drawn as written (a$\\frac$b made the report fail)."""
    names = ["net$x^2$", "a_b", "50%", "\\frac", "a$\\frac$b"]
    figures = []
    add = html_report._Drawer.add

    def keep(drawer, figure, *args):
        add(drawer, figure, *args)
        figures.append(figure)

    monkeypatch.setattr(html_report._Drawer, "add", keep)
    results = [pytorch_result(name, 10.0 + i, device=f"{name} board", result_id=i + 1, telemetry=True)
               for i, name in enumerate(names)]
    write_report(results, tmp_path / "report.html")
    axes = [ax for figure in figures for ax in figure.axes]
    kinds = {"title": [ax.title for ax in axes],
             "tick label": [label for ax in axes for label in ax.get_xticklabels()],
             "legend entry": [text for ax in axes if ax.get_legend() for text in ax.get_legend().get_texts()]}
    for kind, texts in kinds.items():
        for name in names:
            assert any(name in text.get_text() for text in texts), f"{name} in no {kind}"
    drawn = [text for figure in figures for text in figure.findobj(Text)
             if any(name in text.get_text() for name in names)]
    assert drawn and all(not text.get_parse_math() and not text.get_usetex() for text in drawn)


def test_png_names_stay_short_for_long_names(tmp_path):
    plots = write_report([pytorch_result("n" * 5000, 10.0, result_id=1)], tmp_path / "report.html",
                         png_dir=tmp_path / "png")
    files = sorted(f.name for f in (tmp_path / "png").iterdir())
    assert len(files) == len(plots) and files[0] == f"01-{'n' * html_report.SLUG_CHARS}.png"


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ReportError, match=re.escape(INSTALL_HINT)):
        write_report(lab_sweep(), tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


# --- in a real browser ---------------------------------------------------------------------------------

@pytest.fixture
def chromium(tmp_path):
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("EDGEPROF_LAB_REQUIRED") == "1":
            pytest.fail("chromium is required to check the HTML report: tests/setup installs it (apt-get install "
                        "chromium)")
        pytest.skip("chromium not installed (apt-get install chromium, or tests/setup): the HTML report is not "
                    "checked in a browser")
    runs = iter(range(1000))

    def run(page: Path, *flags):
        # A fresh profile each time: nothing cached from an earlier page.
        profile = tmp_path / f"chromium-profile-{next(runs)}"
        proc = subprocess.run([path, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc
    return run


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def test_console_check_catches_a_broken_page(chromium, tmp_path):
    """The console check below can fail: a page with a script error and a console.error trips it."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); notDefined();</script></body></html>")
    messages = console_messages(chromium(bad, "--dump-dom").stderr)
    assert any("boom" in m for m in messages) and any("Uncaught ReferenceError" in m for m in messages)


def test_stored_markup_stays_text_in_chromium(chromium, tmp_path):
    report = tmp_path / "report.html"
    plots = write_report(hostile_results(), report, title=f"{HOSTILE} title")
    dom = chromium(report, "--dump-dom")
    # Markup that ran would show: the script's and the broken <img>'s messages reach the console.
    assert console_messages(dom.stderr) == []
    page = assert_no_markup_from_values(dom.stdout)
    assert len(page.all("img")) == len(plots) and f"{HOSTILE} model" in " ".join(page.text)


def test_report_renders_in_chromium_with_plots_and_no_console_errors(chromium, tmp_path):
    report = tmp_path / "report.html"
    plots = write_report(lab_sweep(), report)
    dom = chromium(report, "--dump-dom")
    assert console_messages(dom.stderr) == []
    page = Page(dom.stdout)
    # What the browser built from the file: every plot image, both tables, all sections.
    assert len(page.all("figure", "plot")) == len(plots) == len(page.all("img"))
    assert len(page.all("table", "comparison")) == 1 and len(page.all("table", "results")) == 1
    assert page.sections == ["latency", "comparison", "efficiency", "telemetry", "results"]

    shot_path = tmp_path / "shot.png"
    shot = chromium(report, f"--screenshot={shot_path}", "--window-size=1280,2000")
    assert console_messages(shot.stderr) == []
    shot = Image.open(shot_path).convert("RGB")
    assert shot.size == (1280, 2000)
    pixels = shot.load()
    width, height = shot.size
    step = 2
    sampled = [pixels[x, y] for y in range(0, height, step) for x in range(0, width, step)]
    non_white = sum(1 for p in sampled if sum(p) < 3 * 245) / len(sampled)
    assert 0.05 < non_white < 0.7, f"{non_white:.1%} of the page is not white"
    # The plots drew: each of the three columns' colours fills bars and lines on the visible part.
    for colour in PLOT_COLOURS:
        near = sum(1 for p in sampled if all(abs(a - b) <= 6 for a, b in zip(p, colour)))
        assert near > 200, f"colour {colour} on only {near} sampled pixels: a plot did not render"
    # Loose layout: the title's dark text in the top band, and the first plot starts under it, left-aligned.
    top_band = [pixels[x, y] for y in range(0, 80) for x in range(0, width // 2)]
    assert any(sum(p) < 200 for p in top_band)
    plot_columns = [x for x in range(0, width, step) for y in range(100, 700, 10)
                    if all(abs(a - b) <= 6 for a, b in zip(pixels[x, y], PLOT_COLOURS[0]))]
    assert plot_columns and min(plot_columns) < width // 2


# --- the command ---------------------------------------------------------------------------------------

def cli(*args, db):
    env = {**os.environ, "EDGEPROF_DB": str(db)}
    return subprocess.run([sys.executable, "-m", "edgeprof.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_report_command_defaults_to_the_latest_run(tmp_path):
    db = tmp_path / "results.sqlite"
    with ResultStore(db) as store:
        for result in lab_sweep()[:3]:
            result.id = None
            store.add(result)
        store.add(pytorch_result("vgg16", 80.0, run_id="later"))
    proc = cli("report", "--html", tmp_path / "out.html", "--png", tmp_path / "png", db=db)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out.html").read_text()
    assert "<title>edgeprof report: run later</title>" in text and "alexnet" not in text
    assert len(list((tmp_path / "png").glob("*.png"))) == 2     # vgg16: latency vs batch, comparison bars
    proc = cli("report", "r1", "--html", tmp_path / "r1.html", db=db)
    assert proc.returncode == 0 and "3 results of run r1" in proc.stdout
    proc = cli("report", "nope", "--html", tmp_path / "nope.html", db=db)
    assert proc.returncode == 2 and "no results for run nope" in proc.stderr


@pytest.mark.lab
def test_report_of_a_lab_run(edgeprof_cli, tmp_path):
    """A run the real lab measured, with the board's own telemetry, becomes a page with its timeline."""
    edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "caffe", "alexnet", "--iterations", "5",
                 "--wait", "600", "--json", timeout=900, check=0)
    edgeprof_cli("report", "--html", tmp_path / "lab.html", check=0)
    page = Page((tmp_path / "lab.html").read_text())
    # caffe time's per-layer forward times give the page its per-layer section.
    assert page.sections == ["latency", "comparison", "efficiency", "telemetry", "layers", "results"]
    assert any(attrs["alt"].startswith("telemetry result") for attrs in page.all("img"))
