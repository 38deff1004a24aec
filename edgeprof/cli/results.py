"""`edgeprof results`: list, show and export stored results."""
from __future__ import annotations

import json

import click

from .. import limits
from ..reporting import FORMATS, export, results_table
from ..reporting.flags import footnotes
from ..reporting.stages import describe_stages, end_to_end, stages_table
from ..reporting.terminal import styled
from .common import console, db_option, fail, json_option, main, open_results_store


@main.group()
def results():
    """Read stored results back."""


def _filters(f):
    for option in (click.option("--device"), click.option("--model"), click.option("--backend"),
                   click.option("--run", "run_id", help="Only this run id."),
                   click.option("--limit", type=int, help="Newest N only.")):
        f = option(f)
    return f


@results.command("list")
@_filters
@db_option
@json_option
def results_list(device, model, backend, run_id, limit, db, as_json):
    """Stored results, newest first."""
    with open_results_store(db) as store:
        found = store.query(device=device, model=model, backend=backend, run_id=run_id, limit=limit)
    if as_json:
        for r in found:
            print(json.dumps(r.to_dict()))
    else:
        console.print(results_table(found, title=str(store.location)))
        for line in footnotes(found):
            console.print(line, highlight=False)


@results.command("show")
@click.argument("result_id", type=click.IntRange(*limits.RESULT_ID))
@db_option
@json_option
def results_show(result_id, db, as_json):
    """One result in full: figures, method, state, commands, prototxt diff and raw log."""
    with open_results_store(db) as store:
        result = store.get(result_id)
    if result is None:
        fail(f"no result {result_id} in {store.location}; see `edgeprof results list`")
    doc = result.to_dict(full=True)
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    console.print(results_table([result]))
    if end_to_end(result):
        console.print(stages_table(result))
        console.print(describe_stages(result), highlight=False)
    for key in ("error", "method", "state", "settings", "device_facts", "model_info", "commands"):
        console.print(styled((key, "bold"), f": {json.dumps(doc[key], indent=2)}"), highlight=False)
    console.print(styled(("prototxt diff", "bold"), ":"), highlight=False)
    console.print(result.prototxt_diff or "(unchanged)", markup=False, highlight=False)
    console.print(styled(("raw log", "bold"), ":"), highlight=False)
    console.print(result.raw_log, markup=False, highlight=False)


@results.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--output", "-o", type=click.File("w"), default="-", help="File to write (default stdout).")
@_filters
@db_option
def results_export(fmt, output, device, model, backend, run_id, limit, db):
    """Export stored results as CSV, JSON or Markdown."""
    with open_results_store(db) as store:
        found = store.query(device=device, model=model, backend=backend, run_id=run_id, limit=limit)
    output.write(export(found, fmt))
