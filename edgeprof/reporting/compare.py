"""Results side by side: rows models x batch, columns device x backend (with the variant and processor where
there is one, as the results table names them), each cell the headline latency with its spread, and against
a baseline column the time ratio with a bootstrap confidence interval.

The cell
  The headline latency of reporting.table.headline: the median where the backend measured per-iteration
  times, else the mean (`caffe time` prints only a mean). Its spread, where the per-iteration times are stored
  (`figures["times_ms"]`): their interquartile range and the 95 % interval of the median (the bootstrap
  below); for older results without them, the runner's own interval of the median (`figures["ci95_ms"]`,
  order statistics) where there is one; for a mean-only backend nothing.

Repeated runs
  Several results for one cell (the same model, batch, device, backend and variant measured again): the
  latest is used (highest id; among results not stored, the last given) and the older ones are named in the
  notes. Not pooled: runs at different times see different clocks and temperatures, and pooling their
  iterations would hide that run-to-run variation in an interval that covers only iteration-to-iteration
  noise. Select runs (`edgeprof compare --run`) to compare others. The honest way to include run-to-run
  variation is `measure --repeat N`: where its summary is among the results, the summary is the cell (its
  runs are not shown apart), its interval is the summary's (the hull of the runs' intervals,
  edgeprof.validity.summarize_repeats), and a note says so. A ratio with a summary on either side has no
  bootstrap (the summary keeps no pooled iterations): its interval runs from the ratio of the intervals'
  ends, [low / base high, high / base low], which covers the true ratio whenever both intervals cover their
  medians: at least 90 % (Bonferroni) when each is a 95 % interval.

The ratio and its interval
  ratio = cell latency / baseline latency, a time ratio: 0.80 is 20 % less time than the baseline. Its 95 %
  interval is a percentile bootstrap: each side's per-iteration times are resampled independently, 2000
  times, with a generator seeded from the seed and the result (the same results always give the same
  interval, whatever else is compared), the ratio of the resamples' medians is taken each time, and the
  interval runs from the 2.5th to the 97.5th percentile of those ratios. Where it contains 1 the difference
  is not significant, marked "n.s.". Where either side has no per-iteration times there is no interval, and
  the cell says why ("n/a: caffe reports only a mean"); none is invented. Where the two results stored the
  timing settings they ran with and those differ (TensorRT 11's trtexec defaults against 10's, say), a note
  starting "span_mismatch" says how: the ratio then compares different spans.

  A resample's median is drawn directly instead of drawing n indices and sorting them. Resampling n values
  with replacement from sorted x(1..n) draws indices floor(n*U) for n uniforms U; floor is monotone, so the
  resample's k-th smallest value is x at floor(n*U(k)), U(k) the k-th smallest of n uniforms, which is
  Beta(k, n+1-k) distributed; the next one, U(k+1), is U(k) + (1-U(k)) * Beta(1, n-k) (the smallest of the
  n-k uniforms above U(k)). The same distribution as the textbook bootstrap at O(1) per resample instead of
  O(n log n): compare stays instant on runs of 10^4 iterations without needing numpy.

Beside latency
  Throughput, memory and energy per inference (reporting.metrics) are computed for every cell and exported
  (JSON, CSV) whatever is shown; `metrics` picks the groups the table and Markdown show, each a column per
  device x backend and a factor column per non-baseline one (seed 001's memory and time tables). Their factors
  have no interval: each is one figure per run. Rows are model x batch x mode: a training step (--mode
  train-step) is a row of its own beside the inference of the same model and batch.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Callable

from rich.table import Table

from ..onboard.timing import percentile
from ..result import Result
from .export import FORMATS, csv_text, markdown_table, md_list_item
from .metrics import FIGURES, METRICS, Figure, row_figures
from .table import backend_label, headline

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 1
# Below this many per-iteration times the resample medians take only a handful of distinct values and a
# percentile interval from them means little.
MIN_SAMPLES = 10
NOT_SIGNIFICANT = "n.s."
FLAG_MARK = "!"

_CSV_COLUMNS = ["model", "batch", "column", "device", "backend", "baseline", "result_id", "run_id", "statistic",
                "span", "latency_ms", "iqr_low_ms", "iqr_high_ms", "median_ci_low_ms", "median_ci_high_ms",
                "median_ci_method", "samples", "ratio", "ratio_statistic", "ratio_ci_low", "ratio_ci_high",
                "significant", "ratio_note", "flags", "older_result_ids", "mode"]
_CSV_COLUMNS += [f"{name}_{part}" for name in FIGURES for part in ("value", "unit", "what", "factor", "factor_note")]


def bootstrap_medians(ordered: list[float], resamples: int, rng: random.Random) -> list[float]:
    """The medians of `resamples` bootstrap resamples of sorted `ordered`, drawn through order statistics
    (module docstring): for even n the mean of the two middle values, as `percentile(.., 50)` takes it."""
    n = len(ordered)
    k = (n + 1) // 2          # 1-based rank of the (lower) middle value
    medians = []
    for _ in range(resamples):
        u = rng.betavariate(k, n + 1 - k)
        low = ordered[min(int(u * n), n - 1)]
        if n % 2:
            medians.append(low)
        else:
            above = u + (1.0 - u) * rng.betavariate(1, n - k)
            medians.append((low + ordered[min(int(above * n), n - 1)]) / 2.0)
    return medians


def percentile_interval(values: list[float], confidence: float) -> tuple[float, float]:
    ordered = sorted(values)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return percentile(ordered, tail), percentile(ordered, 100.0 - tail)


@dataclass(frozen=True)
class Column:
    label: str         # "sim-tx2 caffe", "orin pytorch (fp16+channels_last, cuda:0)"
    device: str
    backend: str       # the backend as the results table names it: with variant and processor


@dataclass
class Cell:
    result: Result
    latency_ms: float
    statistic: str                          # "median" or "mean": what latency_ms is
    times_ms: list[float] | None            # the per-iteration times, sorted; None when not stored
    iqr_ms: tuple[float, float] | None      # 25th and 75th percentile of the per-iteration times
    median_ci_ms: tuple[float, float] | None
    median_ci_method: str | None
    older_ids: list = field(default_factory=list)       # earlier results for the same cell, not used
    bootstrap: list[float] | None = field(default=None, repr=False)     # resample medians; None: no interval

    @property
    def repeat_runs(self) -> int | None:
        """How many runs the cell summarizes (measure --repeat), or None for a single run."""
        repeat = self.result.repeat or {}
        return repeat.get("runs") if repeat.get("summary") else None

    @property
    def span(self) -> str | None:
        return self.result.span

    @property
    def flags(self) -> list[dict]:
        """The result's validity flags as {"code", "detail"} (result.Flag: a bare string, as older results
        hold, is its own code)."""
        return [flag.to_dict() for flag in self.result.flag_list]


@dataclass
class Ratio:
    value: float | None                     # cell latency / baseline latency
    statistic: str                          # "median / median", "median / mean"...
    ci: tuple[float, float] | None
    note: str | None                        # "baseline", or why there is no interval
    method: str = "bootstrap"               # how ci was made: "bootstrap", or "interval ends" (repeat summaries)

    @property
    def significant(self) -> bool | None:
        return None if self.ci is None else not self.ci[0] <= 1.0 <= self.ci[1]


@dataclass
class Row:
    model: str
    batch: int
    cells: dict[str, Cell]                  # by column label
    ratios: dict[str, Ratio]
    mode: str = "inference"                 # or "train-step" (PyTorch's --mode)
    figures: dict[str, dict[str, Figure]] = field(default_factory=dict)   # metric -> column label -> figure

    @property
    def name(self) -> str:
        return f"{self.model} batch {self.batch}" + (f" {self.mode}" if self.mode != "inference" else "")


def mode_of(result: Result) -> str:
    return result.settings.get("mode") or "inference"


@dataclass
class Comparison:
    columns: list[Column]
    baseline: Column
    rows: list[Row]
    failed: list[Result]
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES
    seed: int = SEED
    metrics: tuple[str, ...] = ("latency",)     # the column groups the table and Markdown show

    # --- wording --------------------------------------------------------------------------------------

    def cell_lines(self, row: Row, label: str) -> list[str]:
        """What a table shows for one cell: the latency with its statistic and span, its spread, the ratio."""
        cell = row.cells.get(label)
        if cell is None:
            return ["-"]
        lines = [f"{cell.latency_ms:.4g} ms {cell.statistic}, {cell.span}" + (f" {FLAG_MARK}" if cell.flags else "")]
        if cell.iqr_ms:
            lines.append(f"IQR {cell.iqr_ms[0]:.4g}-{cell.iqr_ms[1]:.4g} ms")
        elif cell.median_ci_ms:
            lines.append(f"{self.confidence:.0%} CI of median {cell.median_ci_ms[0]:.4g}-{cell.median_ci_ms[1]:.4g} ms")
        lines.append(self.ratio_text(row.ratios[label]))
        return lines

    def ratio_text(self, ratio: Ratio) -> str:
        if ratio.note == "baseline":
            return "baseline"
        if ratio.value is None:
            return ratio.note
        if ratio.ci is None:
            return f"x{ratio.value:.3f} ({ratio.statistic}), {ratio.note}"
        mark = f" {NOT_SIGNIFICANT}" if not ratio.significant else ""
        return f"x{ratio.value:.3f} [{ratio.ci[0]:.3f}, {ratio.ci[1]:.3f}]{mark}"

    def legend(self) -> str:
        latency = (f"Cell: the latest result's headline latency in ms (statistic, span); IQR: 25th-75th percentile "
                   f"of its per-iteration times. xR: its time / the time of {self.baseline.label} (the baseline) "
                   f"with the {self.confidence:.0%} percentile bootstrap interval of the ratio of medians "
                   f"[low, high] ({self.resamples} resamples, seed {self.seed}); {NOT_SIGNIFICANT}: the interval "
                   f"contains 1, no significant difference; ")
        return ((latency if "latency" in self.metrics else "") + f"{FLAG_MARK}: validity flags, listed below."
                + "".join(f" {FIGURES[name].heading}: {self._figure_legend[name]}" for name in self.metrics
                          if name in FIGURES)
                + (f" A factor xF: the figure / the figure of the same kind of {self.baseline.label} (the "
                   f"baseline), without an interval: one figure per run; the kind is named under each figure, or "
                   f"once below where the table has one." if set(self.metrics) & set(FIGURES) else ""))

    def lines(self) -> list[str]:
        """What goes under the table: the legend, the latency sentences where latency is shown, the notes."""
        return [self.legend()] + (self.sentences() if "latency" in self.metrics else []) + self.notes()

    _figure_legend = {
        "throughput": "images per second (batch x iterations / timed window; Caffe: batch / mean forward pass).",
        "memory": "the first of allocator peak, nvidia-smi's figure for the process, process peak RSS, the "
                  "board's peak (telemetry) that every cell of the row has.",
        "energy": "board energy per image over the timed window (telemetry), in millijoules.",
        "build": "the engine build or compilation before the load (TensorRT: this run's build, or the cached "
                 "engine's; torch.compile: its first call).",
        "load": "the runner's load in its fresh process (net built and on the device; ONNX Runtime: session "
                "created).",
        "first": "the first inference after the load, apart from the steady-state latency.",
        "load-memory": "memory right after the load: allocator bytes in use where the framework has an allocator "
                       "every cell shares, else process RSS.",
        "first-memory": "memory right after the first inference, likewise.",
    }

    def sentences(self) -> list[str]:
        """hyperfine's wording, one line per compared cell: "A ran 1.17 times faster than B (95 % CI ...)"."""
        base = self.baseline.label
        pct = f"{self.confidence:.0%}"
        out = []
        for row in self.rows:
            for label, ratio in row.ratios.items():
                if label == base or ratio.value is None:
                    continue
                what = row.name
                if ratio.ci is not None and not ratio.significant:
                    out.append(f"{what}: {label} and {base} do not differ significantly ({ratio.value:.3f} times "
                               f"the baseline's time; {pct} CI {ratio.ci[0]:.3f}-{ratio.ci[1]:.3f} contains 1)")
                    continue
                if ratio.value < 1:
                    faster, slower, factor = label, base, 1.0 / ratio.value
                    ci = ratio.ci and (1.0 / ratio.ci[1], 1.0 / ratio.ci[0])
                else:
                    faster, slower, factor, ci = base, label, ratio.value, ratio.ci
                line = f"{what}: {faster} ran {factor:.2f} times faster than {slower}"
                if ci:
                    line += f" ({pct} CI {ci[0]:.2f}-{ci[1]:.2f}, ratio of medians)"
                else:
                    # The factor is the slower one's time over the faster one's: name the statistics that way.
                    line += (f" ({row.cells[slower].statistic} / {row.cells[faster].statistic}; "
                             f"{ratio.note})")
                out.append(line)
        return out

    def one_kind(self, metric: str) -> str | None:
        """What every figure of `metric` in the table is, where they are all of one kind (the table then says
        it once, in the notes, instead of in every cell)."""
        kinds = {figure.what for row in self.rows for figure in row.figures.get(metric, {}).values()}
        return kinds.pop() if len(kinds) == 1 else None

    def notes(self) -> list[str]:
        """Everything a reader must know to trust the table: flags, spans that differ, results not used."""
        out = [f"{FIGURES[name].heading}: every figure is the {kind}" for name in self.metrics
               if name in FIGURES and (kind := self.one_kind(name))]
        for row in self.rows:
            where = row.name
            base = row.cells.get(self.baseline.label)
            for label, cell in row.cells.items():
                for flag in cell.flags:
                    out.append(f"{FLAG_MARK} {where}, {label} (result {cell.result.id}): {flag['code']}"
                               + (f": {flag['detail']}" if flag.get("detail") else ""))
                if base is not None and cell.span != base.span:
                    out.append(f"{where}, {label}: span {cell.span}, the baseline's is {base.span}: the ratio "
                               f"compares different things")
                if base is not None and (differs := _span_mismatch(cell, base)):
                    out.append(f"span_mismatch: {where}, {label}: timed with {differs}: the ratio compares "
                               f"different spans, not like for like")
                if cell.older_ids:
                    out.append(f"{where}, {label}: the latest result ({cell.result.id}) is used; older "
                               f"{', '.join(map(str, cell.older_ids))} not pooled with it")
                if (cell.result.jobs or {}).get("aggregate"):
                    out.append(f"{where}, {label}: {cell.result.jobs['jobs']} concurrent jobs (result "
                               f"{cell.result.id}): throughput is their sum, latency the slowest job's")
                if cell.repeat_runs:
                    out.append(f"{where}, {label}: the summary of {cell.repeat_runs} runs in fresh processes "
                               f"(result {cell.result.id}); its interval includes the run-to-run spread, and its "
                               f"ratio's interval comes from the intervals' ends (at least 90 %)")
        for r in self.failed:
            out.append(f"not compared: result {r.id} ({r.device} {backend_label(r)} {r.model} batch {r.batch}) "
                       + (f"failed: {r.error}" if r.status != "ok" else "has no latency"))
        return out

    # --- exports --------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        def figures_doc(row: Row, label: str) -> dict:
            out = {}
            for name, metric in FIGURES.items():
                figure = row.figures.get(name, {}).get(label)
                out[name] = figure and {"value": figure.value, "unit": metric.unit, "what": figure.what,
                                        "factor": figure.factor, "factor_note": figure.note}
            return out

        def cell_doc(row: Row, cell: Cell, ratio: Ratio, column: Column) -> dict:
            return {
                "column": column.label, "device": column.device, "backend": column.backend,
                "result_id": cell.result.id, "run_id": cell.result.run_id, "statistic": cell.statistic,
                "span": cell.span, "latency_ms": cell.latency_ms,
                "iqr_ms": list(cell.iqr_ms) if cell.iqr_ms else None,
                "median_ci_ms": list(cell.median_ci_ms) if cell.median_ci_ms else None,
                "median_ci_method": cell.median_ci_method,
                "samples": len(cell.times_ms) if cell.times_ms is not None else None,
                "flags": cell.flags, "older_result_ids": cell.older_ids,
                "ratio": {"value": ratio.value, "statistic": ratio.statistic,
                          "ci": list(ratio.ci) if ratio.ci else None, "significant": ratio.significant,
                          "note": ratio.note, "ci_method": ratio.method if ratio.ci else None},
                "repeat_runs": cell.repeat_runs, "figures": figures_doc(row, column.label),
            }

        columns = {c.label: c for c in self.columns}
        return {
            "baseline": self.baseline.label,
            "method": {
                "cell": "headline latency of the latest result per cell: the median of per-iteration times where "
                        "the backend measured them, else the mean; older results are not pooled",
                "ratio": "cell latency / baseline latency (a time ratio: below 1 is faster than the baseline)",
                "interval": f"{self.confidence:.0%} percentile bootstrap of the ratio of medians, each side's "
                            f"per-iteration times resampled independently, {self.resamples} resamples, "
                            f"seed {self.seed}",
                "significant": "false where the interval contains 1; null where there is no interval",
                "confidence": self.confidence, "resamples": self.resamples, "seed": self.seed,
                "figures": "throughput, memory and energy per cell (null where the result has none): value in its "
                           "unit, what it is (one kind per row where the cells share one), and the factor "
                           "value / the baseline's value of the same kind, without an interval (one figure per "
                           "run)",
            },
            "metrics": list(self.metrics),
            "columns": [{"label": c.label, "device": c.device, "backend": c.backend} for c in self.columns],
            "rows": [{"model": row.model, "batch": row.batch, "mode": row.mode,
                      "cells": [cell_doc(row, cell, row.ratios[label], columns[label])
                                for label, cell in row.cells.items()]}
                     for row in self.rows],
            "sentences": self.sentences(),
            "notes": self.notes(),
            "failed": [{"id": r.id, "device": r.device, "model": r.model, "backend": r.backend, "batch": r.batch,
                        "error": r.error} for r in self.failed],
        }

    def _csv_rows(self) -> list[dict]:
        rows = []
        for row, doc in zip(self.rows, self.to_dict()["rows"]):
            for cell in doc["cells"]:
                ratio, ci = cell["ratio"], cell["ratio"]["ci"] or [None, None]
                iqr, median_ci = cell["iqr_ms"] or [None, None], cell["median_ci_ms"] or [None, None]
                figures = {f"{name}_{part}": (figure or {}).get(key)
                           for name, figure in cell["figures"].items()
                           for part, key in (("value", "value"), ("unit", "unit"), ("what", "what"),
                                             ("factor", "factor"), ("factor_note", "factor_note"))}
                rows.append({
                    **figures, "mode": row.mode, "model": row.model, "batch": row.batch, "column": cell["column"],
                    "device": cell["device"],
                    "backend": cell["backend"], "baseline": cell["column"] == self.baseline.label,
                    "result_id": cell["result_id"], "run_id": cell["run_id"], "statistic": cell["statistic"],
                    "span": cell["span"], "latency_ms": cell["latency_ms"], "iqr_low_ms": iqr[0],
                    "iqr_high_ms": iqr[1], "median_ci_low_ms": median_ci[0], "median_ci_high_ms": median_ci[1],
                    "median_ci_method": cell["median_ci_method"], "samples": cell["samples"],
                    "ratio": ratio["value"], "ratio_statistic": ratio["statistic"], "ratio_ci_low": ci[0],
                    "ratio_ci_high": ci[1], "significant": ratio["significant"], "ratio_note": ratio["note"],
                    "flags": ";".join(f["code"] for f in cell["flags"]),
                    "older_result_ids": ";".join(map(str, cell["older_result_ids"]))})
        return rows

    def export(self, fmt: str) -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2) + "\n"
        if fmt == "csv":
            return csv_text(self._csv_rows(), _CSV_COLUMNS)
        if fmt == "md":
            layout = self.layout(" ")
            body = [[text(row) for _, _, text in layout] for row in self.rows]
            text = markdown_table([header for header, _, _ in layout],
                                  "".join(justify[0] for _, justify, _ in layout), body)
            items = self.lines()
            return text + "\n" + "".join(md_list_item(line) for line in items)
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")

    def layout(self, separator: str) -> list[tuple[str, str, Callable[[Row], str]]]:
        """The columns the table and Markdown show: (heading, "left"/"right", the row's text). Latency alone:
        one column per device x backend, the ratio in the cell. Several metrics, or another one: a group per
        metric (the order asked), a column per device x backend and a factor column per non-baseline one.
        `separator` goes between a heading's parts (a line break in the terminal)."""
        out = [("model", "left", lambda row: row.model), ("batch", "right", lambda row: str(row.batch))]
        if any(row.mode != "inference" for row in self.rows):
            out.append(("mode", "left", lambda row: row.mode))
        base = self.baseline.label
        if self.metrics == ("latency",):
            return out + [(c.label + separator * (c == self.baseline) + "(baseline)" * (c == self.baseline), "right",
                           lambda row, label=c.label: "\n".join(self.cell_lines(row, label))) for c in self.columns]
        others = [c.label for c in self.columns if c.label != base]
        for name in self.metrics:
            heading = "latency ms" if name == "latency" else FIGURES[name].heading
            out += [(f"{heading}{separator}{c.label}" + " (baseline)" * (c == self.baseline), "right",
                     lambda row, label=c.label, name=name: self._value_text(row, name, label)) for c in self.columns]
            out += [(f"{name} factor{separator}{label}", "right",
                     lambda row, label=label, name=name: self._factor_text(row, name, label)) for label in others]
        return out

    def _value_text(self, row: Row, metric: str, label: str) -> str:
        if metric == "latency":
            return "\n".join(self.cell_lines(row, label)[:-1]) if label in row.cells else "-"
        figure = row.figures.get(metric, {}).get(label)
        if figure is None:
            return "-"
        return FIGURES[metric].shown(figure.value) + ("" if self.one_kind(metric) else f"\n{figure.what}")

    def _factor_text(self, row: Row, metric: str, label: str) -> str:
        if metric == "latency":
            return self.ratio_text(row.ratios[label]) if label in row.ratios else "-"
        figure = row.figures.get(metric, {}).get(label)
        if figure is None:
            return "-"
        return f"x{figure.factor:.3f}" if figure.factor is not None else figure.note

    def table(self) -> Table:
        table = Table(title=f"compared with {self.baseline.label}", title_justify="left")
        layout = self.layout("\n")
        for heading, justify, _ in layout:
            table.add_column(heading, justify=justify, overflow="fold")
        for row in self.rows:
            table.add_row(*(text(row) for _, _, text in layout))
        return table


