"""Exports of results: CSV (one flat row per result), JSON (a list of result objects), Markdown (a table).

The CSV and Markdown writers here are shared with the other reports (reporting.compare), so every export
escapes and formats the same way."""
from __future__ import annotations

import csv
import io
import json

from ..result import LATENCY_KEYS, Result
from .table import headline

FORMATS = ("csv", "json", "md")
_COLUMNS = (["id", "run_id", "device", "model", "backend", "batch", "status", "error", "span"]
            + [f"latency_{k}_ms" for k in LATENCY_KEYS] + ["throughput_ips", "iterations", "started_at",
                                                           "variant", "processor", "power_w",
                                                           "energy_per_inference_j", "flags", "plan"])


def number(value: float | None, spec: str = ".4g") -> str:
    """A figure as text; an absent figure is an empty cell, never a made-up zero."""
    return "" if value is None else format(value, spec)


def csv_text(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def md_cell(text) -> str:
    """A Markdown table cell: a '|' would end the cell and a line end the row."""
    return str(text).replace("|", "/").replace("\n", "<br>")


def markdown_table(header: list[str], align: str, rows: list[list]) -> str:
    """align: one letter per column, "l" or "r"."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def flat_row(result: Result) -> dict:
    """One result as a flat row (CSV, DataFrame): the headline figures, telemetry's power and energy, the
    validity flags' codes."""
    doc = result.to_dict()
    row = {k: doc[k] for k in _COLUMNS if k in doc and not isinstance(doc[k], (dict, list))}
    row.update({f"latency_{k}_ms": result.latency_ms.get(k) for k in LATENCY_KEYS})
    telemetry = result.telemetry or {}
    row.update(variant=result.figures.get("variant"), processor=result.settings.get("processor"),
               power_w=(telemetry.get("power_total") or {}).get("mean_w"),
               energy_per_inference_j=(telemetry.get("energy") or {}).get("per_inference_j"),
               flags=",".join(f["code"] if isinstance(f, dict) else str(f) for f in result.flags),
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
                         "ok" if r.status == "ok" else f"failed: {r.error or ''}"])
        return markdown_table(["id", "device", "model", "backend", "batch", "latency ms", "statistic, span", "img/s",
                               "iterations", "status"], "rlllrrlrrl", rows)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
