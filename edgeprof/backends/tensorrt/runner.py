"""Build TensorRT engines and time them with `trtexec` on the board.

The model: by default the ONNX export of the model's PyTorch build (edgeprof.models.onnx_export), at the opset
and IR version the board's TensorRT parser reads (edgeprof.models.onnx_versions; --opset overrides); with
Options.tensorrt_source = "prototxt" (`--trt-from prototxt`) the Caffe deploy prototxt itself, rewritten to
the batch, which TensorRT's Caffe parser reads up to 8.6 (10.0 removed it: such a result fails, saying so).
Caffe engines are built without weights: trtexec fills them with random values, which do not change timing.

Engines are cached on the board in ${XDG_CACHE_HOME:-~/.cache}/edgeprof/tensorrt-engines/, one file per
commands.engine_cache_key (model bytes, ONNX opset and IR version, TensorRT version, precision, batch, board
model, GPU or DLA core: a board whose TensorRT was upgraded never loads an engine of the old version),
with a JSON file beside it holding what the build reported (its time, the DLA/GPU layer placement). A
build writes to a temporary name and is renamed into place, so an interrupted build is never taken for an
engine. A cached engine is loaded without rebuilding: the result says `engine_cached: true`; the build
time of a build made by this run is `build_s`, apart from every latency figure.

What the figures mean (commands.latency_span has the per-version text, stored in `method`):
- The timing run loads the engine (`--loadEngine`) with `--warmUp` of warm-up, spin-wait, and writes one
  record per query (`--exportTimes`). edgeprof computes its statistics from those records (min, max,
  mean, median and percentiles picked as trtexec picks them, plus stdev and IQR), dropping the records
  whose compute started within the warm-up, as trtexec does (TensorRT 8.2 writes them too).
- span "compute" (default): latency_ms is the GPU compute time of one query (the records' computeMs,
  trtexec's "GPU Compute Time": CUDA events around the enqueued work, inputs already on the device).
  span "host": H2D copy + GPU compute + D2H copy of one query (latencyMs, trtexec's "Latency"), the span
  the PyTorch backend calls "host". Both are kept under the backend's figures whatever the span.
- throughput_ips: batch x queries / the span from the first kept query's H2D start to the last one's
  D2H end. A query is one batch: ONNX engines carry the batch in the model (explicit batch), Caffe
  engines get `--batch` (implicit batch); either way one query processes `batch` images.
- Per-layer times come from a separate run with `--exportProfile` (with `--separateProfileRun` where the
  version has it): the profiler synchronises after every layer, so their sum exceeds the GPU compute time.
- The text summary trtexec prints is parsed too (edgeprof.parsers.trtexec) and kept as `summary`; it is
  the source of the figures only when the version writes no --exportTimes (before 6.0) or the file is
  missing, which `stats_from` says.
- timed_window (board epoch seconds): the records carry times relative to trtexec's own start, not epoch
  times, so the window is placed with the board's clock, read right before and right after the timing
  command: it ends at the reading after, and lasts the kept records' span (but starts no earlier than the
  reading before). The process's teardown after the last query shifts it early by that much.

Without trtexec on the board but with a `tensorrt` module its Python imports, prepare() takes the TensorRT
Python API instead (settings.tensorrt_tool "python-api", else "trtexec"): edgeprof/onboard/tensorrt_runner.py,
uploaded with the rest of the bundle, builds or loads the engine in the same cache and times it with the board
runners' loop and figures (its docstring says what they mean). ONNX only, no DLA, no per-layer times; it has
run only against a stand-in tensorrt module, never real TensorRT. The two are tool strategies (Trtexec,
PythonApi), chosen once in prepare; each measurement's steps share one EngineJob.
"""
from __future__ import annotations

import hashlib
import json
import re
import statistics
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ...models import ModelSource, onnx_versions
from ...models.prototxt import layers as prototxt_layers, parse
from ...models.stats import in_test_net
from ...parsers import trtexec as trtexec_parser
from ...result import Result
from ...transport import CommandTimeout
from ...errors import BackendUnavailable, InputError, RunnerFailed
from ...onboard.timing import describe_method, percentile
from ..base import TENSORRT_SOURCES, Backend, FoundTool, Options, find_tool
from .commands import (PRECISIONS, CaffeModel, OnnxModel, TensorRTCommandError, TimingOptions, TrtVersion,
                       build_command, build_precisions, effective_timing, engine_cache_key, implicit_batch,
                       latency_span, parse_version, profile_command, timing_command)

