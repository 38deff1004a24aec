"""`edgeprof check`: the Caffe net and its PyTorch build agree on the board."""
from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from ..check import DEFAULT_TOLERANCE, check
from ..errors import EdgeprofError, exit_status
from ..reporting.terminal import styled
from .common import console, fail, inventory_option, json_option, main


@main.command(name="check")
@click.argument("model")
@click.option("--device", "-d", required=True, help="A device with both pycaffe and torch.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Random weights and input.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=DEFAULT_TOLERANCE, show_default=True,
              help="Largest relative error that passes.")
@click.option("--accept-new-host-key", is_flag=True, help="Trust and record the host key of a board seen first.")
@inventory_option
@json_option
def check_command(model, device, batch, seed, tolerance, accept_new_host_key, inventory, as_json):
    """Run MODEL in pycaffe and in edgeprof's PyTorch build with the same weights and input; compare outputs.

    Exit status 0 when every output agrees within the tolerance, 1 when not."""
    try:
        report = check(device, model, batch=batch, seed=seed, tolerance=tolerance, inventory=inventory,
                       accept_new_host_key=accept_new_host_key)
    except EdgeprofError as e:
        fail(str(e), exit_status(e))
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        table = Table("blob", "shape", "relative error", title=f"{report.model} on {report.device}: PyTorch "
                      f"build vs pycaffe, batch {batch}, seed {seed}", title_justify="left")
        for blob, error in report.errors.items():
            table.add_row(blob, "x".join(map(str, report.shapes[blob])), f"{error:.2e}")
        console.print(table)
        verdict = ("agree", "green") if report.passed else ("differ", "red")
        console.print(styled(verdict, f": max relative error {report.max_error:.2e} (tolerance {tolerance:g}); "
                                      f"torch {report.versions['torch']}"))
    sys.exit(0 if report.passed else 1)
