"""`edgeprof` command line: a thin layer over the library (edgeprof.session, .storage, .parsers, ...).

Exit status: 0 when every result is ok, 1 when some measurement failed, 2 for bad input or an unreachable
device (nothing measured).
"""
from __future__ import annotations

import contextlib
import json
import sys

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table

from . import backends as backend_registry
from .backends import COMPILE_MODES, MODES, PROCESSORS, TENSORRT_SOURCES, Options
from .check import DEFAULT_TOLERANCE, check
from .devices import DeviceError, builtin_profiles, load_devices
from . import limits
from .errors import EXIT_FLAGGED, EdgeprofError, exit_status
from .labgrid import acquire_places, parse_filter
from .lab import Lab, Plan, PlanError
from .models import catalog_names, describe, resolve
from .parsers import KINDS as PARSE_KINDS, decode, parse_text
from .power import POLICIES
from .reporting import FORMATS, export, results_table
from .reporting.best import describe_fastest, fastest_variants
from .reporting.compare import compare
from .reporting.flags import footnotes
from .reporting.html import write_report
from .reporting.progress import lab_progress
from .reporting.terminal import DataConsole, styled
from .session import measure, measure_devices
from .storage import StoreError, open_store

# Piped output gets a wide table instead of rich's 80-column default.
console = DataConsole(width=None if sys.stdout.isatty() else 160)
# soft_wrap: messages stay whole lines (greppable, copyable) whatever the terminal width.
errors = DataConsole(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = EdgeprofError.exit_status):
    errors.print(styled(("error:", "bold red"), f" {message}"), highlight=False)
    sys.exit(code)


def _store(db):
    try:
        return open_store(db)
    except StoreError as e:
        _fail(str(e))


def _batches(_ctx, _param, value: str) -> list[int]:
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


def _exit_for(results, *, failed: bool, strict: bool, as_json: bool):
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


def _labgrid(places, reserve, count, coordinator, wait_s, status):
    """The labgrid places asked for, as devices, held until the context ends; None when none are asked for."""
    if not places and not reserve:
        return contextlib.nullcontext()
    return acquire_places(coordinator, places=places, reserve=parse_filter(reserve), count=count, wait_s=wait_s,
                          status=status)