DEFAULT_ITERATIONS = 100
DEFAULT_DURATION_S = 3     # trtexec's own default
WARMUP_MS = 500
# Creates the engine cache folder and prints it; a constant script.
_CACHE_DIR = r'''d="${XDG_CACHE_HOME:-$HOME/.cache}/edgeprof/tensorrt-engines"
mkdir -p -- "$d" && printf '%s\n' "$d"'''
# A cached engine: the engine file exists and its build facts can be read. Paths arrive as arguments.
_CACHED = r'''[ -f "$1" ] && cat -- "$2"'''
RUNNER_FILE = "tensorrt_runner.py"
# Whether the board's Python has TensorRT and which CUDA bindings tensorrt_runner.py would use; a constant
# script (Python 3.6+), nothing from the user in it.
_PROBE = r'''import json, platform, sys
facts = {"python_version": platform.python_version(), "python_executable": sys.executable}
try:
    import tensorrt
    facts["tensorrt"] = tensorrt.__version__
except Exception as e:
    facts["tensorrt_error"] = "%s: %s" % (type(e).__name__, e)
facts["cuda_bindings"] = None
for name, module in (("cuda-python", "cuda"), ("pycuda", "pycuda.driver"), ("torch", "torch")):
    try:
        __import__(module)
    except Exception:
        continue
    facts["cuda_bindings"] = name
    break
print(json.dumps(facts))
'''
_BINDINGS_HINT = "pip3 install cuda-python (or pycuda) for the Python that has tensorrt"
_INSTALL_HINT = ("install TensorRT (JetPack ships trtexec in /usr/src/tensorrt/bin; elsewhere NVIDIA's tensorrt "
                 "packages), or set trtexec = \"/path/to/trtexec\" in the device's inventory entry")
_DLA_HINT = ("--dla-core needs a board with DLA cores (AGX Xavier, Xavier NX, Orin NX, AGX Orin), and a core "
             "number it has")
# edgeprof passes trtexec no --calib: for an int8 build it then sets placeholder dynamic ranges on every
# tensor (sampleEngines.cpp, "Explicitly set int8 scales if no calibrator is provided": setTensorScales up to
# 7.x, setTensorDynamicRange from 8.x), so the engine runs int8 kernels on numbers that mean nothing.
INT8_UNCALIBRATED = "int8 without calibration: timing only, outputs meaningless"
_BUILT_IN = re.compile(r"Engine built in (\S+) sec")
_TAGGED_LAYER = re.compile(r"\[(Dla|Gpu)Layer\]\s*(.*?)\s*$")
_PLACEMENT_HEADER = re.compile(r"Layers [Rr]unning on (DLA|GPU)")
_LOG_PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]\s*)*")
_RECORD_KEYS = {"latency_ms": ("latencyMs",), "gpu_compute_ms": ("computeMs",), "h2d_ms": ("h2dMs", "inMs"),
                "d2h_ms": ("d2hMs", "outMs")}


@dataclass
class _Model:
    """The model as trtexec gets it: its commands.py description (board paths), the hash the engine
    cache is keyed by, and how to put the file on the board (only done when an engine is built)."""
    trt: OnnxModel | CaffeModel
    sha256: str
    upload: Callable[[], None]
    facts: dict


class _Failed(Exception):
    """The measurement cannot go on; the message is the result's error."""


def output_blobs(prototxt: str) -> list[str]:
    """The net's outputs: blobs a TEST-phase layer produces that no later layer reads (in-place layers,
    which read and write the same blob, do not count as readers). Caffe needs them named for --output."""
    outputs: list[str] = []
    for layer in prototxt_layers(parse(prototxt)):
        if not in_test_net(layer):
            continue
        tops = [str(s.value) for s in layer.scalars("top")]
        for bottom in (str(s.value) for s in layer.scalars("bottom")):
            if bottom in outputs and bottom not in tops:
                outputs.remove(bottom)
        outputs += [top for top in tops if top not in outputs]
    return outputs


