"""One per-layer table of one model across results: each runtime's per-layer figures against the prototxt's layers,
with each layer's share of its column's total and its MACs per ms; two results of the same runtime (two versions,
two boards) side by side say which layers moved, with ratios. Data only: `edgeprof layers` and the HTML report
render it.

Where each column's figures come from, and what they span (LayerColumn.how says it in every table):
    caffe        caffe time's per-layer forward timers (figures["layers"]): each layer's mean forward time over the
                 N forward+backward iterations, every layer timed alone (on a GPU by a synchronizing timer)
    pytorch      measure --per-layer (onboard/layer_timing.py): hooks around each Caffe layer's module, in a pass
                 of its own after the timed loop
    onnxruntime  measure --per-layer (onboard/onnxruntime_runner.py): ORT's profiler, per node of its optimized
                 graph, summed per group of layers the nodes compute (models/onnx_layers.py)
    tensorrt     trtexec --exportProfile, always (figures["layers"]): per engine layer, whose name says which layers
                 (Caffe's, or the ONNX nodes edgeprof named after them) it fuses
A group that computes several layers at once (a BatchNorm folded with its Scale, a fused kernel) has its time on
the row of its first layer; the rows of the others say which group holds them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgeprofError, ReportError
from ..models import parse, resolve
from ..models.onnx_layers import OTHER
from ..models.stats import NetStats, analyze
from ..result import Result

# A layer "moved" when its time changed by at least this factor (either way) between two results of one runtime,
# and it took at least MIN_SHARE of either column's total: a plain threshold, not a statistical test (Caffe gives
# per-layer means without their spread).
MOVED_FACTOR = 1.1
MIN_SHARE = 0.01


@dataclass
class LayerGroup:
    name: str
    covers: list[str]        # the prototxt layers it computes; [] for a runtime's own nodes
    ms: float


@dataclass
class LayerColumn:
    result_id: int | None
    label: str
    backend: str
    batch: int
    how: str                 # what the figures span and how they were timed
    groups: list[LayerGroup]
    total_ms: float          # the groups' sum
    pass_ms: float | None    # the per-layer pass's own forward (PyTorch, ONNX Runtime), None for Caffe
    latency_ms: float | None  # the result's latency: median, or Caffe's mean forward pass
    against: int | None = None  # the index of the earlier column of the same runtime its ratios are against
    flags: list[str] = field(default_factory=list)  # the result's validity flags (edgeprof.validity)


@dataclass
class LayerCell:
    ms: float | None = None
    share: float | None = None
    macs_per_ms: float | None = None
    group: list[str] | None = None   # on a group's first row: every layer it covers (when more than one)
    in_group: str | None = None      # on the other rows of a group: the group's name
    ratio: float | None = None       # ms against the column `against` of this row


@dataclass
class LayerRow:
    layer: str
    type: str | None
    macs: int | None         # per image (edgeprof.models.stats); None when the prototxt was not at hand
    cells: list[LayerCell]


@dataclass
class Moved:
    layer: str
    column: int
    ratio: float
    from_ms: float
    to_ms: float


@dataclass
class LayerTable:
    model: str
    columns: list[LayerColumn]
    rows: list[LayerRow]
    moved_factor: float = MOVED_FACTOR
    moved: list[Moved] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _groups(entries, name_key: str) -> list[LayerGroup]:
    """Groups from stored figures, skipping what is not a name and a time (results are data from boards)."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get(name_key), str) or not _number(entry.get("ms")):
            continue
        covers = entry.get("covers", [entry[name_key]])
        if not (isinstance(covers, list) and all(isinstance(c, str) for c in covers)):
            continue
        found.append(LayerGroup(entry[name_key], covers, float(entry["ms"])))
    return found


def _caffe_column(result: Result) -> tuple[list[LayerGroup], str, float | None]:
    entries = [{"name": e.get("name"), "ms": e.get("forward_ms")} for e in result.figures.get("layers") or []
               if isinstance(e, dict)]
    on = "GPU, a synchronizing timer per layer" if result.settings.get("gpu") else "CPU, wall clock"
    how = (f"caffe time's per-layer forward timers ({on}): the mean forward time of each layer over "
           f"{result.iterations} forward+backward iterations")
    return _groups(entries, "name"), how, None


