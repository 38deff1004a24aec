"""An end-to-end result's stages (measure --input, --span end-to-end) as rows and a table: each stage's median,
p90, p99 and count per iteration, its share of the total, and the line that sums them up (the total against the
stages' sum, images per second, the wait for the prefetch queue). The figures are the board's
(edgeprof/onboard/image_inputs.py says what each stage spans); rows are data, the table is for the terminal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rich.markup import escape
from rich.table import Table

from ..result import Result
from .table import backend_label

# What each stage spans, in words for the table's last column.
STAGE_SPANS = {
    "decode": "file read and decoded to RGB",
    "resize": "to the net's input, bilinear",
    "queue_wait": "waiting for the prefetch queue",
    "normalize": "(pixel - mean) * scale, as a tensor",
    "copy": "into the input tensor on the device",
    "forward": "the net, synchronized",
    "post": "post-processing, answer on the host",
}


@dataclass
class StageRow:
    name: str
    median_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    count: int
    in_total: bool           # False for decode and resize with --prefetch: the thread's, outside the total
    share: float | None      # of the total's median


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _figure(stats: dict, key: str) -> float | None:
    value = stats.get(key)
    return value if _number(value) else None


def _count(stats: dict) -> int:
    value = stats.get("count")
    return value if type(value) is int and value >= 0 else 0


def _stats(found, key) -> dict:
    """One stage's statistics as stored, or {} where a board wrote something else."""
    value = found.get(key) if isinstance(found, dict) else None
    return value if isinstance(value, dict) else {}


def end_to_end(result: Result) -> dict | None:
    """The result's end-to-end figures when they have the shape the runner writes, else None."""
    found = result.figures.get("end_to_end")
    if not isinstance(found, dict) or not isinstance(found.get("stages"), list) \
            or not isinstance(found.get("stage_ms"), dict) or not isinstance(found.get("total_ms"), dict):
        return None
    return found


def stage_rows(result: Result) -> list[StageRow]:
    """One row per stage in the order they ran, then the total (in_total True, share 1)."""
    found = end_to_end(result)
    if found is None:
        return []
    total = _figure(found["total_ms"], "median")
    in_total = found.get("in_total") if isinstance(found.get("in_total"), list) else found["stages"]
    rows = []
    for name in map(str, found["stages"]):
        stats = _stats(found["stage_ms"], name)
        median = _figure(stats, "median")
        rows.append(StageRow(name, median, _figure(stats, "p90"), _figure(stats, "p99"), _count(stats),
                             name in in_total, median / total if median is not None and total else None))
    totals = found["total_ms"]
    rows.append(StageRow("total", total, _figure(totals, "p90"), _figure(totals, "p99"), _count(totals), True,
                         1.0 if total else None))
    return rows


def stages_sum_ms(rows: list[StageRow]) -> float | None:
    """The sum of the medians of the stages inside the total (the total itself left out)."""
    parts = [row.median_ms for row in rows if row.in_total and row.name != "total"]
    return sum(parts) if parts and None not in parts else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def stages_table(result: Result) -> Table:
    found = end_to_end(result) or {}
    title = (f"#{result.id} {result.model} {backend_label(result)} batch {result.batch} on {result.device}: end to "
             f"end, per {found.get('per', 'iteration')}")
    table = Table("stage", "median ms", "p90 ms", "p99 ms", "count", "share", "spans", title=escape(title),
                  title_justify="left")
    for row in stage_rows(result):
        share = "-" if row.share is None else f"{row.share:.0%}"
        spans = STAGE_SPANS.get(row.name, "")
        if not row.in_total:
            spans += " (prefetch thread, outside the total)"
        table.add_row(escape(row.name), _ms(row.median_ms), _ms(row.p90_ms), _ms(row.p99_ms), str(row.count), share,
                      spans if row.name != "total" else "first decode (or queue wait) to the answer")
    return table


def describe_stages(result: Result) -> str:
    found = end_to_end(result) or {}
    rows = stage_rows(result)
    total = rows[-1].median_ms if rows else None
    summed = stages_sum_ms(rows)
    decoder = _stats(found, "decoder")
    normalization = _stats(found, "normalization")
    line = (f"#{result.id} {result.model} {backend_label(result)} batch {result.batch}: total median {_ms(total)} ms, stages' medians "
            f"sum to {_ms(summed)} ms")
    if total and summed:
        line += f" ({summed / total - 1:+.1%})"
    if _number(result.throughput_ips):
        line += f"; {result.throughput_ips:.4g} images/s"
    wait = next((row for row in rows if row.name == "queue_wait"), None)
    if wait is not None:
        line += f"; prefetch {found.get('prefetch')}: queue wait median {_ms(wait.median_ms)} ms"
    line += (f"; decoded with {decoder.get('name', '?')} {decoder.get('version', '')}".rstrip()
             + f", normalized with {normalization.get('source', '?')}")
    return escape(line)  # board and model texts in it are data, not markup
