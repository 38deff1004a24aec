"""What every command shares: the main group, the consoles, the common options, failing with a message."""

from __future__ import annotations

import contextlib
import sys

import click

from .. import limits
from ..errors import EXIT_FLAGGED, EdgeprofError, exit_status
from ..labgrid import acquire_places, parse_filter
from ..reporting.flags import footnotes
from ..reporting.power_modes import describe_budgets, power_mode_sweeps, sweep_table
from ..reporting.terminal import DataConsole, styled
from ..storage import StoreError, open_store

# Piped output gets a wide table instead of rich's 80-column default.
console = DataConsole(width=None if sys.stdout.isatty() else 160)
# soft_wrap: messages stay whole lines (greppable, copyable) whatever the terminal width.
errors = DataConsole(stderr=True, soft_wrap=True)


def fail(message: str, code: int = EdgeprofError.exit_status):
    errors.print(styled(("error:", "bold red"), f" {message}"), highlight=False)
    sys.exit(code)


def open_results_store(db):
    try:
        return open_store(db)
    except StoreError as e:
        fail(str(e))


def parse_batches(_ctx, _param, value: str) -> list[int]:
    try:
        batches = [int(b) for b in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: a batch size or a comma-separated list, e.g. 1,8,32")
    low, high = limits.BATCH
    if any(not low <= b <= high for b in batches):
        raise click.BadParameter(f"batch sizes must be from {low} to {high}")
    return batches


inventory_option = click.option("--inventory", envvar="EDGEPROF_INVENTORY", type=click.Path(dir_okay=False),
                                help="Inventory TOML of your boards (also $EDGEPROF_INVENTORY).")
db_option = click.option("--db", envvar="EDGEPROF_DB", metavar="FILE|URL",
                         help="Results database: a SQLite file, or a team's shared PostgreSQL database as a "
                              "postgresql:// URL or libpq's 'host=... dbname=...' settings (default: "
                              "~/.local/share/edgeprof/results.sqlite; also $EDGEPROF_DB).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
take_over_option = click.option("--take-over-dead", is_flag=True,
                                help="A board held by an edgeprof run of this host whose process is gone: restore it "
                                     "and take it now instead of waiting out that run's lease.")
strict_option = click.option("--strict", is_flag=True,
                             help=f"Exit with status {EXIT_FLAGGED} when any result carries a validity flag (for CI "
                                  f"jobs; failed results still give 1).")


def parse_power_modes(_ctx, _param, value: str | None) -> list[str]:
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if "all" in names and len(names) > 1:
        raise click.BadParameter("all, or mode names (see the board's /etc/nvpmodel.conf), not both")
    return names


def budget_options(f):
    """--budget-w and --budget-ms: questions to a power-mode sweep (edgeprof.reporting.power_modes)."""
    f = click.option("--budget-ms", type=click.FloatRange(min=0, min_open=True), metavar="MS",
                     help="Power-mode sweeps: name the lowest-power mode whose latency meets MS.")(f)
    return click.option("--budget-w", type=click.FloatRange(min=0, min_open=True), metavar="W",
                        help="Power-mode sweeps: name the fastest mode whose board power stays under W watts.")(f)


def show_power_modes(results, budget_w: float | None, budget_ms: float | None, out=None) -> None:
    """Each power-mode sweep among `results` as a table with its Pareto front, then the budget answers."""
    out = out or console
    sweeps = power_mode_sweeps(results)
    for sweep in sweeps:
        out.print(sweep_table(sweep))
        for line in describe_budgets(sweep, budget_w, budget_ms):
            out.print(line, highlight=False)
    if not sweeps and (budget_w is not None or budget_ms is not None):
        out.print("--budget-w/--budget-ms: no power-mode sweep (measure --power-modes) among these results",
                  style="yellow", highlight=False)


def exit_for(results, *, failed: bool, strict: bool, as_json: bool):
    """Footnotes for the flags seen (not with --json), then the exit status: 1 failed, 3 flagged under
    --strict, else 0."""
    if not as_json:
        for line in footnotes(results):
            console.print(line, highlight=False)
    flagged = any(r.flags for r in results)
    sys.exit(1 if failed else EXIT_FLAGGED if strict and flagged else 0)
reserve_option = click.option("--reserve", multiple=True, metavar="KEY=VALUE",
                              help="labgrid: any place with these tags, e.g. family=tx2, reserved and acquired "
                                   "for the run (queued up to --wait seconds) and released after.")
coordinator_option = click.option("--coordinator", envvar="LG_COORDINATOR", metavar="HOST:PORT",
                                  help="The labgrid coordinator (also $LG_COORDINATOR; default 127.0.0.1:20408).")


def labgrid_places(places, reserve, count, coordinator, wait_s, status):
    """The labgrid places asked for, as devices, held until the context ends; None when none are asked for."""
    if not places and not reserve:
        return contextlib.nullcontext()
    return acquire_places(coordinator, places=places, reserve=parse_filter(reserve), count=count, wait_s=wait_s,
                          status=status)


class Commands(click.Group):
    """Any EdgeprofError a command did not handle itself still ends in its message and exit status, never a
    traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeprofError as e:
            fail(str(e), exit_status(e))


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgeprof")
def main():
    """Profile neural-network inference on Jetson boards and desktop GPUs."""