def _runner_column(result: Result) -> tuple[list[LayerGroup], str, float | None]:
    profile = result.figures.get("per_layer")
    if not isinstance(profile, dict):
        return [], "", None
    iterations = profile.get("iterations")
    if result.backend == "pytorch":
        if profile.get("timer") == "cuda_event":
            timer = ("CUDA events: the GPU time between a layer's start and end, waits for its launch included; the "
                     "hooks add host work to every layer, no synchronize per layer")
        else:
            timer = "perf_counter: the host time of each module call; the hooks add two timer calls per layer"
        how = (f"PyTorch, hooks around each Caffe layer's module, median of {iterations} forwards in a pass of its "
               f"own after the timed loop ({timer}); that pass can be slower than the timed loop: compare layers by "
               f"their share, the net by its latency")
    else:
        provider = (result.figures.get("provider") or "?")
        how = (f"ONNX Runtime's profiler, {provider}: each node of its optimized graph timed on the host around "
               f"its kernel call, median of {iterations} runs in a profiling session after the timed loop; nodes "
               f"mapped to layers by their names (a fused kernel covers several layers)")
        if provider != "CPUExecutionProvider":
            how += "; on a GPU provider a node's time is its kernels' launch, not their GPU time"
    pass_ms = profile.get("forward_ms")
    return _groups(profile.get("layers"), "name"), how, pass_ms if _number(pass_ms) else None


# TensorRT's names of engine layers: fused layers joined by " + " and a DLA loadable as "{ForeignNode[first...last]}"
# (the builder's names, as trtexec's --exportProfile writes them: Profiler::exportJSONProfile in
# https://github.com/NVIDIA/TensorRT/blob/release/8.6/samples/common/sampleReporting.cpp).
_FOREIGN = re.compile(r"\{ForeignNode\[(.*?)(?:\.\.\.(.*))?\]\}")


def _layer_of(part: str, known: list[str]) -> str | None:
    """The prototxt layer a TensorRT name part is: the layer itself (built from the prototxt) or an ONNX node edgeprof
    named "<layer>/<op>" (onnx_export.name_nodes_by_layer); the longest such layer name."""
    found = [name for name in known if part == name or part.startswith(name + "/")]
    return max(found, key=len) if found else None


def _tensorrt_covers(name: str, known: list[str]) -> list[str]:
    foreign = _FOREIGN.fullmatch(name)
    if foreign:
        first, last = (_layer_of(p, known) for p in (foreign.group(1), foreign.group(2) or foreign.group(1)))
        if first is None or last is None:
            return []
        return known[known.index(first):known.index(last) + 1]
    # Every part must be a layer: TensorRT's own layers name the ones they serve ("Reformatting CopyNode for Input
    # Tensor 0 to conv1 + relu1") and are none of them.
    layers = [_layer_of(part.strip(), known) for part in name.split(" + ")]
    return [] if None in layers else list(dict.fromkeys(layers))


def _tensorrt_column(result: Result, known: list[str]) -> tuple[list[LayerGroup], str, float | None]:
    entries = [e for e in result.figures.get("layers") or [] if isinstance(e, dict) and isinstance(e.get("name"), str)]
    median = all(_number(e.get("median_ms")) for e in entries)
    groups = _groups([{"name": e["name"], "ms": e.get("median_ms" if median else "average_ms"),
                       "covers": _tensorrt_covers(e["name"], known)} for e in entries], "name")
    # Engine layers that are no layer of the prototxt (reformatting copies, unnamed nodes) make one row.
    other = [g for g in groups if not g.covers]
    if other:
        groups = [g for g in groups if g.covers] + [LayerGroup(OTHER, [], sum(g.ms for g in other))]
    how = (f"TensorRT {result.figures.get('trt_version')}, trtexec --exportProfile in a profiling run of its own: "
           f"each engine layer's {'median' if median else 'mean'} over {result.figures.get('profile_iterations')} "
           f"queries, the profiler synchronizing after every layer; an engine layer that fuses several ('a + b', "
           f"a DLA '{{ForeignNode[first...last]}}') is shown against the layers it covers")
    return groups, how, None


