"""`edgeprof report`: results as one self-contained HTML page, with plots and tables.

Self-contained: the plots are PNGs inlined as base64 data URIs, the style sheet is inline and there is no
script, so the page opens offline, from a mail or a design-review attachment, exactly as it was written.
`png_dir` writes the same PNGs as files.

The plots (matplotlib, drawn on its Agg canvas: no display needed on a lab host):
- Latency vs batch, one per model: a line per device x backend column (reporting.compare's columns) through
  the headline latency of the latest result at each batch, with the interquartile range of the per-iteration
  times as error bars where they are stored.
- Backbone comparison, one per batch: models side by side, a bar per column, error bars the 95 % interval of
  the median, the ratio to the baseline written above each bar; a hatched bar is a mean (no interval exists).
- Images per joule (images per second per watt), one per batch, where results carry power telemetry. What the
  power covers is the telemetry's own definition, written under the plot (a Jetson's board input rail, a
  desktop GPU's board alone).
- Power modes, one per power-mode sweep (reporting.power_modes): latency against mean board power, a point
  per nvpmodel mode, the Pareto front joined, the --budget-w / --budget-ms lines where given.
- A telemetry timeline of each result that carries raw samples: power, GPU load and clock, CPU load and the
  hottest sensor over the board's clock, the timed window shaded.
The tables: the comparison (reporting.compare) with its notes, and every result with its flags.

Every stored value is data, never markup: a shared PostgreSQL database takes results from any writer, so a
name, an error or even the batch may be any text. The page escapes every value it prints; the plots draw
every text as it is written (no mathtext, no TeX); a result whose batch is not a whole number in edgeprof's
range or whose headline latency is not a number is listed, not plotted.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .. import limits
from ..errors import ReportError
from ..result import Result, finite
from ..telemetry.summary import readings
from .compare import FLAG_MARK, Comparison, compare
from .flags import footnotes
from .metrics import MIB
from .power_modes import PowerModeSweep, describe_budgets, power_mode_sweeps
from .export import number
from .layers import LayerTable, cell_texts, describe as describe_layers, layer_tables
from .table import backend_label, headline, power_figures

WIDTH_IN = 8.0
DPI = 100
INSTALL_HINT = "pip install 'edgeprof[report]'"
# The longest plot file name under --png: the name is made from the model and device, which may be any length.
SLUG_CHARS = 80
# Text properties that make a matplotlib text literal. parse_math off: "$...$" is not read as mathtext (a model
# named net$x^2$ is printed as written, and a$\frac$ no longer fails the whole report); usetex off: a
# matplotlibrc's text.usetex does not send the text through TeX, where _, % and \ are markup too.
# https://matplotlib.org/stable/api/text_api.html#matplotlib.text.Text.set_parse_math
# https://matplotlib.org/stable/api/text_api.html#matplotlib.text.Text.set_usetex
LITERAL = {"parse_math": False, "usetex": False}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 1.5em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note, .meta { color: #555; font-size: .9em; }
table { border-collapse: collapse; font-size: .85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; white-space: nowrap; }
.flag { color: #a04000; } .failed { color: #b00020; }
"""


@dataclass
class Plot:
    name: str           # file name (without .png) under --png
    section: str        # the page section it belongs to
    title: str
    caption: str
    png: bytes
    width: int          # pixels
    height: int


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ReportError("edgeprof report draws its plots with matplotlib, which is not installed: "
                          + INSTALL_HINT) from e
    return Figure


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:SLUG_CHARS].rstrip("-")


def _unplottable(result: Result) -> str | None:
    """Why a successful result with a headline latency cannot be placed on a batch axis or compared, or None."""
    latency, _ = headline(result)
    low, high = limits.BATCH
    if not (type(result.batch) is int and low <= result.batch <= high):
        return f"its batch {result.batch!r} is not a whole number from {low} to {high}"
    if not (finite(latency) is not None and latency > 0):
        return f"its latency {latency!r} is not a positive number"
    return None


def _literal_legend(ax) -> None:
    for text in ax.legend(fontsize="small").get_texts():
        text.update(LITERAL)


