"""`edgeprof report`: one self-contained HTML page of a run."""
from __future__ import annotations

import click

from ..errors import EdgeprofError
from ..reporting.html import write_report
from .common import budget_options, console, db_option, fail, main, open_results_store


@main.command(name="report")
@click.argument("run_ids", metavar="[RUN_ID]...", nargs=-1)
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False), help="The page to write.")
@click.option("--png", "png_dir", type=click.Path(file_okay=False), help="Also write each plot as a PNG here.")
@click.option("--title", help="Page title (default: the run ids).")
@click.option("--baseline", metavar="COLUMN", help="The comparison's baseline column, as for `edgeprof compare`.")
@budget_options
@db_option
def report_command(run_ids, html_path, png_dir, title, baseline, budget_w, budget_ms, db):
    """One self-contained HTML page of RUN_ID(s) (default: the latest run): plots of latency vs batch,
    backbone comparison, images per joule, power-mode sweeps (Pareto front, --budget-w/--budget-ms) and
    telemetry timelines, and the tables (per layer: as `edgeprof layers` prints them). Needs matplotlib
    (pip install 'edgeprof[report]')."""
    with open_results_store(db) as store:
        latest = store.query(limit=1)
        if not latest:
            fail(f"no results in {store.location}")
        run_ids = run_ids or (latest[0].run_id,)
        found = store.select(run_ids)
    missing = sorted(set(run_ids) - {r.run_id for r in found})
    if missing:
        fail(f"no results for run {', '.join(missing)}; see `edgeprof results list`")
    try:
        plots = write_report(found, html_path, title=title, baseline=baseline, png_dir=png_dir, budget_w=budget_w,
                             budget_ms=budget_ms)
    except (EdgeprofError, ValueError) as e:
        fail(str(e))
    console.print(f"{html_path}: {len(found)} results of run {', '.join(run_ids)}, {len(plots)} plots"
                  + (f" (also as PNG in {png_dir})" if png_dir else ""), highlight=False)
