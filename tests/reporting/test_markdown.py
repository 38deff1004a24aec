"""Markdown exports (results export --format md, compare --format md) show every stored value as the text it
is: rendered as GitHub renders Markdown (CommonMark with GFM tables, raw HTML allowed: markdown-it-py, which
rich already brings), no value becomes markup, a tag, a link or a second table cell, and no list item turns
into a heading or a nested list."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from edgeprof.reporting.compare import compare
from edgeprof.reporting.export import export, md_cell

from .samples import caffe_result, pytorch_result

# Markup of every kind a Markdown viewer acts on, and text that must survive as it is.
VALUES = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "a|b",
    "line one\nline two\r\nline three",
    "&lt;not an entity&gt; &amp;",
    "*emphasis* _emphasis_ **strong** ~~struck~~",
    "[link](javascript:alert(3)) ![image](http://tracker.example/x.png) <http://autolink.example>",
    "`code` $x^2$ \\backslash\\",
    "caffe_forward sim-tx2 12.5",
]


def render(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)


class Elements(HTMLParser):
    """The rendered page's elements, and the text of each table cell and list item (a <br> as a newline)."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.cells: list[list[str]] = []        # per table row
        self.items: list[str] = []
        self._open: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.cells.append([])
        elif tag in ("td", "th", "li"):
            self._open = []
        elif tag == "br" and self._open is not None:
            self._open.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cells[-1].append("".join(self._open))
            self._open = None
        elif tag == "li":
            self.items.append("".join(self._open))
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open.append(data)


def as_shown(value: str) -> str:
    """A value as a table cell shows it: each line end a line break."""
    return value.replace("\r\n", "\n")


@pytest.mark.parametrize("value", VALUES)
def test_a_cell_renders_as_the_text_it_holds(value):
    page = Elements(render(f"| h |\n|---|\n| {md_cell(value)} |\n"))
    assert page.cells == [["h"], [as_shown(value)]]
    assert set(page.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "br"}


def test_control_characters_are_shown_as_escapes():
    cell = md_cell("board \x1b]52;c;cHduZWQ=\x07 said")
    assert "\x1b" not in cell and "\x07" not in cell
    assert Elements(render(f"| h |\n|---|\n| {cell} |\n")).cells[1] == ["board \\x1b]52;c;cHduZWQ=\\x07 said"]


def test_results_export_keeps_one_cell_per_column():
    results = []
    for i, value in enumerate(VALUES):
        result = pytorch_result(value, 10.0 + i, device=value, variant=value, result_id=i + 1)
        result.flags = [{"code": value, "detail": ""}]
        results.append(result)
    results.append(caffe_result("vgg16", 30.0, result_id=99).fail(VALUES[0] + "\n" + VALUES[2]))
    page = Elements(render(export(results, "md")))
    header, *rows = page.cells
    assert header[:3] == ["id", "device", "model"] and header[-1] == "flags"
    assert all(len(row) == len(header) for row in rows) and len(rows) == len(results)
    for row, value in zip(rows, VALUES):
        assert row[1] == row[2] == row[-1] == as_shown(value)
    assert rows[-1][-2] == f"failed: {VALUES[0]}\n{VALUES[2]}"
    assert set(page.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "br"}


def test_compare_markdown_escapes_labels_cells_and_notes():
    # Model names that open a block at the start of a note: a heading, an ordered list, a quote, a rule.
    models = ["# heading", "1. first", "> quote", "---", VALUES[0]]
    results = [caffe_result(model, 20.0, device=VALUES[1], result_id=i + 1) for i, model in enumerate(models)]
    results += [pytorch_result(model, 10.0, device=VALUES[1], variant=VALUES[2], result_id=10 + i)
                for i, model in enumerate(models)]
    results.append(caffe_result("vgg16", 30.0, device=VALUES[1], result_id=99).fail(VALUES[6]))
    markdown = compare(results).export("md")
    page = Elements(render(markdown))
    header, *rows = page.cells
    assert header == ["model", "batch", f"{VALUES[1]} caffe (baseline)", f"{VALUES[1]} pytorch ({VALUES[2]}, cuda:0)"]
    assert [row[0] for row in rows] == models and all(len(row) == 4 for row in rows)
    assert set(page.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "br", "ul", "li"}
    assert any(item.startswith("# heading batch 1: ") for item in page.items)
    assert any(item.startswith("1. first batch 1: ") for item in page.items)
    assert f"failed: {VALUES[6]}" in page.items[-1]


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text():
    from edgeprof.reporting.export import csv_text
    text = csv_text([{"model": "=HYPERLINK(\"http://x\")", "batch": -1, "device": "@sum", "backend": "caffe"}],
                    ["model", "batch", "device", "backend"])
    assert text.splitlines()[1] == "\"'=HYPERLINK(\"\"http://x\"\")\",-1,'@sum,caffe"