class _Drawer:
    """Turns matplotlib figures into Plots, numbered in page order."""

    def __init__(self):
        self.figure_class = _figure_class()
        self.plots: list[Plot] = []

    def new(self, height_in: float):
        # A Figure on its own, not pyplot: no global state, no GUI backend; PNG output goes through Agg.
        return self.figure_class(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")

    def add(self, figure, section: str, title: str, caption: str) -> None:
        out = io.BytesIO()
        # No "Software" stamp: the same results give the same bytes whatever matplotlib drew them.
        figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        width, height = (round(v * DPI) for v in figure.get_size_inches())
        self.plots.append(Plot(f"{len(self.plots) + 1:02d}-{_slug(title)}", section, title, caption, out.getvalue(),
                               width, height))


def _latency_vs_batch(drawer: _Drawer, comparison: Comparison) -> None:
    for model in dict.fromkeys(row.model for row in comparison.rows):
        rows = sorted((row for row in comparison.rows if row.model == model), key=lambda row: row.batch)
        figure = drawer.new(4.0)
        ax = figure.add_subplot()
        for column in comparison.columns:
            points = [(row.batch, row.cells[column.label]) for row in rows if column.label in row.cells]
            if not points:
                continue
            batches = [b for b, _ in points]
            values = [c.latency_ms for _, c in points]
            below = [c.latency_ms - c.iqr_ms[0] if c.iqr_ms else 0.0 for _, c in points]
            above = [c.iqr_ms[1] - c.latency_ms if c.iqr_ms else 0.0 for _, c in points]
            what = "; ".join(dict.fromkeys(f"{c.statistic}, {c.span}" for _, c in points))
            # Mean-only columns get no error bars at all: a zero-length bar would read as "no spread".
            spread = [below, above] if any(c.iqr_ms for _, c in points) else None
            ax.errorbar(batches, values, yerr=spread, marker="o", capsize=3, label=f"{column.label} ({what})")
        batches = sorted({row.batch for row in rows})
        if len(batches) > 1 and batches[-1] / batches[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches], **LITERAL)
        ax.set_xlabel("batch size", **LITERAL)
        ax.set_ylabel("latency of one batch, ms", **LITERAL)
        ax.set_title(f"{model}: latency vs batch", **LITERAL)
        ax.grid(True, alpha=0.3)
        _literal_legend(ax)
        drawer.add(figure, "latency", f"{model} latency vs batch",
                   "Headline latency of one timed iteration on the whole batch (what it covers is the span in the "
                   "legend), the median of per-iteration times, or the mean where the backend reports only a mean, "
                   "of the latest result at each batch. Error bars: "
                   "interquartile range (25th-75th percentile) of the per-iteration times, where stored.")


def _memory_vs_batch(drawer: _Drawer, comparison: Comparison) -> None:
    """Beside each model's latency vs batch, its memory vs batch (seed 001's memory table as a plot), where
    its results have memory figures: the kind each row compares (reporting.metrics) named in the legend."""
    for model in dict.fromkeys(row.model for row in comparison.rows):
        rows = sorted((row for row in comparison.rows if row.model == model and row.figures.get("memory")),
                      key=lambda row: row.batch)
        if not rows:
            continue
        figure = drawer.new(4.0)
        ax = figure.add_subplot()
        for column in comparison.columns:
            points = [(row.batch, row.figures["memory"][column.label]) for row in rows
                      if column.label in row.figures["memory"]]
            if points:
                what = "; ".join(dict.fromkeys(f.what for _, f in points))
                ax.plot([b for b, _ in points], [f.value / MIB for _, f in points], marker="o",
                        label=f"{column.label} ({what})")
        batches = sorted({row.batch for row in rows})
        if len(batches) > 1 and batches[-1] / batches[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches], **LITERAL)
        ax.set_xlabel("batch size", **LITERAL)
        ax.set_ylabel("memory, MiB", **LITERAL)
        ax.set_title(f"{model}: memory vs batch", **LITERAL)
        ax.grid(True, alpha=0.3)
        _literal_legend(ax)
        drawer.add(figure, "latency", f"{model} memory vs batch",
                   "Memory of the latest result at each batch, the same kind across a batch's results: the "
                   "allocator's peak, nvidia-smi's figure for the process, the process's peak resident set, or "
                   "the board's peak from telemetry, the first every result of the batch has (named in the "
                   "legend). One figure per run, no error bars.")


