"""Exports of results: CSV (one flat row per result), JSON (a list of result objects), Markdown (a table)."""
from __future__ import annotations

import csv
import io
import json

from ..result import LATENCY_KEYS, Result
from .table import headline

FORMATS = ("csv", "json", "md")
_COLUMNS = (["id", "run_id", "device", "model", "backend", "batch", "status", "error", "span"]
            + [f"latency_{k}_ms" for k in LATENCY_KEYS] + ["throughput_ips", "iterations", "started_at"])


def _flat(result: Result) -> dict:
    doc = result.to_dict()
    row = {k: doc[k] for k in _COLUMNS if k in doc}
    row.update({f"latency_{k}_ms": result.latency_ms.get(k) for k in LATENCY_KEYS})
    return row


def export(results: list[Result], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_flat(r) for r in results)
        return out.getvalue()
    if fmt == "md":
        lines = ["| id | device | model | backend | batch | latency ms | statistic, span | img/s | iterations | status |",
                 "|---:|---|---|---|---:|---:|---|---:|---:|---|"]
        for r in results:
            latency, what = headline(r)
            status = "ok" if r.status == "ok" else f"failed: {(r.error or '').replace('|', '/')}"
            lines.append(f"| {r.id} | {r.device} | {r.model} | {r.backend} | {r.batch} | "
                         f"{'' if latency is None else f'{latency:.4g}'} | {what} | "
                         f"{'' if r.throughput_ips is None else f'{r.throughput_ips:.4g}'} | "
                         f"{'' if r.iterations is None else r.iterations} | {status} |")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