# --- building -----------------------------------------------------------------------------------------

_TRAIN_VARIANT = "+train_step"


def _columns(results: list[Result]) -> dict[int, Column]:
    """The column of each result, keyed by id(result). A training step sits in the column of its inference
    (its mode is the row's): the "+train_step" the PyTorch runner appends to its variant (torch_runner.variant)
    is left out of the column's name."""
    names = {id(r): f"{r.device} {backend_label(r, with_repeat=False)}".replace(_TRAIN_VARIANT, "")
             for r in results}
    spans: dict[str, set] = {}
    for r in results:
        spans.setdefault(names[id(r)], set()).add(r.span)
    # One column holds one span: PyTorch with --span host and with --span compute measure different things.
    return {id(r): Column(names[id(r)] + (f" [{r.span}]" if len(spans[names[id(r)]]) > 1 else ""), r.device,
                          backend_label(r).replace(_TRAIN_VARIANT, ""))
            for r in results}


def _pick(columns: list[Column], wanted: str | None) -> Column:
    """The baseline: the first column, or the one named exactly, or the one whose label contains `wanted`."""
    if wanted is None:
        return columns[0]
    found = [c for c in columns if c.label == wanted] or [c for c in columns if wanted.lower() in c.label.lower()]
    if len(found) == 1:
        return found[0]
    raise ValueError(f"baseline {wanted!r} matches {'several columns' if found else 'no column'}; columns: "
                     + "; ".join(c.label for c in (found or columns)))