def _grouped_bars(ax, comparison: Comparison, rows, value_of, error_of=None, label_of=None) -> None:
    """One group of bars per row (model), one bar per column; a cell without a value has no bar. With
    error_of (the latency bars) a cell whose statistic is a mean is hatched: it has no interval."""
    width = 0.8 / len(comparison.columns)
    for i, column in enumerate(comparison.columns):
        xs, heights, below, above, cells, labels = [], [], [], [], [], []
        for x, row in enumerate(rows):
            cell = row.cells.get(column.label)
            value = value_of(cell) if cell else None
            if value is None:
                continue
            xs.append(x - 0.4 + width * (i + 0.5))
            heights.append(value)
            # NaN draws no error bar: a bar without an interval must not show a zero-width one.
            low, high = (error_of(cell) if error_of else None) or (math.nan, math.nan)
            below.append(value - low)
            above.append(high - value)
            cells.append(cell)
            labels.append(label_of(row, column.label) if label_of else "")
        if not xs:
            continue
        bars = ax.bar(xs, heights, width, yerr=[below, above] if error_of else None, capsize=3, label=column.label,
                      color=f"C{i % 10}", edgecolor="black", linewidth=0.5)
        if error_of:
            for bar, cell in zip(bars, cells):
                if cell.statistic == "mean":
                    bar.set_hatch("//")
        if label_of:
            ax.bar_label(bars, labels=labels, padding=3, fontsize="x-small", **LITERAL)
    ax.set_xticks(range(len(rows)), [row.model for row in rows], **LITERAL)
    ax.grid(True, axis="y", alpha=0.3)


def _comparison_bars(drawer: _Drawer, comparison: Comparison) -> None:
    def ratio_label(row, label):
        text = comparison.ratio_text(row.ratios[label])
        # Above a bar only the factor and the marks fit; the table carries the interval, reasons and flags.
        short = "baseline" if text == "baseline" else text.split(" ")[0] + (" n.s." if text.endswith("n.s.") else "")
        return short + (f" {FLAG_MARK}" if row.cells[label].flags else "")

    for batch in sorted({row.batch for row in comparison.rows}):
        rows = [row for row in comparison.rows if row.batch == batch]
        figure = drawer.new(4.2)
        ax = figure.add_subplot()
        _grouped_bars(ax, comparison, rows, lambda c: c.latency_ms, lambda c: c.median_ci_ms, ratio_label)
        ax.set_ylabel("latency of one batch, ms", **LITERAL)
        ax.set_title(f"backbones at batch {batch}", **LITERAL)
        ax.margins(y=0.15)
        _literal_legend(ax)
        drawer.add(figure, "comparison", f"backbones at batch {batch}",
                   f"Headline latency of the latest result (median; hatched: mean, where the backend reports only a "
                   f"mean). Error bars: {comparison.confidence:.0%} interval of the median (bootstrap of per-iteration "
                   f"times, or the runner's order-statistics interval), none where there is no interval. Above each "
                   f"bar: its time / the time of {comparison.baseline.label}; n.s.: not significantly different; "
                   f"{FLAG_MARK}: flagged, see the results table.")


def _efficiency(drawer: _Drawer, comparison: Comparison) -> list[str]:
    """The images-per-joule plots; returns the power definitions they rest on (none: no power telemetry)."""
    def per_joule(cell):
        return cell.result.power.inferences_per_j

    definitions = []
    for batch in sorted({row.batch for row in comparison.rows}):
        rows = [row for row in comparison.rows if row.batch == batch]
        cells = [c for row in rows for c in row.cells.values() if per_joule(c) is not None]
        if not cells:
            continue
        # A stored result may hold energy without power_total (another writer's, or one the loader cut).
        power = list(dict.fromkeys(c.result.power.definition or "not stated" for c in cells))
        definitions += power
        figure = drawer.new(4.0)
        ax = figure.add_subplot()
        _grouped_bars(ax, comparison, rows, per_joule)
        ax.set_ylabel("images per joule (= img/s per W)", **LITERAL)
        ax.set_title(f"energy efficiency at batch {batch}", **LITERAL)
        _literal_legend(ax)
        drawer.add(figure, "efficiency", f"images per joule at batch {batch}",
                   "Images per joule: inferences in the timed window / (mean power over the samples in the window x "
                   "the window's duration), the latest result per bar. For caffe the window holds forward and backward "
                   "passes. Power, as the telemetry defines it: " + "; ".join(power) + ".")
    return definitions