def layer_placement(build_log: str) -> dict:
    """Which TensorRT layers the builder put on the DLA and which on the GPU, from its
    "Layers Running on DLA/GPU" lists: {"dla": [...], "gpu": [...]} (None when the log has no list).

    TensorRT 8.2 on prints one tagged line per layer (`[DlaLayer] {ForeignNode[a...b]}`, `[GpuLayer] name`,
    8.4 on `[GpuLayer] KIND: name`); older versions print the names comma-separated on the line after the
    header, so a name with a comma in it is split there.
    """
    placement: dict[str, list[str]] | None = None
    section = None
    right_after_header = False
    for line in build_log.splitlines():
        if header := _PLACEMENT_HEADER.search(line):
            placement = placement or {"dla": [], "gpu": []}
            section, right_after_header = header.group(1).lower(), True
            continue
        if section is None:
            continue
        if tagged := _TAGGED_LAYER.search(line):
            placement[tagged.group(1).lower()].append(tagged.group(2))
            right_after_header = False
            continue
        if right_after_header:  # the older format's list (empty when no layer runs there)
            listed = _LOG_PREFIX.sub("", line)
            placement[section] += [name.strip() for name in listed.split(",") if name.strip()]
        section = None
    return placement


def _stats(stats: trtexec_parser.Stats, values: list[float]) -> dict:
    """trtexec's statistics, with the spread figures every median has beside it in edgeprof (stdev, IQR)."""
    found = asdict(stats)
    ordered = sorted(values)
    found["stdev"] = statistics.stdev(ordered) if len(ordered) > 1 else None
    # The runners' percentile (linear interpolation), so an IQR means the same whichever tool timed.
    found["iqr"] = percentile(ordered, 75) - percentile(ordered, 25) if len(ordered) > 1 else None
    return found


def _per_query(records: list[dict]) -> dict[str, list[float]]:
    """Each statistic's per-query values, under TensorRT 8+'s record names or TensorRT 7's (as
    parse_export_times reads them; 7 has no enqueue times)."""
    values = {}
    for name, keys in _RECORD_KEYS.items():
        key = next((k for k in keys if k in records[0]), None)
        values[name] = [float(r[key]) for r in records] if key else []
    values["enqueue_ms"] = [float(r["endEnqMs"]) - float(r["startEnqMs"]) for r in records if "startEnqMs" in r]
    return values


def _span_s(records: list[dict]) -> float:
    """From the first query's H2D start to the last one's D2H end, in seconds."""
    start = next(k for k in ("startH2dMs", "startInMs") if k in records[0])
    end = next(k for k in ("endD2hMs", "endOutMs") if k in records[0])
    return (float(records[-1][end]) - float(records[0][start])) / 1000.0


@dataclass
class EngineJob:
    """One measurement's build context, what every step of either tool reads: the board and the facts
    prepare found (the tool among them), the version, the model as TensorRT gets it, the engine's cache key and path, the options,
    the timing policy, and the result being filled (with the log of the commands run so far)."""
    board: object
    facts: dict
    tool: "Trtexec | PythonApi"
    version: TrtVersion
    model: _Model
    batch: int
    options: Options
    timing: TimingOptions
    key: str
    engine: str
    result: Result
    log: list[str]

    @property
    def record(self) -> str:
        """The build facts' file beside the engine, which both tools write and read."""
        return f"{self.facts['cache_dir']}/{self.key}.json"

    def cached_record(self) -> dict | None:
        """What the build of the cached engine reported, or None when there is no engine (or no readable
        record: then it is built again, which rewrites the record)."""
        found = self.board.run(["sh", "-c", _CACHED, "cached-engine", self.engine, self.record], timeout=30,
                               record_in=self.result)
        try:
            return json.loads(found.stdout) if found.ok else None
        except ValueError:
            return None