def _seed(seed: int, result: Result, column: Column) -> int:
    # hashlib, not hash(): str hashes change with PYTHONHASHSEED from one process to the next. surrogatepass:
    # a name with a lone surrogate (JSON allows "\ud800") still gives its own bytes instead of an error.
    key = f"{seed}|{result.run_id}|{result.id}|{result.model}|{result.batch}|{column.label}".encode(
        "utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def _cell(result: Result, older: list[Result], column: Column, confidence: float, resamples: int, seed: int) -> Cell:
    latency, statistic = result.latency.headline
    timing, intervals = result.timing, result.latency.intervals
    ordered = sorted(float(t) for t in timing.times_ms) if timing.times_ms else None
    cell = Cell(result, latency, statistic, ordered, None, None, None, [r.id for r in older])
    if ordered:
        cell.iqr_ms = (percentile(ordered, 25), percentile(ordered, 75))
    if cell.repeat_runs and statistic in intervals:
        cell.median_ci_ms = intervals[statistic]
        cell.median_ci_method = f"hull of the intervals of {cell.repeat_runs} runs (measure --repeat)"
    elif statistic == "median" and ordered and len(ordered) >= MIN_SAMPLES:
        cell.bootstrap = bootstrap_medians(ordered, resamples, random.Random(_seed(seed, result, column)))
        cell.median_ci_ms = percentile_interval(cell.bootstrap, confidence)
        cell.median_ci_method = f"percentile bootstrap, {resamples} resamples"
    elif timing.runner_ci95_ms and confidence == 0.95:    # the runner's interval is a 95 % one
        cell.median_ci_ms = timing.runner_ci95_ms
        cell.median_ci_method = "order statistics, from the runner"
    return cell


def _span_mismatch(cell: Cell, base: Cell) -> str | None:
    """How the timing settings two results ran with differ, where both stored them (settings["effective"]:
    TensorRT's CUDA graphs, spin-wait and data transfers, whose trtexec defaults changed between versions, see
    backends/tensorrt/commands.effective_timing); None where they agree or either does not say."""
    mine, theirs = ((c.result.settings or {}).get("effective") for c in (cell, base))
    if not mine or not theirs or mine == theirs:
        return None
    return "; ".join(f"{key} {mine.get(key)}, the baseline {theirs.get(key)}" for key in sorted(set(mine) | set(theirs))
                     if mine.get(key) != theirs.get(key))


def _no_interval(cell: Cell) -> str:
    if cell.statistic == "mean":
        return f"n/a: {cell.result.backend} reports only a mean"
    if cell.times_ms is None:
        return f"n/a: result {cell.result.id} has no per-iteration times stored"
    return f"n/a: result {cell.result.id} has only {len(cell.times_ms)} per-iteration times (under {MIN_SAMPLES})"


def _ratio(cell: Cell, base: Cell | None, confidence: float) -> Ratio:
    if base is None:
        return Ratio(None, "", None, "n/a: no baseline result for this model and batch")
    statistic = f"{cell.statistic} / {base.statistic}"
    if cell is base:
        return Ratio(1.0, statistic, None, "baseline")
    value = cell.latency_ms / base.latency_ms
    if (cell.repeat_runs or base.repeat_runs) and cell.median_ci_ms and base.median_ci_ms:
        (low, high), (base_low, base_high) = cell.median_ci_ms, base.median_ci_ms
        if base_low > 0:
            return Ratio(value, statistic, (low / base_high, high / base_low), None, "interval ends")
    # A mean-only side is the reason to give first: it will never have an interval; the other reasons pass.
    lacking = sorted((c for c in (cell, base) if c.bootstrap is None), key=lambda c: c.statistic != "mean")
    if lacking:
        return Ratio(value, statistic, None, _no_interval(lacking[0]))
    ratios = [a / b for a, b in zip(cell.bootstrap, base.bootstrap)]
    return Ratio(value, statistic, percentile_interval(ratios, confidence), None)


def compare(results: list[Result], baseline: str | None = None, *, confidence: float = CONFIDENCE,
            resamples: int = RESAMPLES, seed: int = SEED, metrics: tuple[str, ...] = ("latency",)) -> Comparison:
    """Compare results: see the module docstring. `baseline` names a column (its label, or a unique part of it);
    default the first column. `metrics`: the groups the table shows (METRICS), in that order. Columns and rows
    come in the order results were measured (by id, then the order given), so the default baseline is what was
    measured first. ValueError when nothing succeeded, the baseline names no single column, or a metric is
    unknown."""
    unknown = [name for name in metrics if name not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric {', '.join(unknown) or '(none given)'}; use one or more of "
                         f"{', '.join(METRICS)}")
    order = [r for _, r in sorted(enumerate(results), key=lambda p: (p[1].id is None, p[1].id or 0, p[0]))]
    # The runs of a --repeat whose summary is here are in the summary (and shown by it).
    summarized = {r.repeat.get("group") for r in order if r.repeat and r.repeat.get("summary")}
    in_summary = {id(r) for r in order
                  if r.repeat and not r.repeat.get("summary") and r.repeat.get("group") in summarized}
    # Likewise the jobs of a --jobs run whose aggregate is here.
    aggregated = {r.jobs.get("group") for r in order if r.jobs and r.jobs.get("aggregate")}
    in_summary |= {id(r) for r in order
                   if r.jobs and not r.jobs.get("aggregate") and r.jobs.get("group") in aggregated}
    usable = [r for r in order if r.status == "ok" and headline(r)[0] is not None and id(r) not in in_summary]
    if not usable:
        raise ValueError("no successful results to compare")
    kept = {id(r) for r in usable}
    column_of = _columns(usable)
    columns = list(dict.fromkeys(column_of[id(r)] for r in usable))
    base = _pick(columns, baseline)
    groups: dict[tuple, dict[Column, list[Result]]] = {}
    for r in usable:
        groups.setdefault((r.model, r.batch, mode_of(r)), {}).setdefault(column_of[id(r)], []).append(r)
    rows = []
    for (model, batch, mode), by_column in groups.items():
        cells = {column.label: _cell(found[-1], found[:-1], column, confidence, resamples, seed)
                 for column, found in by_column.items()}
        ratios = {label: _ratio(cell, cells.get(base.label), confidence) for label, cell in cells.items()}
        latest = {label: cell.result for label, cell in cells.items()}
        figures = {name: row_figures(metric, latest, base.label) for name, metric in FIGURES.items()}
        rows.append(Row(model, batch, cells, ratios, mode, figures))
    return Comparison(columns, base, rows, [r for r in order if id(r) not in kept | in_summary], confidence,
                      resamples, seed, tuple(dict.fromkeys(metrics)))
