"""Exports of results: CSV (one flat row per result), JSON (a list of result objects), Markdown (a table).

The CSV and Markdown writers here are shared with the other reports (reporting.compare), so every export
escapes and formats the same way."""
from __future__ import annotations

import csv
import io
import json
import re

from ..result import LATENCY_KEYS, Result
from .table import headline
from .terminal import printable

FORMATS = ("csv", "json", "md")
_COLUMNS = (["id", "run_id", "device", "model", "backend", "batch", "status", "error", "span"]
            + [f"latency_{k}_ms" for k in LATENCY_KEYS] + ["throughput_ips", "iterations", "started_at",
                                                           "variant", "processor", "power_w",
                                                           "energy_per_inference_j", "flags", "plan"])


def number(value: float | None, spec: str = ".4g") -> str:
    """A figure as text; an absent figure is an empty cell, never a made-up zero."""
    return "" if value is None else format(value, spec)


# A text cell a spreadsheet would read as a formula (a model named "=HYPERLINK(...)" from a shared database):
# written with a leading apostrophe, as OWASP's CSV injection guidance recommends
# (https://owasp.org/www-community/attacks/CSV_Injection). Numbers are written as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def csv_text(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return out.getvalue()


# Characters that start inline Markdown, each written with a backslash before it: CommonMark shows any
# backslash-escaped ASCII punctuation as the character itself
# (https://spec.commonmark.org/0.31.2/#backslash-escapes). They are the backslash, code spans (`), emphasis
# (*, and _ except between two letters or digits, where it cannot open or close emphasis:
# https://spec.commonmark.org/0.31.2/#emphasis-and-strong-emphasis, so caffe_forward stays as it is), links
# and images ([ ]), raw HTML and autolinks (<: a stored "<script>" or "<img onerror=...>" would otherwise
# reach any viewer that renders HTML in Markdown, https://spec.commonmark.org/0.31.2/#raw-html), entity
# references (&: a stored "&lt;" would show as "<"), GFM's strikethrough (~) and table cell delimiter (|: a
# pipe in a cell's content is escaped, https://github.github.com/gfm/#tables-extension-), and the math GitHub
# renders ($).
_MARKDOWN_INLINE = re.compile(r"([\\`*\[\]<&~|$]|(?<![^\W_])_|_(?![^\W_]))")
# What else opens a block at the start of a list item's text, which md_cell leaves: an ATX heading (#), a
# block quote (>), a bullet list or thematic break (- +), an ordered list (digits then . or ), escaped
# after the digits).
_MARKDOWN_BLOCK_START = re.compile(r"^(?:[#>+-]|\d{1,9}(?=[.)]))")


def md_cell(text) -> str:
    """Any value as the text of a Markdown table cell, shown as it is: inline markup and HTML escaped,
    control characters as visible escapes (terminal.printable), and each line end (CommonMark's: LF, CR,
    CRLF) a <br>, since a GFM table row is one line (https://github.github.com/gfm/#tables-extension-)."""
    lines = re.split(r"\r\n|\r|\n", str(text))
    return "<br>".join(_MARKDOWN_INLINE.sub(r"\\\1", printable(line)) for line in lines)


def md_list_item(text) -> str:
    """Any value as one Markdown list item ("- ..." line): a list item holds blocks, so what would open one
    at its start is escaped too (https://spec.commonmark.org/0.31.2/#list-items)."""
    cell = md_cell(str(text).lstrip())
    return "- " + _MARKDOWN_BLOCK_START.sub(lambda m: m[0] + "\\" if m[0][0].isdigit() else "\\" + m[0], cell,
                                            count=1) + "\n"


def markdown_table(header: list[str], align: str, rows: list[list]) -> str:
    """align: one letter per column, "l" or "r". Every cell, the header's too, goes through md_cell."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(md_cell(c) for c in header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def flat_row(result: Result) -> dict:
    """One result as a flat row (CSV, DataFrame): the headline figures, telemetry's power and energy, the
    validity flags' codes."""
    doc = result.to_dict()
    row = {k: doc[k] for k in _COLUMNS if k in doc and not isinstance(doc[k], (dict, list))}
    latency, power = result.latency, result.power
    row.update({f"latency_{k}_ms": latency.get(k) for k in LATENCY_KEYS})
    row.update(variant=result.figures.get("variant"), processor=result.settings.get("processor"),
               power_w=power.mean_w, energy_per_inference_j=power.energy_per_inference_j,
               flags=",".join(flag.code for flag in result.flag_list),
               plan=(result.plan or {}).get("hash"))
    return row


def to_dataframe(results: list[Result]):
    """The results as a pandas DataFrame, one row per result (columns as in the CSV export). pandas is
    optional: pip install pandas."""
    try:
        import pandas
    except ImportError:
        raise ImportError("results as a DataFrame need pandas: pip install pandas (or 'edgeprof[report]')") from None
    return pandas.DataFrame([flat_row(r) for r in results], columns=_COLUMNS)


def export(results: list[Result], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], indent=2) + "\n"
    if fmt == "csv":
        return csv_text([flat_row(r) for r in results], _COLUMNS)
    if fmt == "md":
        rows = []
        for r in results:
            latency, what = headline(r)
            rows.append([r.id, r.device, r.model, r.backend, r.batch, number(latency), what, number(r.throughput_ips),
                         "" if r.iterations is None else r.iterations,
                         "ok" if r.status == "ok" else f"failed: {r.error or ''}",
                         ", ".join(flag.code for flag in r.flag_list)])
        return markdown_table(["id", "device", "model", "backend", "batch", "latency ms", "statistic, span", "img/s",
                               "iterations", "status", "flags"], "rlllrrlrrll", rows)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