class _Commands(click.Group):
    """Any EdgeprofError a command did not handle itself still ends in its message and exit status, never a
    traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeprofError as e:
            _fail(str(e), exit_status(e))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgeprof")
def main():
    """Profile neural-network inference on Jetson boards and desktop GPUs."""


@main.command()
@inventory_option
@json_option
def devices(inventory, as_json):
    """List the devices edgeprof knows: `local`, your inventory, and the built-in families."""
    try:
        known = load_devices(inventory)
    except DeviceError as e:
        _fail(str(e))
    if as_json:
        for d in known.values():
            print(json.dumps(d.to_dict()))
        return
    table = Table("device", "family", "address", "tags", "defined in")
    for d in known.values():
        table.add_row(d.name, d.profile.family, d.address, ",".join(d.tags), d.defined_in)
    console.print(table)
    families = Table("family", "kind", "clocks", "max power mode", "description", title="families")
    for p in sorted(builtin_profiles().values(), key=lambda p: p.family):
        families.add_row(p.family, p.kind, p.clocks, p.max_power_mode or "-", p.description)
    console.print(families)


@main.command()
@click.argument("files", metavar="[MODEL]...", nargs=-1)
@click.option("--layers", "per_layer", is_flag=True, help="Also each layer: output shape, params, MACs, share.")
@json_option
def models(files, per_layer, as_json):
    """The catalog models, or the MODELs named (catalog names or deploy .prototxt paths): input shape,
    parameters, multiply-accumulates, and which layers could not be counted."""
    rows = [describe(resolve(name), per_layer=per_layer) for name in files or catalog_names()]
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table("model", "input", "params", "MACs (batch 1)", "layers", "counted")
    for row in rows:
        uncounted = ", ".join(f"{u['type']} x{u['count']} (line {u['first_line']})" for u in row["uncounted"])
        table.add_row(row["name"], "x".join(map(str, row["input_shape"] or [])), f"{row['params']:,}",
                      f"{row['macs'] / 1e9:.3f} G", str(row["layers"]),
                      "all" if row["complete"] else f"up to the first of: {uncounted or 'an unresolved bottom'}")
    console.print(table)
    for row in rows if per_layer else []:
        layers = Table("layer", "type", "line", "output (batch 1)", "params", "MACs", "share",
                       title=row["name"], title_justify="left")
        for one in row["per_layer"]:
            layers.add_row(one["name"], one["type"], str(one["line"]),
                           "x".join(map(str, one["output_shape"])) if one["output_shape"] else "not counted",
                           f"{one['params']:,}", f"{one['macs']:,}",
                           f"{one['macs_share']:.1%}" if one["macs_share"] is not None else "-")
        console.print(layers)
    if not files:
        console.print("Any path to a deploy .prototxt works as a model too: edgeprof models FILE [--layers].")


def _backends_with(capability: str) -> str:
    """Each backend that declares `capability` (a base.Backend attribute) and its value, for --help."""
    found = [(name, getattr(backend_registry.backend_class(name), capability)) for name in backend_registry.names()]
    return "; ".join(f"{name}: {value if isinstance(value, str) else ', '.join(value)}"
                     for name, value in found if value)


@main.command(name="measure")
@click.argument("model_names", metavar="MODEL...", nargs=-1, required=True)
@click.option("--device", "-d", help="Device name (see `edgeprof devices`), or `local`.")
@click.option("--place", help="labgrid: measure on this place (instead of --device), reserved and acquired for the "
                              "run (queued up to --wait seconds) and released after.")
@reserve_option
@coordinator_option
@click.option("--backend", "-b", "backend_names", default="caffe", show_default=True,
              help=f"Comma-separated backends: {', '.join(backend_registry.names())}.")
@click.option("--batch", "batches", default="1", callback=_batches, show_default=True,
              help="Batch size or comma-separated sweep, e.g. 1,8,32.")
@click.option("--repeat", type=click.IntRange(*limits.REPEAT), default=1, show_default=True,
              help="Measure each item N times in fresh processes and add one summary whose interval includes "
                   "the run-to-run spread.")
@click.option("--iterations", "-n", type=click.IntRange(*limits.ITERATIONS),
              help="Timed iterations (backend default if unset).")
@click.option("--accept-new-host-key", is_flag=True, help="Trust and record the host key of a board seen first.")
@click.option("--clocks", type=click.Choice(POLICIES),
              help="max: max power mode + pinned clocks, restored afterwards (Jetson default); leave: record only "
                   "(desktop default); lock: nvidia-smi -lgc, reset afterwards.")
@click.option("--sudo-password-env", metavar="VAR",
              help="Read the board's sudo password from this environment variable instead of asking.")
@click.option("--lease", "lease_s", type=click.IntRange(*limits.LEASE_S), default=180, show_default=True,
              help="Seconds after which the board restores itself if this process stops renewing its lease.")
@click.option("--wait", "wait_s", type=click.FloatRange(*limits.WAIT_S), default=0, show_default=True,
              help="Seconds to wait for another edgeprof run on the same board to finish (and for labgrid to "
                   "allocate the place).")
@click.option("--processor", type=click.Choice(PROCESSORS), default="auto", show_default=True,
              help="PyTorch: where the net runs; auto is the GPU when torch sees one.")
@click.option("--span", type=click.Choice(backend_registry.spans()), default="compute", show_default=True,
              help="compute (input already on the device) or host (copies in and out included): "
                   f"{_backends_with('spans')}.")
@click.option("--precision", type=click.Choice(backend_registry.precisions()), default="fp32", show_default=True,
              help=f"{_backends_with('precisions')}; TensorRT's int8 is uncalibrated, timing only.")
@click.option("--channels-last", is_flag=True, help="PyTorch: NHWC memory format.")
@click.option("--cuda-graph", is_flag=True, help="PyTorch: capture the forward once, time graph replays.")
@click.option("--compile", "compile_mode", is_flag=False, flag_value="default", type=click.Choice(COMPILE_MODES),
              help="PyTorch: torch.compile, optionally with a mode (--compile=max-autotune); compile time "
                   "is reported apart.")
@click.option("--threads", type=click.IntRange(min=1), help="PyTorch: CPU threads.")
@click.option("--best", is_flag=True,
              help="Try the variants the board supports, one result each, and name the fastest: "
                   f"{_backends_with('best_tries')}.")
@click.option("--mode", type=click.Choice(MODES), default="inference", show_default=True,
              help="PyTorch: train-step times forward + loss + backward + SGD step.")
@click.option("--trt-from", "trt_from", type=click.Choice(TENSORRT_SOURCES), default="onnx", show_default=True,
              help="TensorRT: build the engine from the model's ONNX export, or from its Caffe prototxt "
                   "(TensorRT 8.6 and older).")
@click.option("--dla-core", type=click.IntRange(min=0),
              help="TensorRT: build for this DLA core; layers it cannot run fall back to the GPU.")
@inventory_option
@db_option
@json_option
@strict_option
@take_over_option
def measure_command(model_names, device, place, reserve, coordinator, backend_names, batches, repeat, iterations,
                    accept_new_host_key, clocks, sudo_password_env, lease_s, wait_s, processor, span, precision,
                    channels_last, cuda_graph, compile_mode, threads, best, mode, trt_from, dla_core, inventory, db,
                    as_json, strict, take_over_dead):
    """Measure MODEL(s) on a device; every result is stored as it completes.

    MODEL is a catalog name (edgeprof models), a deploy .prototxt, and for the PyTorch backend also
    torchvision:NAME or a TorchScript file."""
    if sum(map(bool, (device, place, reserve))) != 1:
        raise click.UsageError("name the board with one of --device, --place or --reserve")
    backends = [b.strip() for b in backend_names.split(",") if b.strip()]
    if not backends:
        raise click.BadParameter(f"{backend_names!r} names no backend; use one or more of "
                                 f"{', '.join(backend_registry.names())}, comma-separated", param_hint="--backend")
    if best and (precision != "fp32" or channels_last or cuda_graph or compile_mode):
        raise click.UsageError("--best tries its own precisions, memory formats, CUDA graphs and compilation; "
                               "drop --precision, --channels-last, --cuda-graph and --compile, or drop --best")
    options = Options(iterations=iterations, processor=processor, span=span, precision=precision,
                      channels_last=channels_last, cuda_graph=cuda_graph, compile=compile_mode, threads=threads,
                      mode=mode, best=best, tensorrt_source=trt_from, dla_core=dla_core)
    store = _store(db)
    done = []
    status_line = ["starting"]

    def render():
        return Group(styled((status_line[0], "dim")), results_table(done))

    def on_status(message):
        status_line[0] = message
        if as_json or message.startswith("notice:"):
            errors.print(message, style="yellow" if message.startswith("notice:") else "dim", highlight=False)

    def on_result(result):
        done.append(result)
        if as_json:
            print(json.dumps(result.to_dict()), flush=True)

    def run():
        with _labgrid((place,) if place else (), reserve, 1, coordinator, wait_s, on_status) as held:
            return measure(held[0] if held else device, model_names, backends=backends, batches=batches,
                           options=options, repeat=repeat, store=store, inventory=inventory,
                           accept_new_host_key=accept_new_host_key,
                           clocks=clocks, sudo_password_env=sudo_password_env, lease_s=lease_s, wait_s=wait_s,
                           take_over_dead=take_over_dead, on_result=on_result, on_status=on_status)

    try:
        if as_json:
            results = run()
        else:
            with Live(render(), console=console, refresh_per_second=4, get_renderable=render):
                results = run()
            if not console.is_terminal:
                console.print()  # Live leaves its last frame without a line end when piped
    except EdgeprofError as e:
        _fail(str(e), exit_status(e))
    except KeyboardInterrupt:
        _fail(f"interrupted; {len(done)} finished result(s) are stored in {store.location}", 130)
    finally:
        store.close()
    failed = [r for r in results if r.status != "ok"]
    for fastest, reference in fastest_variants(results):
        # stdout is JSON Lines alone with --json
        (errors if as_json else console).print(describe_fastest(fastest, reference), highlight=False)
    if failed and not as_json:
        errors.print(f"{len(failed)} of {len(results)} measurement(s) failed; details: edgeprof results show ID",
                     style="yellow", highlight=False)
    _exit_for(results, failed=bool(failed), strict=strict, as_json=as_json)


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
        _fail(str(e))
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
        held = boards.enter_context(_labgrid(places, reserve, count, coordinator, wait_s,
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
        _fail(str(e), exit_status(e))
    finally:
        boards.close()
    failures = lab_run.failures
    for what, why in failures:
        errors.print(styled(("failed", "red"), f" {what}: {why}"), highlight=False)
    skipped = sum(b.skipped for b in lab_run.boards.values())
    if skipped:
        errors.print(f"{skipped} item(s) already stored by an earlier or concurrent run of this plan were skipped",
                     style="dim")
    _exit_for(lab_run.results, failed=bool(failures), strict=strict, as_json=as_json)


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
        _fail(str(e), exit_status(e))
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


@main.command()
@click.argument("kind", type=click.Choice(list(PARSE_KINDS)))
@click.argument("log", type=click.File("rb"))
@click.option("--fields", help="nvidia-smi without a header line: the --query-gpu fields, comma-separated.")
@click.option("--invocations", "each", is_flag=True,
              help="JSON Lines: every invocation found (for tegrastats and nvidia-smi every sample or GPU row), "
                   "with its number, lines, pasted command and the output format recognized.")
@json_option
def parse(kind, log, fields, each, as_json):
    """Parse a log you already have: KIND is one of the tools edgeprof drives (use - for stdin).

    The file is read as it is parsed (any size). Where a paste holds several runs of the tool, the last one
    is reported (for trtexec the last complete one); --invocations prints each."""
    # Imported here: only this command uses them.
    import itertools

    from .parsers import ROW_KINDS, invocations
    from .parsers.lines import MAX_LINE_CHARS

    options = {"fields": fields.split(",")} if fields else {}
    if options and kind != "nvidia-smi":
        raise click.BadParameter("--fields only applies to nvidia-smi", param_hint="--fields")
    source = decode(log, log.name)
    notes = []
    try:
        if each:
            for invocation in invocations(kind, source, **options):
                print(json.dumps(invocation.to_dict()))
        elif kind in ROW_KINDS:
            found = invocations(kind, source, **options)
            rows = [next(found)]  # NothingFound before anything is printed
            count = rows[0].number
            if as_json:
                # One JSON array written row by row, so that a log of any length takes bounded memory.
                sys.stdout.write("[")
                for index, row in enumerate(itertools.chain(rows, found)):
                    sys.stdout.write((", " if index else "") + json.dumps(row.record.to_dict()))
                    count = row.number
                print("]")
            else:
                for row in itertools.chain(rows, found):
                    console.print_json(json.dumps(row.record.to_dict()))
                    count = row.number
            if count > 1:
                notes.append(f"rows of {count} invocations; --invocations tells them apart")
        else:
            parsed = parse_text(kind, source, **options)
    except ValueError as e:
        failure = str(e) if str(e).startswith(f"{log.name}:") else f"{log.name}: {e}"
    else:
        failure = None
    if getattr(source, "skipped", 0):
        notes.append(f"{source.skipped} line(s) longer than {MAX_LINE_CHARS // 1024} KiB skipped (no tool "
                     f"prints lines that long)")
    for note in notes:
        errors.print(f"{log.name}: {note}", style="dim", highlight=False)
    if failure:
        _fail(failure)
    if each or kind in ROW_KINDS:
        return
    if as_json:
        print(json.dumps(parsed))
    elif kind == "caffe-time":
        for key, value in parsed.items():
            if key != "layers":
                console.print(f"{key:>20}: {value}", highlight=False)
        table = Table("layer", "forward ms", "backward ms")
        for layer in parsed["layers"]:
            table.add_row(layer["name"], str(layer["forward_ms"]), str(layer["backward_ms"]))
        console.print(table)
    else:
        console.print_json(json.dumps(parsed))


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
    with _store(db) as store:
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
    with _store(db) as store:
        result = store.get(result_id)
    if result is None:
        _fail(f"no result {result_id} in {store.location}; see `edgeprof results list`")
    doc = result.to_dict(full=True)
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    console.print(results_table([result]))
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
    with _store(db) as store:
        found = store.query(device=device, model=model, backend=backend, run_id=run_id, limit=limit)
    output.write(export(found, fmt))



@main.command(name="compare")
@click.argument("measure_models", metavar="[MODEL]...", nargs=-1)
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID",
              help="Only this run (repeatable). Default: every stored result.")
@click.option("--device", "device_names", multiple=True, help="Only this device (repeatable).")
@click.option("--model", "model_names", multiple=True, help="Only this model (repeatable).")
@click.option("--backend", "backend_names", multiple=True,
              help="Only this backend (repeatable; with MODELs: the backends to measure, default caffe).")
@click.option("--batch", "batches", default="1", callback=_batches, show_default=True,
              help="With MODELs: batch size or comma-separated sweep.")
@click.option("--iterations", "-n", type=click.IntRange(*limits.ITERATIONS), help="With MODELs: timed iterations.")
@click.option("--baseline", metavar="COLUMN",
              help="The column to compare against: its label or a unique part of it, e.g. caffe. Default: the "
                   "first column (what was measured first).")
@click.option("--format", "fmt", type=click.Choice(("table",) + FORMATS), default="table", show_default=True)
@inventory_option
@db_option
@strict_option
def compare_command(measure_models, run_ids, device_names, model_names, backend_names, batches, iterations,
                    baseline, fmt, inventory, db, strict):
    """Models x (device, backend) side by side: the median (the mean where the backend has only a mean) and,
    against the baseline, the time ratio with a 95 % bootstrap interval; "n.s." where the interval contains 1.

    With MODELs (edgeprof compare --device tx2 alexnet googlenet vgg16 resnet50), they are measured first on
    each --device with each --backend, stored, and compared; without, stored results are.

    Several results for one cell: the latest is used, the older ones are named under the table."""
    if measure_models and not device_names:
        _fail("to measure MODELs, name the device(s) with --device")
    with _store(db) as store:
        try:
            found = measure_devices(
                device_names, list(measure_models),
                backends=[b.strip() for name in backend_names for b in name.split(",") if b.strip()] or ["caffe"],
                batches=batches, options=Options(iterations=iterations), store=store, inventory=inventory,
                on_status=lambda message: errors.print(message, style="dim", highlight=False)) \
                if measure_models else store.select(run_ids, devices=device_names, models=model_names,
                                                    backends=backend_names)
        except EdgeprofError as e:
            _fail(str(e), exit_status(e))
    if not found:
        named = f" run {', '.join(run_ids)}" if run_ids else ""
        _fail(f"no stored results match{named}; see `edgeprof results list`")
    try:
        comparison = compare(found, baseline)
    except ValueError as e:
        _fail(str(e))
    if fmt != "table":
        sys.stdout.write(comparison.export(fmt))
        sys.exit(EXIT_FLAGGED if strict and any(r.flags for r in found) else 0)
    console.print(comparison.table())
    for line in [comparison.legend()] + comparison.sentences() + comparison.notes():
        console.print(line, markup=False, highlight=False)
    sys.exit(EXIT_FLAGGED if strict and any(r.flags for r in found) else 0)


@main.command(name="report")
@click.argument("run_ids", metavar="[RUN_ID]...", nargs=-1)
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False), help="The page to write.")
@click.option("--png", "png_dir", type=click.Path(file_okay=False), help="Also write each plot as a PNG here.")
@click.option("--title", help="Page title (default: the run ids).")
@click.option("--baseline", metavar="COLUMN", help="The comparison's baseline column, as for `edgeprof compare`.")
@db_option
def report_command(run_ids, html_path, png_dir, title, baseline, db):
    """One self-contained HTML page of RUN_ID(s) (default: the latest run): plots of latency vs batch,
    backbone comparison, images per joule and telemetry timelines, and the tables. Needs matplotlib
    (pip install 'edgeprof[report]')."""
    with _store(db) as store:
        latest = store.query(limit=1)
        if not latest:
            _fail(f"no results in {store.location}")
        run_ids = run_ids or (latest[0].run_id,)
        found = store.select(run_ids)
    missing = sorted(set(run_ids) - {r.run_id for r in found})
    if missing:
        _fail(f"no results for run {', '.join(missing)}; see `edgeprof results list`")
    try:
        plots = write_report(found, html_path, title=title, baseline=baseline, png_dir=png_dir)
    except (EdgeprofError, ValueError) as e:
        _fail(str(e))
    console.print(f"{html_path}: {len(found)} results of run {', '.join(run_ids)}, {len(plots)} plots"
                  + (f" (also as PNG in {png_dir})" if png_dir else ""), highlight=False)


if __name__ == "__main__":
    main()