def _power_modes(drawer: _Drawer, sweeps: list[PowerModeSweep], budget_w: float | None,
                 budget_ms: float | None) -> None:
    for sweep in sweeps:
        points = sorted((p for p in sweep.points if p.usable), key=lambda p: p.power_w)
        if not points:
            continue
        figure = drawer.new(4.0)
        ax = figure.add_subplot()
        ax.scatter([p.power_w for p in points], [p.latency_ms for p in points],
                   c=["C3" if p.pareto else "C0" for p in points], zorder=3)
        for p in points:
            ax.annotate(p.mode, (p.power_w, p.latency_ms), textcoords="offset points", xytext=(5, 5),
                        fontsize="small", **LITERAL)
        front = [p for p in points if p.pareto]
        ax.plot([p.power_w for p in front], [p.latency_ms for p in front], color="C3", linewidth=1,
                drawstyle="steps-post", label="Pareto front")
        if budget_w is not None:
            ax.axvline(budget_w, color="0.4", linestyle="--", label=f"budget {budget_w:g} W")
        if budget_ms is not None:
            ax.axhline(budget_ms, color="0.4", linestyle=":", label=f"budget {budget_ms:g} ms")
        ax.set_xlabel("mean board power over the timed window, W", **LITERAL)
        ax.set_ylabel(f"latency, ms ({points[0].statistic})", **LITERAL)
        ax.set_title(f"power modes: {sweep.label}", **LITERAL)
        ax.grid(True, alpha=0.3)
        _literal_legend(ax)
        drawer.add(figure, "power-modes", f"power modes {sweep.label}",
                   "One point per nvpmodel mode, clocks pinned at the mode's highest (jetson_clocks); red: on the "
                   "Pareto front (no mode faster at no more power). Power: the telemetry's board total ("
                   + ", ".join(dict.fromkeys(p.result.power.definition or "not stated" for p in points))
                   + ") averaged over the samples in the timed window.")


def _power_modes_html(sweeps: list[PowerModeSweep], budget_w: float | None, budget_ms: float | None) -> str:
    header = ["", "mode", "latency ms", "statistic, span", "img/s", "W", "J per image", "clocks reached MHz",
              "throttling", "id"]
    parts = []
    for sweep in sweeps:
        rows = "".join(
            f"<tr><td>{'*' if p.pareto else ''}</td><td>{_e(p.mode)}</td>"
            + "".join(f'<td class="num">{_e(_figure_text(v))}</td>'
                      for v in (p.latency_ms, p.statistic, p.result.throughput_ips, p.power_w, p.energy_j))
            + f"<td>{_e(' '.join(f'{unit} {mhz:.0f}' for unit, mhz in p.clocks_mhz.items()))}</td>"
            f"<td>{_e(', '.join(p.throttling))}</td><td class=\"num\">{_e(p.result.id)}</td></tr>"
            for p in sorted(sweep.points, key=lambda p: (p.power_w is None, p.power_w or 0)))
        notes = [f"not measured: {mode}: {why}" for mode, why in sweep.refused.items()]
        notes += describe_budgets(sweep, budget_w, budget_ms)
        parts.append(f"<h3>{_e(sweep.label)}</h3><table class=\"power-modes\"><thead><tr>"
                     + "".join(f"<th>{_e(h)}</th>" for h in header) + f"</tr></thead><tbody>{rows}</tbody></table>"
                     + (f"<ul class=\"note\">{''.join(f'<li>{_e(n)}</li>' for n in notes)}</ul>" if notes else ""))
    return "".join(parts)


def _cpu_load(sample) -> float | None:
    online = [c for c in sample.cpu_load_pct or [] if c is not None]
    return sum(online) / len(online) if online else None


# What a timeline shows, each in its own panel where the samples have it.
_SERIES = (
    ("power, W", lambda s: s.power_total_w),
    ("GPU load, %", lambda s: s.gpu_load_pct),
    ("GPU clock, MHz", lambda s: s.gpu_freq_mhz),
    ("CPU load, %\n(mean of online CPUs)", _cpu_load),
    ("hottest sensor, °C", lambda s: max(s.temps_c.values()) if s.temps_c else None),
)


def _timelines(drawer: _Drawer, results: list[Result]) -> None:
    for r in results:
        telemetry, power = r.telemetry or {}, r.power.definition
        samples = readings(telemetry.get("samples") or [], power)
        series = [(label, [(s.t, get(s)) for s in samples if get(s) is not None]) for label, get in _SERIES]
        series = [(label, points) for label, points in series if points]
        if not series:
            continue
        window = r.timing.window
        t0 = window[0] if window else samples[0].t
        figure = drawer.new(1.5 * len(series) + 0.8)
        axes = figure.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, points) in zip(axes, series):
            ax.plot([t - t0 for t, _ in points], [v for _, v in points], marker=".", markersize=3, linewidth=1)
            if window:
                ax.axvspan(0, window[1] - t0, color="0.85", zorder=0)
            ax.set_ylabel(label, fontsize="small", **LITERAL)
            ax.grid(True, alpha=0.3)
        axes[-1].set_xlabel("seconds from the start of the timed window (board clock)" if window else
                            "seconds from the first sample (no timed window reported)", **LITERAL)
        title = f"result {r.id}: {r.model} batch {r.batch}, {r.device} {backend_label(r)}"
        axes[0].set_title(title, fontsize="medium", **LITERAL)
        drawer.add(figure, "telemetry", f"telemetry {title}",
                   f"Raw samples of {telemetry.get('source')} every {telemetry.get('interval_ms')} ms; shaded: the "
                   f"timed window." + (f" Power, as the telemetry defines it: {power}." if power else ""))


