"""trtexec command lines for every TensorRT version edgeprof meets on boards: pure functions, no I/O.

Which flag exists in which version, and where that is written down (sources read; the table is the
contract of this module, the tests walk it):

  flag / behaviour                         versions      sources
  ---------------------------------------  ------------  -------------------------------------------------
  binary is ``trtexec``                    4.0 on        [S3] 3.0.4 ships samples/giexec only; [S4]
  --onnx=F                                 4.0 on        [S4]; [S11] (the only model option left in 11.x)
  --deploy=F --output=N [--model=F] (Caffe) 4.0 - 8.x    [S4] [S50] [S51] [S60] [S82]; removed in 10.0 [M10]
  --batch=N (implicit batch)               4.0 - 8.x     [S4] .. [S82] ("should not be used" for ONNX in 8.2);
                                                         removed in 10.0 [M10]
  --explicitBatch (for ONNX)               6.0 - 8.0     [S60]; [RD7] runs ONNX "in full-dimensions mode" with it;
                                                         a no-op from 8.2, which picks explicit batch for ONNX
                                                         itself [CL-8.2.0] [S82]; unknown option in 10.3 [L103]
  --fp16 --int8                            4.0 - 10.x    [S4] [HK-help]; removed in 11.0 [M11]; --int8 "Currently
                                                         no support for ONNX model" up to 5.1 [S4] [S50] [S51]
  --best (= --fp16 --int8)                 8.2 - 10.x    [S82] sets int8 and fp16; absent in [S60]; removed in
                                                         11.0 [M11]. Older versions get --fp16 --int8.
  --engine=F (save when building, load     4.0 - 5.0     [S4] [S50]; 5.1 rejects it: "--engine has been
  otherwise)                                             deprecated. Please use --saveEngine and --loadEngine"
  --saveEngine=F --loadEngine=F            5.1 on        [S51] [S60] [S82] [HK-help]
  --useDLACore=N --allowGPUFallback        5.0 on        [S50] [S51] [S60] [S82] [HK-help]; not in [S4]
  --iterations=N --avgRuns=N               4.0 on        [S4] .. [HK-help]
  --warmUp=ms --duration=s                 6.0 on        [S60] [HK-help]
  --useSpinWait                            5.1 - 10.x    [S51] [S60] [S82] [HK-help]; not in [S50]; 11.x spins
                                                         by default and warns the flag is deprecated [S11]
  --exportTimes=F --exportProfile=F        6.0 on        [S60] [S82] [HK-help] [S11]
  --separateProfileRun                     7.x - 10.x    [S7x] [S82] [HK-help]; not in [S60]; 11.x always runs
                                                         the profile separately, flag deprecated [S11].
                                                         The 7.x copy does not say its minor: 7.1 is assumed
                                                         and 7.0 gets no flag.
  --buildOnly                              6.0 - 8.5     [S60] [S82]; [HK-cmd] "Use --buildOnly rather than
  --skipInference                          8.6 on        --skipInference (TensorRT<=8.5)"; unknown option in
                                                         10.3 [L103]
  --workspace=MiB                          4.0 - 8.x     [S4]; deprecated by --memPoolSize in 8.4 [CL-8.4.1];
  --memPoolSize=workspace:MiB              8.4 on        removed in 10.0 [M10] [L103]
  transfers off, spin-wait and CUDA graph  11.x          [S11]: --includeDataTransfers, --noSpinWait,
  on by default                                          --noCudaGraph turn the old behaviour back on

  [S3]  aimuch/iAI src/tensorrt/tensorrt-3.0.4/samples-cpp/giexec/giexec.cpp
  [S4]  aimuch/iAI src/tensorrt/tensorrt-4.0.1.6/samples-cpp/trtexec/trtexec.cpp (printUsage, parseArgs)
  [S50] aimuch/iAI src/tensorrt/tensorrt-5.0.2.6/samples-python/trtexec/trtexec.cpp
  [S51] NVIDIA/TensorRT samples/opensource/trtexec/trtexec.cpp @0d36bbb2 (first open-source trtexec, 5.1)
  [S60] aimuch/iAI src/tensorrt/tensorrt-6.0.1.5/samples/common/sampleOptions.cpp (help texts)
  [S7x] a TensorRT 7.x samples/common/sampleOptions.cpp vendored under a renamed namespace (GitHub code index
        copy 7963816942; repository not resolved): --noDataTransfers, --separateProfileRun, --buildOnly
  [RD7] NVIDIA/TensorRT samples/opensource/trtexec/README.md @09d548fe, "Example 4: Running an ONNX model with full
        dimensions and dynamic shapes"
  [S82] NVIDIA/TensorRT samples/common/sampleOptions.cpp @0a4ed147 (8.2: --explicitBatch deprecated, --best)
  [S11] kevinch-nv/TensorRT @ca754f7c (VERSION 11.2.1.2) samples/common/sampleOptions.cpp, InferenceOptions::parse
  [CL-8.2.0], [CL-8.4.1] NVIDIA/TensorRT CHANGELOG.md, sections "8.2.0 EA" and "8.4.1 GA"
  [HK-help] NVIDIA/trt-samples-for-hackathon-cn cookbook/07-Tool/trtexec/Help.txt @1c8b6b6c (10.6 --help)
  [HK-cmd]  NVIDIA/trt-samples-for-hackathon-cn cookbook/07-Tool/trtexec/command.sh @43b9d953
  [M10] docs.nvidia.com/deeplearning/tensorrt/10.16.1/api/tensorrt-8x-to-10x-trtexec.html ("Removed trtexec Flags")
  [M11] docs.nvidia.com/deeplearning/tensorrt/11.0.0/api/migration/tensorrt-10x-to-11x-trtexec.html
  [L103] tests/parsers/logs/trtexec/trt10_3_jetson_unknown_option_failed_excerpt.log (real 10.3 output)

TensorRT 9.x (LLM-only early-access releases) and majors above 11 have no flag source here: they are refused
rather than guessed.

What the timing run measures is kept the same everywhere it can be: spin-wait on (5.1 on), CUDA graphs off,
data transfers on. On 11.x that takes --includeDataTransfers and --noCudaGraph, because 11.x turned the
defaults around [S11]; see ``latency_span``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from ...parsers.trtexec import version_from_code
from ...errors import InputError

PRECISIONS = ("fp32", "fp16", "int8", "best")


class TensorRTCommandError(InputError):
    """The requested engine or run is not possible with this TensorRT version; the message says why."""


@dataclass(frozen=True, order=True)
class TrtVersion:
    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def series(self) -> str:
        return f"{self.major}.{self.minor}"


_BANNER_CODE = re.compile(r"TensorRT v(\d+)\]")
_VERSION_LINE = re.compile(r"TensorRT version:\s*(\d+(?:\.\d+)*)")
# A dotted version not glued to a word ("libnvinfer8 8.2.1-1+cuda10.2" -> 8.2.1, not the 8 of the name).
_DOTTED = re.compile(r"(?<![\w.])(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> TrtVersion:
    """The TensorRT version named in a trtexec banner, its "TensorRT version:" line, or a package version.

    Accepts ``&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # ...`` (NV_TENSORRT_VERSION code),
    ``TensorRT version: 8.2.1`` or 8.0's ``TensorRT version: 8001``, and package/module strings such as
    ``8.2.1-1+cuda10.2``, ``libnvinfer8 8.5.2-1+cuda11.4`` or ``10.3.0.30``.
    """
    if found := _BANNER_CODE.search(text):
        dotted = version_from_code(int(found.group(1)))
    elif (found := _VERSION_LINE.search(text)) and found.group(1).isdigit():
        dotted = version_from_code(int(found.group(1)))
    else:
        dotted = None
    match = _DOTTED.search(dotted or (found.group(1) if found else text))
    if not match:
        raise ValueError(f"no TensorRT version in {text!r}")
    major, minor, patch = match.groups()
    return TrtVersion(int(major), int(minor), int(patch or 0))


@dataclass(frozen=True)
class OnnxModel:
    path: str


@dataclass(frozen=True)
class CaffeModel:
    """A Caffe deploy prototxt (``--from prototxt``); without weights trtexec uses random ones."""

    prototxt: str
    output: str
    weights: str | None = None


@dataclass(frozen=True)
class TimingOptions:
    """How long the timing run runs. From 6.0 trtexec runs at least ``iterations`` and ``duration_s``
    after ``warmup_ms`` of warm-up; up to 5.x it prints ``iterations`` lines, each the mean of ``avg_runs``
    runs, and has no warm-up option."""

    iterations: int = 100
    warmup_ms: int = 500
    duration_s: int = 0
    avg_runs: int = 10


def _check_supported(version: TrtVersion) -> None:
    if version.major < 4:
        raise TensorRTCommandError(
            f"TensorRT {version} ships giexec, not trtexec (trtexec appeared in 4.0); edgeprof does not drive giexec")
    if version.major == 9 or version.major > 11:
        raise TensorRTCommandError(
            f"TensorRT {version}: edgeprof has no source for this version's trtexec flags "
            "(known: 4.0-8.6, 10.x, 11.x)")


def _at_least(version: TrtVersion, major: int, minor: int = 0) -> bool:
    return (version.major, version.minor) >= (major, minor)


def implicit_batch(version: TrtVersion, model: OnnxModel | CaffeModel) -> bool:
    """Whether trtexec builds this model as an implicit-batch engine that takes --batch.

    Caffe is implicit-batch in every version that has the parser; ONNX is up to 5.x (4.0's parser hands
    trtexec three-dimensional inputs and the builder gets setMaxBatchSize(--batch) [S4]); from 6.0 trtexec
    builds ONNX with explicit batch, the batch living in the exported model.
    """
    return isinstance(model, CaffeModel) or not _at_least(version, 6)


def _check_model(version: TrtVersion, model: OnnxModel | CaffeModel) -> None:
    if isinstance(model, CaffeModel) and version.major >= 9:
        raise TensorRTCommandError(
            f"TensorRT {version} has no Caffe parser (--deploy/--model/--output/--batch were removed in 10.0; "
            "the last version with it is 8.6): export the model to ONNX instead of --trt-from prototxt")


def _model_flags(version: TrtVersion, model: OnnxModel | CaffeModel, batch: int) -> list[str]:
    _check_model(version, model)
    if isinstance(model, CaffeModel):
        flags = [f"--deploy={model.prototxt}", f"--output={model.output}"]
        if model.weights:
            flags.append(f"--model={model.weights}")
        return flags + [f"--batch={batch}"]
    flags = [f"--onnx={model.path}"]
    if implicit_batch(version, model):
        flags.append(f"--batch={batch}")
    elif not _at_least(version, 8, 2):
        flags.append("--explicitBatch")
    return flags


def _precision_flags(version: TrtVersion, precision: str, model: OnnxModel | CaffeModel) -> list[str]:
    if precision not in PRECISIONS:
        raise TensorRTCommandError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return []
    if version.major >= 11:
        raise TensorRTCommandError(
            f"TensorRT {version} builds strongly typed networks only and has no --fp16/--int8/--best: the "
            "precision comes from the ONNX model itself (convert it before building: ModelOpt AutoCast for fp16, Q/DQ "
            "nodes for int8) and build it as fp32")
    uses_int8 = precision in ("int8", "best")
    if uses_int8 and isinstance(model, OnnxModel) and not _at_least(version, 6):
        raise TensorRTCommandError(
            f"TensorRT {version} trtexec has no INT8 for ONNX models (its help: \"Currently no support for ONNX "
            "model\"); use fp16, or the Caffe prototxt")
    if precision == "best":
        return ["--best"] if _at_least(version, 8, 2) else ["--fp16", "--int8"]
    return [f"--{precision}"]


def build_precisions(version: TrtVersion, model: OnnxModel | CaffeModel) -> list[str]:
    """The precisions of PRECISIONS' fp32, fp16 and int8 that ``build_command`` takes for this version and
    kind of model (11.x: fp32 only; int8 for ONNX from 6.0), in that order: what --best tries."""
    found = []
    for precision in ("fp32", "fp16", "int8"):
        try:
            _precision_flags(version, precision, model)
        except TensorRTCommandError:
            continue
        found.append(precision)
    return found


def _dla_flags(version: TrtVersion, dla_core: int | None, building: bool) -> list[str]:
    if dla_core is None:
        return []
    if not _at_least(version, 5):
        raise TensorRTCommandError(f"TensorRT {version} trtexec has no DLA options (--useDLACore came in 5.0)")
    if dla_core < 0:
        raise TensorRTCommandError(f"DLA core must be 0 or more, not {dla_core}")
    # GPU fallback is a builder setting; loading an engine only needs the core it was built for.
    return [f"--useDLACore={dla_core}"] + (["--allowGPUFallback"] if building else [])


def build_command(version: TrtVersion, model: OnnxModel | CaffeModel, precision: str, batch: int,
                  engine_path: str, dla_core: int | None = None, workspace_mib: int | None = None,
                  trtexec: str = "trtexec") -> list[str]:
    """argv that builds the engine and saves it to ``engine_path``, skipping the benchmark where it can.

    Up to 5.x there is no build-only option, so the build also runs a single short timing pass.
    """
    _check_supported(version)
    if batch < 1:
        raise TensorRTCommandError(f"batch must be 1 or more, not {batch}")
    argv = [trtexec, *_model_flags(version, model, batch), *_precision_flags(version, precision, model)]
    argv += [f"--saveEngine={engine_path}"] if _at_least(version, 5, 1) else [f"--engine={engine_path}"]
    argv += _dla_flags(version, dla_core, building=True)
    if workspace_mib is not None:
        argv.append(f"--memPoolSize=workspace:{workspace_mib}" if _at_least(version, 8, 4)
                    else f"--workspace={workspace_mib}")
    if _at_least(version, 8, 6):
        argv.append("--skipInference")
    elif _at_least(version, 6):
        argv.append("--buildOnly")
    else:
        argv += ["--iterations=1", "--avgRuns=1"]
    return argv


def _load_flags(version: TrtVersion, model: OnnxModel | CaffeModel, batch: int, engine_path: str) -> list[str]:
    _check_model(version, model)
    if _at_least(version, 5, 1):
        flags = [f"--loadEngine={engine_path}"]
    elif isinstance(model, CaffeModel):
        # 4.0/5.0 reload through --engine with no model; they bind only the outputs named on the command line
        # and the input "data" (hard-coded in 4.0 [S4], --input's default in 5.0 [S50]).
        flags = [f"--engine={engine_path}", f"--output={model.output}"]
    else:
        raise TensorRTCommandError(
            f"TensorRT {version} trtexec reloads an engine only with its blob names on the command line (input "
            "fixed to 'data'); time ONNX models there from the build run, or use the Caffe prototxt")
    if implicit_batch(version, model):
        flags.append(f"--batch={batch}")
    return flags


def timing_command(version: TrtVersion, model: OnnxModel | CaffeModel, batch: int, engine_path: str,
                   times_path: str | None, dla_core: int | None = None, timing: TimingOptions = TimingOptions(),
                   trtexec: str = "trtexec") -> list[str]:
    """argv of the timing run on a saved engine.

    From 6.0 it writes the per-iteration records to ``times_path`` (--exportTimes), from which edgeprof
    computes its statistics; before 6.0 there is no such file (pass None) and the text summary is all there is.
    """
    _check_supported(version)
    exports = _at_least(version, 6)
    if exports and not times_path:
        raise TensorRTCommandError(f"TensorRT {version} writes --exportTimes: give the file for it")
    if not exports and times_path:
        raise TensorRTCommandError(f"TensorRT {version} has no --exportTimes (it came in 6.0)")
    argv = [trtexec, *_load_flags(version, model, batch, engine_path), *_dla_flags(version, dla_core, building=False)]
    argv.append(f"--iterations={timing.iterations}")
    if exports:
        argv += [f"--warmUp={timing.warmup_ms}", f"--duration={timing.duration_s}", f"--exportTimes={times_path}"]
    else:
        argv.append(f"--avgRuns={timing.avg_runs}")
    if version.major >= 11:
        # 11.x spins by default but dropped transfers and turned CUDA graphs on [S11]; put them back so that
        # "latency" keeps meaning H2D + compute + D2H of an ordinarily enqueued query, as in 6.0-10.x.
        argv += ["--includeDataTransfers", "--noCudaGraph"]
    elif _at_least(version, 5, 1):
        argv.append("--useSpinWait")
    return argv


def profile_command(version: TrtVersion, model: OnnxModel | CaffeModel, batch: int, engine_path: str,
                    profile_path: str, dla_core: int | None = None,
                    trtexec: str = "trtexec") -> list[str] | None:
    """argv of the per-layer profile run (--exportProfile), or None before 6.0, which writes no profile file.

    Where it exists, --separateProfileRun keeps the profiler out of the benchmark pass of the same run.
    """
    _check_supported(version)
    if not _at_least(version, 6):
        return None
    argv = [trtexec, *_load_flags(version, model, batch, engine_path), *_dla_flags(version, dla_core, building=False),
            f"--exportProfile={profile_path}"]
    if _at_least(version, 7, 1) and version.major < 11:
        argv.append("--separateProfileRun")
    return argv


def latency_span(version: TrtVersion) -> str:
    """What the timing run's figures cover, for the result's record."""
    _check_supported(version)
    if not _at_least(version, 6):
        return ("gpu_compute_ms: GPU time of one enqueue between CUDA events; latency_ms (5.x): host walltime of "
                "enqueue and synchronisation; no data transfers (inputs stay on the device)")
    return ("latency_ms: H2D + GPU compute + D2H of one query; gpu_compute_ms: GPU compute alone "
            "(data transfers on, CUDA graphs off, spin-wait on)")


def effective_timing(version: TrtVersion) -> dict:
    """What the timing run of ``timing_command`` runs with on this version, whatever trtexec's defaults:
    stored with each result so that `compare` can tell two versions' figures cover different spans
    (``span_mismatch``). CUDA graphs stay off everywhere; spin-wait exists from 5.1; data transfers are
    timed from 6.0 (11.x needs --includeDataTransfers for it, see timing_command)."""
    return {"cuda_graph": False, "spin_wait": _at_least(version, 5, 1), "data_transfers": _at_least(version, 6)}


def engine_cache_key(model_sha256: str, version: TrtVersion, precision: str, batch: int, device: str,
                     dla_core: int | None = None, onnx: tuple[int, int] | None = None) -> str:
    """File-name stem of the cached engine: readable parts, then a digest of all of them.

    An engine is only valid for the same model bytes, TensorRT version, precision, batch and GPU/DLA
    (TensorRT refuses plans from other versions and devices), so all of them are in the key; for an ONNX
    model also its (opset, IR version), which the bytes imply but the name shows.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", model_sha256):
        raise ValueError(f"model_sha256 must be 64 lowercase hex digits, not {model_sha256!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
    unit = "gpu" if dla_core is None else f"dla{dla_core}"
    parts = [model_sha256, str(version), precision, batch, device, unit]
    readable = ""
    if onnx is not None:
        parts.append(list(onnx))
        readable = f"-op{onnx[0]}ir{onnx[1]}"
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]
    device_slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "device"
    return f"{model_sha256[:12]}{readable}-trt{version}-{precision}-b{batch}-{device_slug}-{unit}-{digest}"
