"""`edgeprof layers`: one per-layer table of one model across stored results (edgeprof.reporting.layers)."""
from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.table import Table

from ..errors import ReportError
from ..reporting.layers import MIN_SHARE, MOVED_FACTOR, LayerTable, cell_texts, describe, layer_table
from ..reporting.terminal import DataConsole
from .common import console, db_option, fail, json_option, main, open_results_store


def render(table: LayerTable) -> Table:
    out = Table("layer", "type", "MMACs", title=f"{table.model}: time per layer (ms), share of the column's "
                                                   f"sum, MMACs per ms", title_justify="left")
    for index, column in enumerate(table.columns):
        out.add_column(f"{column.label}\nms", justify="right")
        out.add_column("share", justify="right")
        out.add_column("MMAC/ms", justify="right")
        if column.against is not None:
            out.add_column(f"x #{table.columns[column.against].result_id}", justify="right")
    for row in table.rows:
        cells = [row.layer, row.type or "", f"{row.macs / 1e6:,.1f}" if row.macs is not None else ""]
        for column, cell in zip(table.columns, row.cells):
            cells += cell_texts(cell)
            if column.against is not None:
                cells.append(f"{cell.ratio:.2f}" if cell.ratio is not None else "")
        out.add_row(*cells)
    totals = ["sum of the layers", "", ""]
    for column in table.columns:
        totals += [f"{column.total_ms:.3f}", "", ""] + ([""] if column.against is not None else [])
    out.add_row(*totals, end_section=True)
    return out


@main.command(name="layers")
@click.argument("result_ids", metavar="RESULT_ID...", nargs=-1, required=True, type=int)
@click.option("--moved", "moved_factor", type=click.FloatRange(min=1, min_open=True), default=MOVED_FACTOR,
              show_default=True, help="A layer moved when its time changed by this factor either way between two "
                                      f"results of one runtime (and it holds {MIN_SHARE:.0%} of a sum).")
@json_option
@db_option
def layers_command(result_ids, moved_factor, as_json, db):
    """One table of one model's layers across RESULT_IDs (see `edgeprof results list`): each runtime's time per
    layer under the prototxt's names, its share of the column's sum and MACs per ms; a later result of the same
    runtime gets its ratio to the first, and the layers that moved are listed. Caffe results always carry their
    layers; PyTorch and ONNX Runtime results with measure --per-layer."""
    with open_results_store(db) as store:
        found = {i: store.get(i) for i in result_ids}
    missing = [str(i) for i, r in found.items() if r is None]
    if missing:
        fail(f"no result {', '.join(missing)}; see `edgeprof results list`")
    try:
        table = layer_table([found[i] for i in result_ids], moved_factor=moved_factor)
    except ReportError as e:
        fail(str(e))
    if as_json:
        print(json.dumps(asdict(table)))
        return
    # Piped, the table gets the width it needs rather than the usual 160 columns: one column per result.
    out = console if console.is_terminal else DataConsole(width=max(160, console.measure(render(table)).maximum))
    out.print(render(table))
    for line in describe(table):
        console.print(line, highlight=False, soft_wrap=True)