# --- HTML ---------------------------------------------------------------------------------------------

def _e(text) -> str:
    """Any value as HTML text, safe in an element and in a quoted attribute (quotes are escaped too)."""
    return html.escape(str(text), quote=True)


def _figure_text(value) -> str:
    """A stored figure as table text: a number formatted, nothing for None, anything else as it is."""
    if value is None:
        return ""
    return number(value) if finite(value) is not None else str(value)


def _figure_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (f'<figure class="plot" id="plot-{_e(plot.name)}"><img alt="{_e(plot.title)}" width="{plot.width}" '
            f'height="{plot.height}" src="data:image/png;base64,{data}"><figcaption>{_e(plot.caption)}</figcaption>'
            f"</figure>")


def _comparison_html(comparison: Comparison) -> str:
    head = "".join(f"<th>{_e(c.label)}{'<br>(baseline)' if c == comparison.baseline else ''}</th>"
                   for c in comparison.columns)
    body = []
    for row in comparison.rows:
        cells = "".join('<td class="num">' + "<br>".join(_e(line) for line in comparison.cell_lines(row, c.label))
                        + "</td>" for c in comparison.columns)
        body.append(f"<tr><td>{_e(row.model)}</td><td class=\"num\">{_e(row.batch)}</td>{cells}</tr>")
    items = [comparison.legend()] + comparison.sentences() + comparison.notes()
    return (f'<table class="comparison"><thead><tr><th>model</th><th>batch</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            f"<ul class=\"note\">{''.join(f'<li>{_e(item)}</li>' for item in items)}</ul>")


def _results_html(results: list[Result]) -> str:
    header = ["id", "run", "device", "model", "backend", "batch", "latency ms", "statistic, span", "img/s",
              "iterations", "power W (mean, timed window)", "J per image", "status", "flags"]
    rows = []
    for r in results:
        latency, what = headline(r)
        watts, joules = power_figures(r)
        status = "ok" if r.status == "ok" else f'<span class="failed">failed: {_e(r.error or "")}</span>'
        flags = "<br>".join(f'<span class="flag">{_e(f.code)}</span>' + (f": {_e(f.detail)}" if f.detail else "")
                            for f in r.flag_list)
        nums = [_figure_text(latency), what, _figure_text(r.throughput_ips),
                "" if r.iterations is None else r.iterations, _figure_text(watts), _figure_text(joules)]
        rows.append(f"<tr><td class=\"num\">{_e(r.id if r.id is not None else '')}</td><td>{_e(r.run_id)}</td>"
                    f"<td>{_e(r.device)}</td><td>{_e(r.model)}</td><td>{_e(backend_label(r))}</td>"
                    f"<td class=\"num\">{_e(r.batch)}</td>"
                    + "".join(f'<td class="num">{_e(v)}</td>' for v in nums)
                    + f"<td>{status}</td><td>{flags}</td></tr>")
    meanings = "".join(f"<li>{_e(line.strip())}</li>" for line in footnotes(results))
    return (f'<table class="results"><thead><tr>{"".join(f"<th>{_e(h)}</th>" for h in header)}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>" + (f'<ul class="note">{meanings}</ul>' if meanings else ""))


def _layers_html(table: LayerTable) -> str:
    """One model's per-layer table (edgeprof.reporting.layers): per result its ms, share and MMACs per ms, and the
    ratio to the first result of the same runtime; then what each column spans and the layers that moved."""
    head = ["layer", "type", "MMACs"]
    for column in table.columns:
        head += [f"{column.label}: ms", "share", "MMAC/ms"]
        if column.against is not None:
            head.append(f"x #{table.columns[column.against].result_id}")
    body = []
    for row in table.rows:
        cells = [row.layer, row.type or "", "" if row.macs is None else f"{row.macs / 1e6:,.1f}"]
        for column, cell in zip(table.columns, row.cells):
            cells += cell_texts(cell)
            if column.against is not None:
                cells.append("" if cell.ratio is None else f"{cell.ratio:.2f}")
        body.append("<tr>" + "".join(f"<td>{_e(c)}</td>" if i < 2 else f'<td class="num">{_e(c)}</td>'
                                     for i, c in enumerate(cells)) + "</tr>")
    notes = "".join(f"<li>{_e(line)}</li>" for line in describe_layers(table))
    return (f'<h3>{_e(table.model)}</h3><table class="layers"><thead><tr>'
            f'{"".join(f"<th>{_e(h)}</th>" for h in head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<ul class="note">{notes}</ul>')


def _section(section_id: str, heading: str, plots: list[Plot], body: str = "") -> str:
    figures = "".join(_figure_html(p) for p in plots if p.section == section_id)
    return f'<section id="{section_id}"><h2>{_e(heading)}</h2>{figures}{body}</section>'


def write_report(results: list[Result], path, *, title: str | None = None, baseline: str | None = None,
                 png_dir=None, budget_w: float | None = None, budget_ms: float | None = None) -> list[Plot]:
    """Write the report of `results` to `path` (and each plot as PNG under `png_dir`); returns the plots.
    ReportError without matplotlib or without results; ValueError when `baseline` names no single column."""
    if not results:
        raise ReportError("no results to report")
    drawer = _Drawer()
    order = sorted(results, key=lambda r: (r.id is None, r.id or 0))
    # compare() takes failed results too (it names them in its notes); a successful one that cannot be
    # placed on the axes is named on the page instead.
    measured = [r for r in order if r.status == "ok" and headline(r)[0] is not None]
    unplottable = {id(r): reason for r in measured if (reason := _unplottable(r))}
    comparable = [r for r in order if id(r) not in unplottable]
    usable = any(id(r) not in unplottable for r in measured)
    comparison = compare(comparable, baseline) if usable else None
    power = []
    if comparison:
        _latency_vs_batch(drawer, comparison)
        _memory_vs_batch(drawer, comparison)
        _comparison_bars(drawer, comparison)
        power = _efficiency(drawer, comparison)
    sweeps = power_mode_sweeps(order)
    _power_modes(drawer, sweeps, budget_w, budget_ms)
    _timelines(drawer, order)
    plots = drawer.plots
    per_layer = layer_tables([r for r in order if r.status == "ok"])

    runs = ", ".join(dict.fromkeys(r.run_id for r in order))
    title = title or f"edgeprof report: run {runs}"
    failed = sum(r.status != "ok" for r in order)
    nothing = '<p class="note">No successful result to plot or compare.</p>'
    left_out = "".join(f'<p class="note">Not plotted or compared: result {_e(r.id)} ({_e(r.device)} '
                       f'{_e(backend_label(r))} {_e(r.model)}): {_e(unplottable[id(r)])}.</p>'
                       for r in order if id(r) in unplottable)
    sections = [
        _section("latency", "Latency vs batch", plots, "" if comparison else nothing),
        _section("comparison", "Backbone comparison", plots,
                 (_comparison_html(comparison) if comparison else nothing) + left_out),
        _section("efficiency", "Throughput per watt", plots,
                 "" if power else '<p class="note">no power telemetry: none of these results carries a power '
                                  'figure (a board without power rails, tegrastats without root, or results from '
                                  'before telemetry).</p>'),
        *([_section("power-modes", "Power modes", plots, _power_modes_html(sweeps, budget_w, budget_ms))]
          if sweeps else []),
        _section("telemetry", "Telemetry timelines", plots,
                 "" if any(p.section == "telemetry" for p in plots) else
                 '<p class="note">no telemetry samples stored with these results.</p>'),
        *([_section("layers", "Per layer", plots, "".join(_layers_html(t) for t in per_layer))] if per_layer else []),
        _section("results", "Results", plots, _results_html(order)),
    ]
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"
            f'<p class="meta">{len(order)} results ({failed} failed) from run {_e(runs)} on '
            f"{_e(', '.join(dict.fromkeys(r.device for r in order)))}; generated {generated} by edgeprof.</p>"
            + "".join(sections) + "</body></html>\n")
    Path(path).write_text(page, encoding="utf-8")
    if png_dir is not None:
        folder = Path(png_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for plot in plots:
            (folder / f"{plot.name}.png").write_bytes(plot.png)
    return plots