_READERS = {"caffe": _caffe_column, "pytorch": _runner_column, "onnxruntime": _runner_column}


def layer_column(result: Result, known: list[str] = ()) -> LayerColumn:
    """The per-layer figures of one result; ReportError when it has none (saying how to get them). `known`: the
    prototxt's layer names in order, which TensorRT's names are read against."""
    if result.backend == "tensorrt":
        groups, how, pass_ms = _tensorrt_column(result, list(known))
    elif result.backend in _READERS:
        groups, how, pass_ms = _READERS[result.backend](result)
    else:
        raise ReportError(f"result {result.id}: {result.backend} results carry no per-layer figures here "
                          f"(caffe and tensorrt always; pytorch and onnxruntime with measure --per-layer)")
    if result.status != "ok" or not groups:
        why = result.error if result.status != "ok" else "no per-layer figures"
        hint = "" if result.backend in ("caffe", "tensorrt") else "; measure again with --per-layer"
        raise ReportError(f"result {result.id} ({result.model}, {result.backend}): {why}{hint}")
    latency = result.latency_ms.get("median")
    if latency is None:
        latency = result.latency_ms.get("mean")
    variant = result.figures.get("variant")
    label = " ".join(str(p) for p in (f"#{result.id}", result.device, result.backend, variant,
                                       f"batch {result.batch}") if p)
    flags = [f.get("code") for f in result.flags if isinstance(f, dict) and isinstance(f.get("code"), str)]
    return LayerColumn(result.id, label, result.backend, result.batch, how, groups,
                       sum(g.ms for g in groups), pass_ms, latency, flags=flags)


def model_stats(result: Result) -> NetStats | None:
    """The prototxt's per-layer counts, from the file the result names or the catalog entry of its name, when
    its sha256 is the result's; None otherwise (the file changed or is elsewhere: no MACs)."""
    info = result.model_info or {}
    path = info.get("path")
    for candidate in ([path] if isinstance(path, str) and Path(path).is_file() else []) + [result.model]:
        try:
            source = resolve(candidate)
        except EdgeprofError:  # not a catalog name: no MACs
            continue
        if source.sha256 == info.get("sha256") and source.kind == "prototxt":
            return analyze(parse(source.text, source.path))
    return None


def layer_table(results: list[Result], stats: NetStats | None = None,
                moved_factor: float = MOVED_FACTOR) -> LayerTable:
    """One table of `results` (one model; each with per-layer figures, see layer_column), rows in the prototxt's
    order. `stats` defaults to model_stats of the first result."""
    if not results:
        raise ReportError("no results given")
    models = sorted({r.model for r in results})
    if len(models) > 1:
        raise ReportError(f"one model at a time: these results are of {', '.join(models)}")
    stats = stats if stats is not None else model_stats(results[0])
    columns = [layer_column(r, [one.name for one in stats.per_layer] if stats else ()) for r in results]
    for index, column in enumerate(columns):
        column.against = next((i for i in range(index) if columns[i].backend == column.backend), None)
    order = [(one.name, one.type, one.macs) for one in stats.per_layer] if stats else []
    for column in columns:
        # A name the prototxt's counts lack (Caffe's Input layer, a runtime's own nodes) goes after the row of the
        # name before it in that column.
        at = 0
        for group in column.groups:
            for name in group.covers or [group.name]:
                found = next((i for i, one in enumerate(order) if one[0] == name), None)
                if found is None:
                    order.insert(at, (name, None, None))
                    found = at
                at = found + 1
    rows = [LayerRow(name, type_, macs, [LayerCell() for _ in columns]) for name, type_, macs in order]
    by_name = {row.layer: row for row in rows}
    for index, column in enumerate(columns):
        for group in column.groups:
            covered = [by_name[name] for name in group.covers or [group.name]]
            first = min(covered, key=rows.index)
            cell = first.cells[index]
            cell.ms = (cell.ms or 0.0) + group.ms
            cell.share = cell.ms / column.total_ms if column.total_ms > 0 else None
            macs = [row.macs for row in covered]
            if None not in macs and sum(macs) > 0 and cell.ms > 0:
                cell.macs_per_ms = sum(macs) * column.batch / cell.ms
            if len(covered) > 1:
                cell.group = [row.layer for row in sorted(covered, key=rows.index)]
                for row in covered:
                    if row is not first:
                        row.cells[index].in_group = first.layer
    table = LayerTable(results[0].model, columns, rows, moved_factor)
    _ratios(table, moved_factor)
    if stats is None:
        table.notes.append("MACs: the result's prototxt is not at hand (moved or changed since): no MACs per ms")
    elif not stats.complete:
        table.notes.append("MACs: some layer types have no counting rule (edgeprof models FILE --layers)")
    return table