class Trtexec:
    """trtexec builds the engine (--saveEngine), times it (--loadEngine --exportTimes) and profiles it
    (--exportProfile), each a command of commands.py's for the board's version."""
    name = "trtexec"

    def refusal(self, board, options: Options) -> str | None:
        return None

    def settings(self, timing: TimingOptions) -> dict:
        return {"warmup_ms": timing.warmup_ms, "duration_s": timing.duration_s}

    def method(self, version: TrtVersion, options: Options, timing: TimingOptions) -> dict:
        policy = (f"fixed ({timing.iterations} queries)" if options.iterations else
                  f"at least {timing.iterations} queries and {timing.duration_s} s (trtexec --iterations, --duration)")
        return {
            "timer": "trtexec: CUDA events around each query's H2D copy, GPU compute and D2H copy (--exportTimes "
                     "records), spin-wait synchronisation",
            "span": f"{options.span}: " + ("GPU compute of one query (computeMs)" if options.span == "compute" else
                                           "H2D + GPU compute + D2H of one query (latencyMs)")
                    + f". TensorRT {version}: {_span_text(version)}",
            "warmup": f"{timing.warmup_ms} ms (trtexec --warmUp); queries whose compute started in it are dropped",
            "statistic": "median and percentiles of per-query times, picked as trtexec's sampleReporting picks "
                         "them; stdev and IQR beside them",
            "iterations_policy": policy,
            "engine": "built once per model, TensorRT version, precision, batch and device, cached on the board; "
                      "build time reported apart (tensorrt.build_s)",
            "per_layer": "separate trtexec run with --exportProfile (profiler synchronises per layer)",
            "timed_window": "board clock read right after the timing command, minus the span of the kept "
                            "--exportTimes records (not earlier than the reading before the command)",
        }

    def measure(self, job: EngineJob) -> None:
        figures = job.result.figures
        built = job.cached_record()
        figures["engine_cached"] = built is not None
        figures["build_s"] = None
        try:
            if built is None:
                built = self._build(job)
            figures["engine_build"] = built
            figures["dla"] = built.get("dla")
            self._time(job)
            self._profile(job)
        finally:
            job.result.raw_log = "\n".join(job.log)

    @staticmethod
    def _run(job: EngineJob, argv: list[str], what: str):
        try:
            run = job.board.run(argv, timeout=job.options.timeout_s, record_in=job.result)
        except CommandTimeout as e:
            raise _Failed(f"trtexec {what}: {e}. Raise the timeout or lower --iterations.") from None
        job.log.append(f"$ {run.command}\n{run.stdout}{run.stderr}")
        report = trtexec_parser.parse(run.stdout + run.stderr)
        if not run.ok or report.error:
            reason = report.error or f"exit status {run.exit_status}, no error line in its output"
            hint = f" ({_DLA_HINT})" if "DLA" in reason and job.options.of("tensorrt").dla_core is not None else ""
            raise _Failed(f"trtexec {what} failed: {reason}{hint}")
        return run, report

    @staticmethod
    def _argv(make, *args, **kwargs) -> list[str]:
        try:
            return make(*args, **kwargs)
        except TensorRTCommandError as e:
            raise _Failed(str(e)) from None

    def _build(self, job: EngineJob) -> dict:
        """Build the engine into the cache; returns what the build reported (also stored beside it)."""
        board, options = job.board, job.options
        partial = f"{job.engine}.partial-{board.run_id}"
        argv = self._argv(build_command, job.version, job.model.trt, options.precision, job.batch, partial,
                          options.of("tensorrt").dla_core, trtexec=job.facts["path"])
        job.model.upload()
        try:
            run, _ = self._run(job, argv, "engine build")
        except _Failed:
            board.run(["rm", "-f", "--", partial], timeout=30)
            raise
        output = run.stdout + run.stderr
        placement = layer_placement(output)
        reported = _BUILT_IN.search(output)
        built = {"trt_version": str(job.version), "built_at": _now(), "build_s": run.duration_s,
                 "trtexec_build_s": float(reported.group(1)) if reported else None, "command": run.command,
                 "dla": None}
        if options.of("tensorrt").dla_core is not None:
            # How much of the net the DLA took: its subgraphs, and the layers that fell back to the GPU
            # (None when the build log has no placement lists).
            built["dla"] = {"core": options.of("tensorrt").dla_core,
                            "dla_subgraphs": len(placement["dla"]) if placement else None,
                            "gpu_layers": len(placement["gpu"]) if placement else None,
                            "gpu_layer_names": placement["gpu"] if placement else None}
        board.put_text(job.record, json.dumps(built))
        moved = board.run(["mv", "-f", "--", partial, job.engine], timeout=30, record_in=job.result)
        if not moved.ok:
            raise _Failed(f"could not put the built engine into the cache: {moved.stderr.strip()}")
        job.result.figures["build_s"] = run.duration_s
        return built

    def _time(self, job: EngineJob) -> None:
        board, result, timing = job.board, job.result, job.timing
        figures = result.figures
        times_path = f"{board.workdir}/{job.key}.times.json" if job.version.major >= 6 else None
        argv = self._argv(timing_command, job.version, job.model.trt, job.batch, job.engine, times_path,
                          job.options.of("tensorrt").dla_core, timing, trtexec=job.facts["path"])
        before = _clock(board, result)
        _, summary = self._run(job, argv, "timing run")
        after = _clock(board, result)
        figures["summary"] = summary.to_dict()
        figures["command_window"] = {"start_s": before, "end_s": after}
        times_json = None
        if times_path:
            read = board.run(["cat", "--", times_path], timeout=120)
            times_json = read.stdout if read.ok else None
        if not times_json:
            self._from_summary(job, summary)
            return
        try:
            times = trtexec_parser.parse_export_times(times_json, warmup_ms=timing.warmup_ms)
            # The same records parse_export_times kept (compute started after the warm-up), for per-query values.
            records = trtexec_parser.export_time_records(times_json, timing.warmup_ms)
        except ValueError as e:
            raise _Failed(str(e)) from None
        if not records:
            raise _Failed("trtexec's --exportTimes file holds no query after the warm-up")
        values = _per_query(records)
        headline = "gpu_compute_ms" if job.options.span == "compute" else "latency_ms"
        span_s = _span_s(records)
        figures.update(stats_from="exportTimes", throughput_qps=times.throughput_qps, timed_span_s=span_s,
                       times_ms=values[headline],
                       **{name: _stats(getattr(times, name), found) for name, found in values.items()})
        result.iterations = times.iterations
        result.latency_ms = dict(figures[headline])
        result.throughput_ips = times.throughput_qps * job.batch if times.throughput_qps else None
        if before is not None and after is not None:
            result.timed_window = {"start_s": max(before, after - span_s), "end_s": after}

    @staticmethod
    def _from_summary(job: EngineJob, summary: trtexec_parser.TrtexecReport) -> None:
        """The printed summary as the figures, when there are no per-query records (before 6.0, or the
        --exportTimes file is missing)."""
        stats = summary.gpu_compute_ms if job.options.span == "compute" else summary.latency_ms
        if stats.empty():
            raise _Failed("trtexec's timing run printed no summary edgeprof could read; see the raw log "
                          "(edgeprof results show ID)")
        job.result.figures.update(stats_from="summary", throughput_qps=summary.throughput_qps)
        job.result.latency_ms = asdict(stats)
        # trtexec multiplies its throughput by --batch for implicit-batch engines: already images per second.
        per_query = 1 if implicit_batch(job.version, job.model.trt) else job.batch
        job.result.throughput_ips = summary.throughput_qps * per_query if summary.throughput_qps else None

    def _profile(self, job: EngineJob) -> None:
        figures = job.result.figures
        profile_path = f"{job.board.workdir}/{job.key}.profile.json"
        argv = profile_command(job.version, job.model.trt, job.batch, job.engine, profile_path,
                               job.options.of("tensorrt").dla_core, trtexec=job.facts["path"])
        if argv is None:
            figures["layers"] = None  # before 6.0 trtexec writes no per-layer file
            return
        # Per-layer times need no second minimum-duration benchmark (trtexec's default is 3 s, and with
        # --separateProfileRun the profiled pass repeats it): as many queries as the timing run, no more.
        argv += [f"--iterations={job.timing.iterations}", f"--warmUp={job.timing.warmup_ms}", "--duration=0"]
        try:
            self._run(job, argv, "profile run")
            read = job.board.run(["cat", "--", profile_path], timeout=120)
            if not read.ok:
                raise _Failed(f"trtexec wrote no --exportProfile file: {read.stderr.strip()}")
            profile = trtexec_parser.parse_export_profile(read.stdout)
        except (_Failed, ValueError) as e:
            # The timing figures stand without per-layer times; say why they are missing.
            figures.update(layers=None, profile_error=str(e))
            return
        figures.update(layers=[asdict(layer) for layer in profile.layers], profile_iterations=profile.iterations)


