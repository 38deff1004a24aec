"""`edgeprof compare`: models x (device, backend) side by side, with ratio intervals."""
from __future__ import annotations

import sys

import click

from .. import limits
from ..backends import MODES, Options
from ..errors import EXIT_FLAGGED, EdgeprofError, exit_status
from ..reporting import FORMATS
from ..reporting.compare import compare
from ..reporting.metrics import METRICS
from ..session import measure_devices
from .common import (
    budget_options,
    console,
    db_option,
    errors,
    fail,
    inventory_option,
    main,
    open_results_store,
    parse_batches,
    show_power_modes,
    strict_option,
)


@main.command(name="compare")
@click.argument("measure_models", metavar="[MODEL]...", nargs=-1)
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID",
              help="Only this run (repeatable). Default: every stored result.")
@click.option("--device", "device_names", multiple=True, help="Only this device (repeatable).")
@click.option("--model", "model_names", multiple=True, help="Only this model (repeatable).")
@click.option("--backend", "backend_names", multiple=True,
              help="Only this backend (repeatable; with MODELs: the backends to measure, default caffe).")
@click.option("--batch", "batches", default="1", callback=parse_batches, show_default=True,
              help="With MODELs: batch size or comma-separated sweep.")
@click.option("--iterations", "-n", type=click.IntRange(*limits.ITERATIONS), help="With MODELs: timed iterations.")
@click.option("--mode", "modes", default="inference", show_default=True, callback=lambda _c, _p, value: _listed(
    value, MODES, "--mode"), help=f"With MODELs: comma-separated, of {', '.join(MODES)}; each mode's rows beside "
                                  f"the others' (train-step: PyTorch only).")
@click.option("--metric", "metrics", default="latency", show_default=True,
              callback=lambda _c, _p, value: _listed(value, METRICS, "--metric"),
              help=f"Comma-separated column groups, in this order: {', '.join(METRICS)}; each with its factor "
                   f"against the baseline.")
@click.option("--wait", "wait_s", type=click.FloatRange(*limits.WAIT_S), default=0, show_default=True,
              help="With MODELs: seconds to wait for another edgeprof run on the same board to finish.")
@click.option("--baseline", metavar="COLUMN",
              help="The column to compare against: its label or a unique part of it, e.g. caffe. Default: the "
                   "first column (what was measured first).")
@click.option("--format", "fmt", type=click.Choice(("table",) + FORMATS), default="table", show_default=True)
@budget_options
@inventory_option
@db_option
@strict_option
def compare_command(measure_models, run_ids, device_names, model_names, backend_names, batches, iterations, modes,
                    metrics, wait_s, baseline, fmt, budget_w, budget_ms, inventory, db, strict):
    """Models x (device, backend) side by side: the median (the mean where the backend has only a mean) and,
    against the baseline, the time ratio with a 95 % bootstrap interval; "n.s." where the interval contains 1.

    With MODELs (edgeprof compare --device tx2 alexnet googlenet vgg16 resnet50), they are measured first on
    each --device with each --backend, stored, and compared; without, stored results are.

    Several results for one cell: the latest is used, the older ones are named under the table.

    A power-mode sweep among the results (measure --power-modes) also gets a table of its modes with the
    Pareto front of latency against board power; --budget-w W names the fastest mode under W watts,
    --budget-ms L the lowest-power mode meeting L ms.

    --metric latency,memory (and throughput, energy) shows a column group per metric with factor columns: the
    dlib-vs-PyTorch batch sweep is `edgeprof compare --device local alexnet resnet50 --backend
    pytorch,onnxruntime --batch 1,2,4,8 --metric latency,memory`."""
    if measure_models and not device_names:
        fail("to measure MODELs, name the device(s) with --device")
    with open_results_store(db) as store:
        try:
            found = [result for mode in modes for result in measure_devices(
                device_names, list(measure_models),
                backends=[b.strip() for name in backend_names for b in name.split(",") if b.strip()] or ["caffe"],
                batches=batches, options=Options(iterations=iterations, mode=mode), store=store,
                inventory=inventory, wait_s=wait_s,
                on_status=lambda message: errors.print(message, style="dim", highlight=False))] \
                if measure_models else store.select(run_ids, devices=device_names, models=model_names,
                                                    backends=backend_names)
        except EdgeprofError as e:
            fail(str(e), exit_status(e))
    if not found:
        named = f" run {', '.join(run_ids)}" if run_ids else ""
        fail(f"no stored results match{named}; see `edgeprof results list`")
    try:
        comparison = compare(found, baseline, metrics=metrics)
    except ValueError as e:
        fail(str(e))
    if fmt != "table":
        sys.stdout.write(comparison.export(fmt))
        sys.exit(EXIT_FLAGGED if strict and any(r.flags for r in found) else 0)
    console.print(comparison.table())
    for line in comparison.lines():
        console.print(line, markup=False, highlight=False)
    show_power_modes(found, budget_w, budget_ms)
    sys.exit(EXIT_FLAGGED if strict and any(r.flags for r in found) else 0)


def _listed(value: str, choices: tuple[str, ...], option: str) -> tuple[str, ...]:
    """A comma-separated option's values, each one of `choices`, in the order given, each once."""
    named = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    wrong = [v for v in named if v not in choices]
    if wrong or not named:
        raise click.BadParameter(f"{', '.join(wrong) or repr(value)}: use one or more of {', '.join(choices)}, "
                                 f"comma-separated", param_hint=option)
    return named
