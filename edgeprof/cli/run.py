"""`edgeprof run PLAN.toml`: a plan over many boards."""
from __future__ import annotations

import contextlib
import json

import click
from rich.live import Live

from .. import limits
from ..errors import EdgeprofError, exit_status
from ..lab import Lab, Plan, PlanError
from ..reporting import results_table
from ..reporting.progress import lab_progress
from ..reporting.terminal import styled
from .common import (
    console,
    coordinator_option,
    db_option,
    errors,
    exit_for,
    fail,
    inventory_option,
    json_option,
    labgrid_places,
    main,
    reserve_option,
    strict_option,
    take_over_option,
)


@main.command(name="run")
@click.argument("plan_file", metavar="PLAN.toml", type=click.Path(exists=True, dir_okay=False))
@click.option("--accept-new-host-key", is_flag=True, help="Trust and record the host keys of boards seen first.")
@click.option("--sudo-password-env", metavar="VAR", help="The boards' sudo password, from this environment variable.")
@click.option("--wait", "wait_s", type=click.FloatRange(*limits.WAIT_S), default=0, show_default=True,
              help="Seconds each board waits for another edgeprof run on it to finish (and labgrid's "
                   "reservations wait to be allocated).")
@click.option("--place", "places", multiple=True,
              help="labgrid: run on this place (repeatable) instead of the plan's devices; reserved and acquired "
                   "for the run and released after.")
@reserve_option
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="labgrid: how many places --reserve takes.")
@coordinator_option
@inventory_option
@db_option
@json_option
@strict_option
@take_over_option
def run_command(plan_file, accept_new_host_key, sudo_password_env, wait_s, places, reserve, count, coordinator,
                inventory, db, as_json, strict, take_over_dead):
    """Run a plan over many boards in parallel (one measurement at a time per board).

    Run it again to resume: items of the same plan stored ok are skipped. Ctrl-C once: the items in flight
    finish and the boards are restored; twice: leave now (each board restores itself when its lease ends)."""
    if count > 1 and not reserve:
        raise click.UsageError("--count is how many places --reserve takes; add --reserve KEY=VALUE")
    try:
        plan = Plan.from_toml(plan_file)
        plan.validate()
    except PlanError as e:
        fail(str(e))
    lab = Lab(inventory, db, accept_new_host_key=accept_new_host_key, sudo_password_env=sudo_password_env,
              take_over_dead=take_over_dead)
    printed = set()

    def on_progress(lab_run):
        if as_json:
            for result in lab_run.results:
                if id(result) not in printed:
                    printed.add(id(result))
                    print(json.dumps(result.to_dict()), flush=True)

    boards = contextlib.ExitStack()  # the labgrid places, given back however this ends
    try:
        held = boards.enter_context(labgrid_places(places, reserve, count, coordinator, wait_s,
                                             lambda m: errors.print(m, style="dim", highlight=False)))
        if as_json:
            lab_run = lab.run(plan, wait_s=wait_s, on_progress=on_progress, devices=held)
        else:
            state = {}
            with Live(console=console, refresh_per_second=4,
                      get_renderable=lambda: lab_progress(state.get("run"))) as live:
                lab_run = lab.run(plan, wait_s=wait_s, on_progress=lambda r: state.update(run=r), devices=held)
                live.update(lab_progress(lab_run))
            if not console.is_terminal:
                console.print()
            console.print(results_table(lab_run.results, title=f"plan {plan.name} ({lab_run.plan_hash})"))
    except EdgeprofError as e:
        fail(str(e), exit_status(e))
    finally:
        boards.close()
    failures = lab_run.failures
    for what, why in failures:
        errors.print(styled(("failed", "red"), f" {what}: {why}"), highlight=False)
    skipped = sum(b.skipped for b in lab_run.boards.values())
    if skipped:
        errors.print(f"{skipped} item(s) already stored by an earlier or concurrent run of this plan were skipped",
                     style="dim")
    exit_for(lab_run.results, failed=bool(failures), strict=strict, as_json=as_json)