class PythonApi:
    """edgeprof/onboard/tensorrt_runner.py builds (or loads) the engine with the TensorRT Python API and times
    it; its JSON becomes the result. ONNX only, GPU only."""
    name = "python-api"

    def refusal(self, board, options: Options) -> str | None:
        if options.of("tensorrt").source == "prototxt":
            return (f"--trt-from prototxt needs trtexec, which {board.device.name} lacks (edgeprof's TensorRT "
                    f"Python-API path builds from ONNX only): use --trt-from onnx")
        if options.of("tensorrt").dla_core is not None:
            return (f"--dla-core needs trtexec, which {board.device.name} lacks (edgeprof's TensorRT Python-API "
                    f"path builds for the GPU only)")
        return None

    def settings(self, timing: TimingOptions) -> dict:
        return {}

    def method(self, version: TrtVersion, options: Options, timing: TimingOptions) -> dict:
        return {"engine": "built with the TensorRT Python API once per model, TensorRT version, precision, batch "
                          "and device, cached on the board with trtexec's engines; build time reported apart "
                          "(tensorrt.build_s)",
                "per_layer": "none on the Python-API path"}

    def measure(self, job: EngineJob) -> None:
        board, result, options = job.board, job.result, job.options
        if not board.run(["test", "-f", job.engine], timeout=30, record_in=result).ok:
            job.model.upload()  # only a build reads the model, as on the trtexec path
        argv = [job.facts["python"], job.facts["runner"], "--onnx", job.model.trt.path, "--engine", job.engine,
                "--precision", options.precision, "--span", options.span, "--json"]
        argv += options.timing_argv()
        try:
            report = TensorRTBackend().run_runner(board, argv, result, options)
        except RunnerFailed as e:
            raise _Failed(str(e)) from None
        figures = result.figures
        if report["engine_cached"]:
            cached = board.run(["cat", "--", job.record], timeout=30, record_in=result)
            try:
                figures["engine_build"] = json.loads(cached.stdout) if cached.ok else None
            except ValueError:
                figures["engine_build"] = None
        else:
            # The build facts beside the engine, as trtexec's builds leave them: the trtexec path takes an
            # engine as cached only with them, so either tool reuses the other's engines.
            figures["engine_build"] = {
                "trt_version": str(job.version), "built_at": _now(), "build_s": report["build_s"],
                "trtexec_build_s": None,
                "command": result.commands[-1]["command"],  # the runner's, recorded by run_runner
                "dla": None,
                "tool": "python-api"}
            board.put_text(job.record, json.dumps(figures["engine_build"]))
        TensorRTBackend.fill(result, report)
        result.state["versions"]["cuda_bindings"] = f"{report['cuda_bindings']} {report['cuda_bindings_version']}"
        figures.update(dla=None, layers=None)
        result.method = dict(describe_method(report), **self.method(job.version, options, job.timing))
        result.method["span"] = (f"{options.span}: CUDA events around " + (
            "one enqueued inference, inputs already on the device" if options.span == "compute" else
            "the H2D copies, one enqueued inference, the D2H copies"))


