"""The LibTorch backend: the net the PyTorch backend runs, traced to TorchScript on the board and timed from C++
(seed 004, "LibTorch vs Python"), so that `edgeprof compare --device D MODEL --backend pytorch,libtorch` says
what Python costs at that batch. edgeprof/onboard/libtorch_runner.py (the steps on the board) and
libtorch_runner.cpp (what is timed) say what runs; base.Backend probes, uploads and fills, this file holds only
what is LibTorch's.

prepare: the probe finds torch, its CMake config (torch.utils.cmake_prefix_path), cmake, g++ and make on the board,
    else BackendUnavailable naming what is missing and how to install it; then the runner is built there
    against that torch, once per (torch version, hash of the runner's sources and of where that torch lives:
    the binary links into it) in the login user's cache (${XDG_CACHE_HOME:-~/.cache}/edgeprof/libtorch-...,
    refused where another user could write). A cached build is reused.
measure: a prototxt or torchvision model is built on the board as the PyTorch runner builds it (same
    arguments, seed and weights) and traced there with the board's own torch, whose libtorch loads it; a
    TorchScript file is timed as it is. CPU, or CUDA where the board's torch sees a GPU; fp32, inference.
"""
from __future__ import annotations

import hashlib
import json
import re

from .. import onboard
from ..errors import BackendUnavailable, RunnerFailed
from ..models import ModelSource, parse
from ..models.netspec import UnsupportedLayer, netspec
from ..result import Result
from ..transport import CommandTimeout
from .base import Backend, Options

SOURCES = ("libtorch_runner.cpp", "CMakeLists.txt")
BUILD_TIMEOUT_S = 1800.0    # a first build on a TX2-class board: minutes
EXPORT_TIMEOUT_S = 600.0
# What the board has for a build: a constant script (Python 3.6+), nothing from the user in it.
_PROBE = r'''import json, os, platform, shutil, sys
cache = os.environ.get("XDG_CACHE_HOME", "")
facts = {"python_version": platform.python_version(), "python_executable": sys.executable,
         "cmake": shutil.which("cmake"), "cxx": shutil.which("g++"), "make": shutil.which("make"),
         "cache_home": cache if os.path.isabs(cache) else os.path.join(os.path.expanduser("~"), ".cache")}
try:
    import torch
    import torch.utils
except Exception as e:
    facts["torch_error"] = "%s: %s" % (type(e).__name__, e)
else:
    facts["torch"] = torch.__version__
    facts["cuda_available"] = torch.cuda.is_available()
    prefix = getattr(torch.utils, "cmake_prefix_path", None)
    facts["cmake_prefix_path"] = prefix
    facts["torch_config"] = bool(prefix) and os.path.isfile(os.path.join(prefix, "Torch", "TorchConfig.cmake"))
print(json.dumps(facts))
'''
_INSTALL = {
    "jetson": "NVIDIA's torch wheel for the board's JetPack (PyTorch for Jetson, "
              "docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform), which ships libtorch",
    "desktop": "pip install torch (its wheel ships libtorch with its headers and CMake config)",
}


