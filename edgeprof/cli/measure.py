"""`edgeprof measure`: measure models on one board, storing each result as it completes."""
from __future__ import annotations

import contextlib
import json

import click
from rich.console import Group
from rich.live import Live

from .. import backends as backend_registry
from .. import limits
from ..backends import COMPILE_MODES, MODES, PROCESSORS, TENSORRT_SOURCES, Options
from ..concurrency import parse_gpus
from ..errors import EdgeprofError, InputError, exit_status
from ..image_inputs import end_to_end_span, parse_input
from ..power import POLICIES
from ..reporting import results_table
from ..reporting.best import describe_fastest, fastest_variants
from ..reporting.progress import DurationProgress, duration_progress
from ..reporting.terminal import styled
from ..onboard.timing import BACK_TO_BACK, parse_arrival
from ..reporting.stages import describe_stages, end_to_end, stages_table
from ..reporting.timeline import describe_arrivals, describe_timeline, timeline_table
from ..session import measure
from .common import (
    budget_options,
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
    open_results_store,
    parse_batches,
    parse_power_modes,
    reserve_option,
    show_power_modes,
    strict_option,
    take_over_option,
)


def _arrival(_ctx, _param, value: str) -> str:
    try:
        parse_arrival(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


def _backends_with(capability: str) -> str:
    """Each backend that declares `capability` (a base.Backend attribute) and its value, for --help."""
    found = [(name, getattr(backend_registry.backend_class(name), capability)) for name in backend_registry.names()]
    return "; ".join(f"{name}: {value if isinstance(value, str) else ', '.join(value)}"
                     for name, value in found if value)


def show_timelines(results, as_json: bool) -> None:
    """The window table and the first/steady line of each --duration result (stdout is JSON Lines alone with
    --json)."""
    for result in [r for r in results if r.timeline] if not as_json else []:
        console.print(timeline_table(result))
        console.print(describe_timeline(result), highlight=False)


# The slowest image --images allows for when it sets the runner's time limit.
SECONDS_PER_IMAGE = 2.0


@main.command(name="measure")
@click.argument("model_names", metavar="MODEL...", nargs=-1, required=True)
@click.option("--device", "-d", help="Device name (see `edgeprof devices`), or `local`.")
@click.option("--place", help="labgrid: measure on this place (instead of --device), reserved and acquired for the "
                              "run (queued up to --wait seconds) and released after.")
@reserve_option
@coordinator_option
@click.option("--backend", "-b", "backend_names", default="caffe", show_default=True,
              help=f"Comma-separated backends: {', '.join(backend_registry.names())}.")
@click.option("--batch", "batches", default="1", callback=parse_batches, show_default=True,
              help="Batch size or comma-separated sweep, e.g. 1,8,32.")
@click.option("--repeat", type=click.IntRange(*limits.REPEAT), default=1, show_default=True,
              help="Measure each item N times in fresh processes and add one summary whose interval includes "
                   "the run-to-run spread.")
@click.option("--iterations", "-n", type=click.IntRange(*limits.ITERATIONS),
              help="Timed iterations (backend default if unset).")
@click.option("--duration", "duration_s", type=click.FloatRange(*limits.DURATION_S), metavar="SECONDS",
              help="Run for this long in windows (instead of --iterations): a timeline per window, the first window "
                   "against the steady state, the drift; PyTorch and ONNX Runtime.")
@click.option("--window", "window_s", type=click.FloatRange(*limits.WINDOW_S), default=5.0, show_default=True,
              metavar="SECONDS", help="With --duration: one window's length.")
@click.option("--arrival", default=BACK_TO_BACK, show_default=True, callback=_arrival,
              metavar="back-to-back|fixed-rate=HZ|poisson=HZ",
              help="Issue the timed queries at a rate, as a camera (fixed-rate=30) or clients (poisson=30) would: "
                   "each time from its arrival, queueing included, and the deadlines missed; PyTorch and ONNX "
                   "Runtime. Runs --iterations queries, --duration seconds, else 30 s.")
@click.option("--arrival-seed", type=click.IntRange(*limits.SEED), default=0, show_default=True,
              help="poisson: the seed of the gaps between arrivals.")
@click.option("--per-layer", is_flag=True,
              help="PyTorch (a prototxt's eager inference) and ONNX Runtime: after the timed loop, also time each "
                   "layer in a pass of its own, whose timers add work to every layer, so its total can exceed the "
                   "latency; caffe time and TensorRT report their layers anyway. See them with `edgeprof layers "
                   "RESULT_ID...`.")
@click.option("--input", "input_text", metavar="DIR|FILE|VIDEO|board:/PATH",
              help="Real images end to end (--span end-to-end; PyTorch, ONNX Runtime): decode on the board (Pillow "
                   "or OpenCV; video with OpenCV), resize, normalize, copy, forward, post-processing, each stage timed "
                   "per image. Local files are uploaded; board:/PATH is a dataset already on the board, only read.")
@click.option("--images", type=click.IntRange(*limits.IMAGES), metavar="N",
              help="With --input: run N images (wrapping around the files) instead of --iterations; images/s and "
                   "utilization over the whole run. The runner may take up to 2 s an image.")
@click.option("--prefetch", type=click.IntRange(*limits.PREFETCH), default=0, show_default=True, metavar="N",
              help="With --input: a thread on the board decodes up to N images ahead, so forward does not wait for "
                   "decode; the wait for the queue is reported per image.")
@click.option("--jobs", type=click.IntRange(*limits.JOBS), default=1, show_default=True,
              help="Run each item as N concurrent processes (per GPU with --gpus), stored per job plus one "
                   "aggregate: total throughput (the sum), the slowest job's latency.")
@click.option("--gpus", metavar="0,1,...|all",
              help="Desktops: run each item on these GPUs at once, --jobs processes on each (CUDA_VISIBLE_DEVICES; "
                   "caffe -gpu N); all: every GPU nvidia-smi lists.")
@click.option("--power-modes", metavar="all|NAME,...", callback=parse_power_modes,
              help="Jetson: measure every item in each of these nvpmodel modes of the board's own /etc/nvpmodel.conf "
                   "(all: every mode), clocks pinned within each, the original mode restored after; modes that need "
                   "a reboot are refused and listed. Shows the Pareto front of latency against board power.")
@budget_options
@click.option("--accept-new-host-key", is_flag=True, help="Trust and record the host key of a board seen first.")
@click.option("--clocks", type=click.Choice(POLICIES),
              help="max: max power mode + pinned clocks, restored afterwards (Jetson default); leave: record only "
                   "(desktop default); lock: nvidia-smi -lgc, reset afterwards.")
@click.option("--sudo-password-env", metavar="VAR",
              help="Read the board's sudo password from this environment variable instead of asking.")
@click.option("--lease", "lease_s", type=click.IntRange(*limits.LEASE_S), default=180, show_default=True,
              help="Seconds after which the board restores itself if this process stops renewing its lease.")
@click.option("--quiet-board", is_flag=True,
              help="Before each item, wait (up to --wait) until the board's other processes use under a quarter of "
                   "a CPU (what `contended` flags); an item whose board stays busy fails, naming the busiest.")
@click.option("--start-below", "start_below_c", type=click.FloatRange(*limits.START_BELOW_C), metavar="C",
              help="Before each item, wait (up to --wait) until the board's hottest thermal zone is below C degrees, "
                   "so cold and hot boards are not compared unknowingly.")
@click.option("--wait", "wait_s", type=click.FloatRange(*limits.WAIT_S), default=0, show_default=True,
              help="Seconds to wait for another edgeprof run on the same board to finish (and for labgrid to "
                   "allocate the place).")
@click.option("--processor", type=click.Choice(PROCESSORS), default="auto", show_default=True,
              help="PyTorch: where the net runs; auto is the GPU when torch sees one.")
@click.option("--span", type=click.Choice(backend_registry.spans()), default="compute", show_default=True,
              help="compute (input already on the device), host (copies in and out included) or end-to-end "
                   "(--input's images through decode to post-processing; the default with --input): "
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
@click.option("--opset", type=click.IntRange(min=7),
              help="TensorRT, ONNX Runtime: export the ONNX file at this opset instead of the highest the board's "
                   "runtime version reads (README: TensorRT and ONNX Runtime).")
@inventory_option
@db_option
@json_option
@strict_option
@take_over_option
def measure_command(model_names, device, place, reserve, coordinator, backend_names, batches, repeat, iterations,
                    power_modes, budget_w, budget_ms,
                    duration_s, window_s, arrival, arrival_seed, per_layer, input_text, images, prefetch, jobs, gpus,
                    accept_new_host_key, clocks,
                    sudo_password_env, lease_s, quiet_board, start_below_c, wait_s, processor, span, precision,
                    channels_last, cuda_graph, compile_mode, threads, best, mode, trt_from, dla_core, opset, inventory,
                    db, as_json, strict, take_over_dead):
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
    if duration_s is not None and iterations is not None:
        raise click.UsageError("--duration and --iterations exclude each other: a run is timed for one or the other")
    if duration_s is not None and window_s > duration_s:
        raise click.BadParameter(f"a window of {window_s:g} s does not fit a {duration_s:g} s run",
                                 param_hint="--window")
    try:
        image_input = None if input_text is None else parse_input(input_text)
        span = end_to_end_span(span, click.get_current_context().get_parameter_source("span")
                               != click.core.ParameterSource.DEFAULT, image_input, images, prefetch, iterations,
                               duration_s, {"--best": best, "--per-layer": per_layer, "--cuda-graph": cuda_graph,
                                            "--mode train-step": mode != "inference"})
    except InputError as e:
        raise click.UsageError(str(e)) from None
    options = Options(iterations=iterations, duration_s=duration_s, window_s=window_s, arrival=arrival,
                      arrival_seed=arrival_seed, per_layer=per_layer, image_input=image_input, images=images,
                      prefetch=prefetch,
                      # the runner's own limit: the duration plus its load, warm-up and report; --images N at up to
                      # SECONDS_PER_IMAGE each (seed 000's whole request took 1.2 s)
                      timeout_s=max(Options.timeout_s, (duration_s or 0) + 600,
                                    (images or 0) * SECONDS_PER_IMAGE + 600),
                      processor=processor, span=span, precision=precision,
                      channels_last=channels_last, cuda_graph=cuda_graph, compile=compile_mode, threads=threads,
                      mode=mode, best=best, tensorrt_source=trt_from, dla_core=dla_core, opset=opset)
    store = open_results_store(db)
    done = []
    status_line = ["starting"]
    # --duration: a progress line as the windows end, on a terminal only (piped, Live prints its last frame
    # alone; --json keeps to JSON Lines): in the live view where stdout is one, else on stderr where that is
    # one (stdout sent to a file).
    shown_on = None if duration_s is None or as_json else \
        console if console.is_terminal else errors if errors.is_terminal else None
    progress = DurationProgress(duration_s) if shown_on is not None else None

    def render():
        line = duration_progress(progress) if shown_on is console else None
        return Group(styled((status_line[0], "dim")), *([line] if line else []), results_table(done))

    def on_status(message):
        status_line[0] = message
        if as_json or message.startswith("notice:"):
            errors.print(message, style="yellow" if message.startswith("notice:") else "dim", highlight=False)

    def on_result(result):
        done.append(result)
        if as_json:
            print(json.dumps(result.to_dict()), flush=True)

    def run():
        with labgrid_places((place,) if place else (), reserve, 1, coordinator, wait_s, on_status) as held:
            return measure(held[0] if held else device, model_names, backends=backends, batches=batches,
                           options=options, repeat=repeat, jobs=jobs, gpus=parse_gpus(gpus), store=store,
                           inventory=inventory,
                           accept_new_host_key=accept_new_host_key,
                           clocks=clocks, sudo_password_env=sudo_password_env, lease_s=lease_s, wait_s=wait_s,
                           take_over_dead=take_over_dead, quiet_board=quiet_board, start_below_c=start_below_c,
                           power_modes=power_modes,
                           on_result=on_result,
                           on_status=on_status, on_window=progress.update if progress else None)

    try:
        if as_json:
            results = run()
        else:
            with Live(render(), console=console, refresh_per_second=4, get_renderable=render), \
                    (Live(console=errors, transient=True, get_renderable=lambda: duration_progress(progress) or "")
                     if shown_on is errors else contextlib.nullcontext()):
                results = run()
            if not console.is_terminal:
                console.print()  # Live leaves its last frame without a line end when piped
    except EdgeprofError as e:
        fail(str(e), exit_status(e))
    except KeyboardInterrupt:
        # A --duration item stopped mid-way is among them, with the windows it finished (flag interrupted).
        show_timelines(done, as_json)
        fail(f"interrupted; {len(done)} finished result(s) are stored in {store.location}", 130)
    finally:
        store.close()
    failed = [r for r in results if r.status != "ok"]
    for fastest, reference in fastest_variants(results):
        # stdout is JSON Lines alone with --json
        (errors if as_json else console).print(describe_fastest(fastest, reference), highlight=False)
    show_timelines(results, as_json)
    for result in [r for r in results if end_to_end(r)] if not as_json else []:
        console.print(stages_table(result))
        console.print(describe_stages(result), highlight=False)
    for result in [r for r in results if r.figures.get("arrival")] if not as_json else []:
        console.print(describe_arrivals(result), highlight=False)
    if not as_json:
        show_power_modes(results, budget_w, budget_ms)
    if failed and not as_json:
        errors.print(f"{len(failed)} of {len(results)} measurement(s) failed; details: edgeprof results show ID",
                     style="yellow", highlight=False)
    exit_for(results, failed=bool(failed), strict=strict, as_json=as_json)