_TOOLS = {tool.name: tool for tool in (Trtexec, PythonApi)}


@dataclass(frozen=True)
class TensorRTOptions:
    """The tensorrt backend's own options (--tensorrt-source, --dla-core)."""
    source: str = "onnx"             # build from the ONNX export, or from the Caffe prototxt (<= 8.6): TENSORRT_SOURCES
    dla_core: int | None = None      # build for this DLA core, layers it cannot run on the GPU


class TensorRTBackend(Backend):
    name = "tensorrt"
    option_type = TensorRTOptions
    tool = "TensorRT Python-API"
    # Through trtexec (--iterations/--duration of its own, without windows or arrivals) as often as through
    # the runner.
    timing_loop = False
    model_kinds = ("prototxt", "torchvision", "torchscript")
    # commands.py's, but trtexec's "best" (fp16 and int8 kernels mixed), which --precision does not offer.
    precisions = tuple(p for p in PRECISIONS if p != "best")
    best_tries = "the precisions the TensorRT version builds"
    runner = RUNNER_FILE
    probe = _PROBE
    modules = ("tensorrt",)
    install_hint = {"desktop": _INSTALL_HINT}
    report_versions = {"tensorrt": "trt_version"}
    figures = ("engine_cached", "build_s")

    def prepare(self, board) -> dict:
        """trtexec where the board has it, else the TensorRT Python API: the tool every measurement uses."""
        candidates = board.device.profile.trtexec
        found = find_tool(board, candidates, "trtexec", ask="--help")
        if found is None:
            facts = self._python_api(board, f"trtexec not found on {board.device.name} (looked for "
                                            f"{', '.join(candidates)})")
        else:
            version, source = self._version(board, found)
            facts = {"tool": Trtexec.name, "path": found.path, "version": str(version), "version_source": source}
        cache = board.run(["sh", "-c", _CACHE_DIR], timeout=30)
        if not cache.ok:
            raise BackendUnavailable(f"cannot create edgeprof's engine cache on {board.device.name}: "
                                     f"{cache.stderr.strip()}")
        facts["cache_dir"] = cache.stdout.strip()
        return facts

    def _python_api(self, board, no_trtexec: str) -> dict:
        """The facts of the Python-API path (the bundle uploaded), for a board without trtexec; raises
        BackendUnavailable saying both what is missing when its Python lacks tensorrt or CUDA bindings."""
        try:
            facts = super().prepare(board)
        except BackendUnavailable as e:
            raise BackendUnavailable(f"{no_trtexec}, and no TensorRT Python API either: {e}") from None
        if facts["cuda_bindings"] is None:
            raise BackendUnavailable(f"{no_trtexec}; {facts['python']} has tensorrt {facts['tensorrt']} but no "
                                     f"CUDA bindings (cuda-python, pycuda or torch): {_BINDINGS_HINT}")
        facts.update(tool=PythonApi.name, path=None, version=str(parse_version(facts["tensorrt"])),
                     version_source="python module")
        return facts

    def variants(self, board, options: Options) -> list[Options]:
        """What --best tries: an engine in each precision this TensorRT version builds for the model source
        (fp32, the reference, first; 11.x has fp32 only; int8 uncalibrated, timing only), on the GPU or
        the DLA core asked for."""
        version = parse_version(board.backend_facts[self.name]["version"])
        kind = CaffeModel("", "") if options.of("tensorrt").source == "prototxt" else OnnxModel("")
        return [replace(options, best=False, precision=precision) for precision in build_precisions(version, kind)]

    @staticmethod
    def _version(board, trtexec: FoundTool) -> tuple[TrtVersion, str]:
        """The TensorRT version, from the first source that names it: trtexec's banner (10.x's trtexec.cpp
        prints it first, for --help too: find_tool asked), the Debian packages JetPack installs, or the
        Python module."""
        probes = (
            ("dpkg package", ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "tensorrt", "libnvinfer10",
                              "libnvinfer8", "libnvinfer7"]),
            ("python3 module", ["python3", "-c", "import tensorrt; print(tensorrt.__version__)"]),
        )
        # Only the banner's line: help texts hold other dotted numbers ("0.5 represent half").
        answers = ((source, board.run(argv, timeout=60).stdout) for source, argv in probes)
        for source, text, marker in [("trtexec banner", trtexec.answer, "TensorRT"),
                                     *((source, text, "") for source, text in answers)]:
            # dpkg-query exits 1 when one of the names is not installed but still prints the others.
            for line in text.splitlines():
                if marker not in line:
                    continue
                try:
                    return parse_version(line), source
                except ValueError:
                    continue
        raise BackendUnavailable(f"cannot tell which TensorRT {trtexec.path} on {board.device.name} belongs to: "
                                 f"no version in its --help banner, the tensorrt/libnvinfer packages or the "
                                 f"python3 tensorrt module")

    def measure(self, board, model: ModelSource, batch: int, options: Options) -> Result:
        result = board.new_result(model, self.name, batch)
        try:
            job = self._job(board, model, batch, options, result)
            job.tool.measure(job)
        except _Failed as e:
            return result.fail(str(e))
        return result

    def _job(self, board, model: ModelSource, batch: int, options: Options, result: Result) -> EngineJob:
        """The tool prepare chose, the settings and method in `result`, the refusals of this backend and tool,
        then the model and its engine's place in the cache."""
        facts = board.backend_facts[self.name]
        tool = _TOOLS[facts["tool"]]()
        version = parse_version(facts["version"])
        timing = TimingOptions(iterations=options.iterations or DEFAULT_ITERATIONS, warmup_ms=WARMUP_MS,
                               duration_s=0 if options.iterations else DEFAULT_DURATION_S)
        own = options.of(self.name)
        result.settings = {"tensorrt_tool": tool.name, "source": own.source,
                           "precision": options.precision, "dla_core": own.dla_core, "span": options.span,
                           "iterations": options.iterations, "opset": options.opset, **tool.settings(timing),
                           "effective": effective_timing(version) if isinstance(tool, Trtexec) else None}
        result.state["versions"] = {"tensorrt": facts["version"], "tensorrt_version_source": facts["version_source"]}
        result.method = tool.method(version, options, timing)
        result.span = options.span
        if own.source not in TENSORRT_SOURCES:
            raise _Failed(f"unknown TensorRT model source {own.source!r}; one of "
                          f"{', '.join(TENSORRT_SOURCES)}")
        if options.precision not in PRECISIONS:
            raise _Failed(f"--precision {options.precision}: edgeprof builds TensorRT engines in "
                          f"{', '.join(PRECISIONS)}")
        result.figures["variant"] = options.precision
        if options.precision in ("int8", "best"):
            result.settings["int8_calibration"] = None
            result.figures["int8"] = INT8_UNCALIBRATED
            result.flags.append({"code": "int8_uncalibrated", "detail": INT8_UNCALIBRATED})
        if options.span == "host" and version.major < 6:
            raise _Failed(f"TensorRT {version}'s trtexec times no data transfers (its latency is enqueue and "
                          f"synchronisation only): use --span compute")
        if refused := tool.refusal(board, options):
            raise _Failed(refused)
        source = self._model(board, model, batch, options, result, version)
        unit = board.facts.get("board_model") or board.facts.get("gpu") or board.device.profile.family
        key = engine_cache_key(source.sha256, version, options.precision, batch, unit, own.dla_core,
                               onnx=(source.facts["opset"], source.facts["ir_version"]) if source.facts["kind"] == "onnx"
                               else None)
        engine = f"{facts['cache_dir']}/{key}.engine"
        result.figures.update(trt_version=str(version), source=own.source, model=source.facts,
                              engine_key=key, engine_path=engine, engine_device=unit)
        return EngineJob(board, facts, tool, version, source, batch, options, timing, key, engine, result, [])

    def _model(self, board, model: ModelSource, batch: int, options: Options, result: Result,
               version: TrtVersion) -> _Model:
        base = f"{board.workdir}/{model.file_stem(batch)}"
        if options.of("tensorrt").source == "prototxt":
            if model.kind != "prototxt":
                raise _Failed(f"--trt-from prototxt needs a Caffe deploy prototxt; {model.name} is a {model.kind} "
                              f"model: use --trt-from onnx")
            rewritten, result.prototxt_diff = model.at_batch(batch)
            outputs = output_blobs(rewritten)
            if not outputs:
                raise _Failed(f"{model.name}: no output blob found (every blob is read by a later layer)")
            remote = base + ".prototxt"
            return _Model(CaffeModel(remote, ",".join(outputs)), hashlib.sha256(rewritten.encode()).hexdigest(),
                          lambda: board.put_text(remote, rewritten), {"kind": "prototxt", "outputs": outputs})
        # Imported here: the exporter needs torch and onnx on the host, which the prototxt path does not.
        from ...models.onnx_export import export_for, target_for
        try:
            # The file the board's parser was made for (onnx_versions' table, by the probed version).
            target = target_for(onnx_versions.reader(onnx_versions.TENSORRT, str(version)), options.opset)
            # fp32: the precision is trtexec's (--fp16) up to 10.x, applied to the same fp32 model.
            exported = export_for(model, batch, "fp32", target)
        except (InputError, BackendUnavailable) as e:  # the table has no row, or the exporter refused
            raise _Failed(f"exporting {model.name} to ONNX failed: {e}") from None
        if exported.opset > target.reader.opset:
            # TensorRT's parser takes such a file (it checks no opset) and imports each node by its own rules.
            result.flags.append({"code": "opset_above_parser", "detail": target.reader.describe()
                                 + f"; this file is opset {exported.opset} (--opset)"})
        remote = base + ".onnx"
        return _Model(OnnxModel(remote), exported.sha256,
                      lambda: board.put_bytes(remote, Path(exported.path).read_bytes()),
                      {"kind": "onnx", "sha256": exported.sha256, "opset": exported.opset,
                       "ir_version": exported.ir_version, "opset_chosen": target.chosen,
                       "exported_cached": exported.cached, "export_s": exported.export_s})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clock(board, result: Result) -> float | None:
    found = board.run(["date", "+%s.%N"], timeout=30, record_in=result)
    try:
        return float(found.stdout.strip())
    except ValueError:
        return None


def _span_text(version: TrtVersion) -> str:
    try:
        return latency_span(version)
    except TensorRTCommandError as e:
        return str(e)