def build_dir(cache_home: str, torch_version: str, prefix: str) -> str:
    """Where the runner built against this torch lives on the board: one folder per torch version and hash of
    the runner's sources and of the torch's CMake prefix (the binary links to the libraries beside it)."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(onboard.source(name).encode())
    digest.update(prefix.encode())
    version = re.sub(r"[^A-Za-z0-9.+_-]", "_", torch_version)
    return f"{cache_home}/edgeprof/libtorch-{version}-{digest.hexdigest()[:16]}"


def missing(facts: dict, kind: str) -> str | None:
    """What the board lacks to build the runner, with how to install it, or None."""
    # make: cmake's default generator on Linux writes Makefiles (Debian's cmake only recommends make).
    tools = [name for name, key in (("cmake", "cmake"), ("g++", "cxx"), ("make", "make")) if not facts.get(key)]
    needs = []
    if tools:
        named = " and ".join([", ".join(tools[:-1]), tools[-1]] if len(tools) > 1 else tools)
        needs.append(f"{named} (to build the C++ runner), not on the PATH: sudo apt-get install {' '.join(tools)}")
    if not facts.get("torch_config"):
        needs.append(f"torch {facts['torch']}'s CMake config (TorchConfig.cmake under torch.utils.cmake_prefix_path "
                     f"= {facts.get('cmake_prefix_path')}), which this torch does not ship (Debian's python3-torch "
                     f"does not): {_INSTALL.get(kind, _INSTALL['desktop'])}")
    return "; ".join(needs) or None


def build_argv(facts: dict, workdir: str) -> list[str]:
    return [facts["python"], facts["runner"], "build", "--source", workdir, "--build-dir", facts["build_dir"],
            "--prefix", facts["cmake_prefix_path"], "--cmake", facts["cmake"], "--cxx", facts["cxx"]]


def export_argv(facts: dict, output: str, net_args: list[str], batch: int) -> list[str]:
    """The trace of the net that torch_runner.py builds from `net_args` at `batch` (its default seed)."""
    return [facts["python"], facts["runner"], "export", "--output", output, "--", *net_args, "--batch", str(batch)]


def time_argv(facts: dict, module: str, device: str, batch: int, input_shape: list[int], options: Options) -> list[str]:
    argv = [facts["python"], facts["runner"], "time", "--binary", facts["binary"], "--model", module,
            "--device", device, "--batch", str(batch), "--input-shape", ",".join(map(str, input_shape)),
            "--span", options.span, "--json"]
    if options.threads is not None:
        argv += ["--threads", str(options.threads)]
    return argv + options.timing_argv()


def device_for(facts: dict, processor: str) -> str | None:
    """cpu, cuda (auto where the board's torch sees a GPU), or None: --processor gpu without one."""
    if processor == "cpu" or (processor == "auto" and not facts.get("cuda_available")):
        return "cpu"
    return "cuda" if facts.get("cuda_available") else None


def _last_json(stdout: str) -> dict | None:
    try:
        found = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return found if isinstance(found, dict) else None


class LibTorchBackend(Backend):
    name = "libtorch"
    tool = "LibTorch (C++)"
    model_kinds = ("prototxt", "torchvision", "torchscript")
    runner = "libtorch_runner.py"
    probe = _PROBE
    modules = ("torch",)
    install_hint = _INSTALL
    report_versions = {"libtorch": "libtorch_version"}
    figures = ("pipe_round_trip_ms",)

    def prepare(self, board) -> dict:
        facts = super().prepare(board)
        lacking = missing(facts, board.device.profile.kind)
        if lacking:
            raise BackendUnavailable(f"the libtorch backend builds its runner on {board.device.name} and needs "
                                     f"{lacking}")
        for name in SOURCES:
            board.put_text(f"{board.workdir}/{name}", onboard.source(name))
        facts["build_dir"] = build_dir(facts["cache_home"], facts["torch"], facts["cmake_prefix_path"])
        try:
            built = board.run(build_argv(facts, board.workdir), timeout=BUILD_TIMEOUT_S)
        except CommandTimeout as e:
            raise BackendUnavailable(f"building the LibTorch runner on {board.device.name}: {e}") from None
        report = _last_json(built.stdout)
        if report is None or "error" in report:
            why = report["error"] if report else f"status {built.exit_status}: {built.stderr.strip()[-1500:]}"
            raise BackendUnavailable(f"could not build the LibTorch runner on {board.device.name} against torch "
                                     f"{facts['torch']}: {why}", command=" ".join(build_argv(facts, board.workdir)),
                                     command_status=built.exit_status, stderr=built.stderr)
        facts.update(binary=report["binary"], build_cached=report["cached"], build_s=report["build_s"])
        return facts

    def refusal(self, options: Options) -> str | None:
        pytorch = options.of("pytorch")
        unsupported = [flag for flag, asked in (("--mode train-step", pytorch.mode != "inference"),
                                                 ("--channels-last", pytorch.channels_last),
                                                 ("--cuda-graph", pytorch.cuda_graph),
                                                 ("--compile", pytorch.compile is not None),
                                                 ("--per-layer", options.per_layer)) if asked]
        if unsupported:
            return (f"{', '.join(unsupported)}: the LibTorch runner times plain fp32 inference of the whole "
                    f"TorchScript trace; --backend pytorch has these")
        return super().refusal(options)

    def measure_impl(self, board, facts: dict, model: ModelSource, batch: int, options: Options,
                     result: Result) -> Result:
        device = device_for(facts, options.processor)
        if device is None:
            return result.fail(f"--processor gpu: torch {facts['torch']} on {board.device.name} sees no CUDA device")
        result.settings = {"processor": device, "span": options.span, "threads": options.threads,
                           "iterations": options.iterations}
        result.state["versions"] = {"torch": facts["torch"], "python_version": facts["python_version"]}
        base = f"{board.workdir}/{model.file_stem(batch)}"
        try:
            module, input_shape, exported = self._module(board, model, batch, base, result)
            report = self.run_runner(board, time_argv(facts, module, device, batch, input_shape, options), result,
                                     options)
        except UnsupportedLayer as e:
            return result.fail(str(e))
        self.fill(result, report)
        result.figures.update(exported, build_cached=facts["build_cached"], build_s=facts["build_s"],
                              runner_binary=facts["binary"])
        return result

    def _module(self, board, model: ModelSource, batch: int, base: str, result: Result):
        """(the TorchScript file on the board, the input shape without the batch, the export's figures)."""
        if model.kind == "torchscript":
            return self.upload_model(board, model, batch, result), [3, 224, 224], {}
        if model.kind == "prototxt":
            rewritten, result.prototxt_diff = model.at_batch(batch)
            board.put_text(base + ".netspec.json", json.dumps(netspec(parse(rewritten, model.path))))
            net_args = ["--spec", base + ".netspec.json"]
        else:
            net_args = ["--torchvision", model.path.split(":", 1)[1]]
        facts = board.backend_facts[self.name]
        try:
            run = board.run(export_argv(facts, base + ".libtorch.pt", net_args, batch), timeout=EXPORT_TIMEOUT_S,
                            record_in=result)
        except CommandTimeout as e:
            raise RunnerFailed(f"tracing the net on {board.device.name}: {e}") from None
        report = _last_json(run.stdout)
        if report is None or "error" in report:
            result.raw_log = run.stderr + run.stdout
            why = f"{report['error']} ({report.get('kind')})" if report else f"status {run.exit_status}: " \
                                                                             f"{run.stderr.strip()[-500:]}"
            raise RunnerFailed(f"tracing the net to TorchScript on the board failed: {why}")
        return base + ".libtorch.pt", report["input_shape"], {
            "export_s": report["export_s"], "trace_max_abs_diff": report["trace_max_abs_diff"]}