def _ratios(table: LayerTable, moved_factor: float) -> None:
    """Each cell's ratio to the same row of its column's `against`, where both hold the same group's time; the
    layers that moved by moved_factor or more and hold MIN_SHARE of either total, largest change first."""
    for index, column in enumerate(table.columns):
        if column.against is None:
            continue
        for row in table.rows:
            now, before = row.cells[index], row.cells[column.against]
            if now.ms is None or before.ms is None or before.ms <= 0 or now.group != before.group:
                continue
            now.ratio = now.ms / before.ms
            large = max(now.share or 0.0, before.share or 0.0) >= MIN_SHARE
            if large and (now.ratio >= moved_factor or now.ratio <= 1 / moved_factor):
                table.moved.append(Moved(row.layer, index, now.ratio, before.ms, now.ms))
    table.moved.sort(key=lambda m: -abs(math.log(m.ratio)) if m.ratio > 0 else 0.0)


def layer_tables(results: list[Result]) -> list[LayerTable]:
    """A table per model among `results` that carry per-layer figures (the others are left out), in the
    order of their first result."""
    by_model: dict[str, list[Result]] = {}
    for result in results:
        try:
            layer_column(result)
        except ReportError:
            continue
        by_model.setdefault(result.model, []).append(result)
    return [layer_table(found) for found in by_model.values()]


def cell_texts(cell: LayerCell) -> list[str]:
    """A cell as text: ms (with the number of layers of its group), share, MMACs per ms."""
    if cell.in_group is not None:
        return [f"in {cell.in_group}", "", ""]
    if cell.ms is None:
        return ["-", "", ""]
    grouped = f" ({len(cell.group)} layers)" if cell.group else ""
    return [f"{cell.ms:.3f}{grouped}", f"{cell.share:.1%}" if cell.share is not None else "",
            f"{cell.macs_per_ms / 1e6:,.1f}" if cell.macs_per_ms is not None else ""]


def describe(table: LayerTable) -> list[str]:
    """What each column spans, its sum against the result's latency, the notes, and the layers that moved."""
    lines = []
    for column in table.columns:
        passed = f", its pass's forward {column.pass_ms:.3f} ms" if column.pass_ms is not None else ""
        latency = f"{column.latency_ms:.3f} ms" if column.latency_ms is not None else "none"
        flagged = (f" Flagged {', '.join(column.flags)}: read why (edgeprof results show {column.result_id}) "
                   f"before comparing its layers." if column.flags else "")
        lines.append(f"{column.label}: sum {column.total_ms:.3f} ms{passed}; the result's latency {latency}. "
                     f"{column.how}.{flagged}")
    lines += [f"note: {note}" for note in table.notes]
    for moved in table.moved:
        column = table.columns[moved.column]
        lines.append(f"moved: {moved.layer} {moved.from_ms:.3f} -> {moved.to_ms:.3f} ms (x{moved.ratio:.2f}) in "
                     f"#{column.result_id} against #{table.columns[column.against].result_id}")
    if any(c.against is not None for c in table.columns) and not table.moved:
        lines.append(f"moved: none by x{table.moved_factor:g} or more among the layers over {MIN_SHARE:.0%} "
                     f"of a sum")
    return lines
