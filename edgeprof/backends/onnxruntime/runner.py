"""Host side of the ONNX Runtime backend: export the model to ONNX here, put the file in the board's model
cache, run the board runner with the board's own Python and onnxruntime, map its JSON.

The model is the PyTorch backend's build (edgeprof.models.onnx_export: same layers, same seeded weights),
exported on the host at the batch and precision asked for, at the opset and IR version the board's onnxruntime
reads (edgeprof.models.onnx_versions; --opset overrides the opset), and cached there by content. Boards keep the
files in their own cache, ~/.cache/edgeprof/onnx/<sha256>.onnx (XDG_CACHE_HOME where set), so a file is
uploaded once per board; on `local` the board's cache is the host's. What each figure means (spans, timer,
stopping rule) is written in edgeprof/onboard/onnxruntime_runner.py's docstring; the execution provider actually used is reported
next to the one asked for, and a silent fallback is flagged (provider_fallback).

Providers: --processor cpu runs the CPU provider; auto the CUDA provider where this onnxruntime build has
one (with the CPU provider for what CUDA lacks), else the CPU; gpu insists on CUDA. --processor does not pick
the TensorRT provider: it builds engines inside the first inference (minutes on a TX2; the first inference is
reported apart from latency); the TensorRT backend measures TensorRT itself. --best (`variants`) tries each
provider the board's onnxruntime has, the TensorRT one included, each in fp32 and, where it has fp16
kernels, fp16; the result's `variant` names both ("cuda+fp16").
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ... import image_inputs
from ...errors import BackendUnavailable, InputError
from ...models import ModelSource, onnx_versions
from ...models.onnx_layers import LayerNames, group_nodes
from ...models.onnx_export import MODEL_KINDS, PRECISIONS, OnnxExport, export_for, target_for
from ...result import Result
from ..base import Backend, Options

RUNNER_FILE = "onnxruntime_runner.py"
# What the board's Python, numpy and onnxruntime can do, and where its model cache is; a constant script
# (Python 3.6+), nothing from the user in it. The cache rule is the host's (export.cache_dir).
_PROBE = r'''import json, os, platform, sys
facts = {"python_version": platform.python_version(), "python_executable": sys.executable,
         "cache": os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                               "edgeprof", "onnx")}
for name in ("numpy", "onnxruntime"):
    try:
        facts[name] = __import__(name).__version__
    except Exception as e:
        facts[name + "_error"] = "%s: %s" % (type(e).__name__, e)
if "onnxruntime" in facts:
    import onnxruntime
    facts["providers"] = onnxruntime.get_available_providers()
print(json.dumps(facts))
'''
_INSTALL_HINT = {
    "jetson": "install the onnxruntime-gpu wheel built for the board's JetPack and Python (the Jetson Zoo, "
              "elinux.org/Jetson_Zoo#ONNX_Runtime, lists them) and numpy (pip3 install numpy)",
    "desktop": "pip install onnxruntime numpy (onnxruntime-gpu for the CUDA provider), for the Python edgeprof "
               "runs there",
}
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
# A provider asked for first, then those ONNX Runtime hands what it cannot run to: TensorRT to CUDA, CUDA to
# the CPU. Also --best's order, the CPU (fp32, the reference) first.
_FALLBACK = (TENSORRT, CUDA, CPU)
_SHORT = {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}
# The CPU provider lacks fp16 kernels for most of edgeprof's layers (Conv among them): fp16 on GPU providers only.
_FP16 = (CUDA, TENSORRT)


def providers_for(available: list[str], processor: str, first: str | None = None) -> list[str] | None:
    """The providers to ask for, most preferred first; None when --processor gpu finds no CUDA provider.
    With `first` (Options.ort_provider, one of `available`): it and those it falls back on."""
    if first is not None:
        return [p for p in _FALLBACK[_FALLBACK.index(first):] if p in available]
    if processor != "cpu" and CUDA in available:
        return [CUDA, CPU]
    return None if processor == "gpu" else [CPU]


def upload_model(board, cache: str, model: OnnxExport, record_in: Result | None = None) -> tuple[str, float | None]:
    """The model's path in the board's cache, named by its sha256 as on the host: (path, seconds the upload
    took, or None when the board had it already). The file is written beside its final name and renamed,
    so a file there under that name is complete. Raises OSError when the board refuses the file (full disk,
    permissions)."""
    path = f"{cache}/{model.sha256}.onnx"
    if board.run(["test", "-f", path], timeout=60, record_in=record_in).ok:
        return path, None
    started = time.monotonic()
    # The work folder's name is unique to this run: no other upload writes the same partial file.
    partial = f"{path}.{os.path.basename(board.workdir)}.partial"
    board.put_bytes(partial, Path(model.path).read_bytes())
    moved = board.run(["mv", "-f", "--", partial, path], timeout=60, record_in=record_in)
    if not moved.ok:
        raise OSError(moved.stderr.strip()[-300:])
    return path, time.monotonic() - started


def runner_argv(facts: dict, model_path: str, providers: list[str], options: Options) -> list[str]:
    """The board command for one measurement (see onnxruntime_runner.py --help)."""
    argv = [facts["python"], facts["runner"], "--model", model_path, "--providers", ",".join(providers),
            "--span", options.span, "--json"]
    argv += options.timing_argv()
    if options.threads is not None:
        argv += ["--threads", str(options.threads)]
    if options.per_layer:
        argv.append("--per-layer")
    return argv


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    """The onnxruntime backend's own option (--ort-provider)."""
    provider: str | None = None      # this execution provider first (--best), None: by --processor


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    option_type = OnnxRuntimeOptions
    tool = "ONNX Runtime"
    model_kinds = MODEL_KINDS
    precisions = PRECISIONS  # what it runs is the ONNX export, which the exporter makes in these
    precision_refusal = "ONNX export: precision {precision!r} is not one of {precisions}"
    spans = ("compute", "host", "end-to-end")
    best_tries = "execution providers x precisions"
    runner = RUNNER_FILE
    probe = _PROBE
    modules = ("onnxruntime", "numpy")
    install_hint = _INSTALL_HINT
    report_versions = {"onnxruntime": "onnxruntime_version", "numpy": "numpy_version"}
    figures = ("providers_requested", "providers_used", "end_to_end")

    def prepare(self, board) -> dict:
        facts = super().prepare(board)
        made = board.run(["mkdir", "-p", "--", facts["cache"]], timeout=60)
        if not made.ok:
            raise BackendUnavailable(f"cannot create the model cache {facts['cache']} on {board.device.name}: "
                                     f"{made.stderr.strip()[-300:]}")
        return facts

    def refusal(self, options: Options) -> str | None:
        if options.mode != "inference":
            return f"--mode {options.mode}: ONNX Runtime runs inference only; use --backend pytorch"
        return super().refusal(options)

    def measure_impl(self, board, facts: dict, model: ModelSource, batch: int, options: Options,
                     result: Result) -> Result:
        provider = options.of(self.name).provider
        if provider is not None and provider not in facts["providers"]:
            return result.fail(f"onnxruntime {facts['onnxruntime']} on {board.device.name} has no "
                               f"{provider} (it has {', '.join(facts['providers'])})")
        providers = providers_for(facts["providers"], options.processor, provider)
        if providers is None:
            return result.fail(f"--processor gpu: onnxruntime {facts['onnxruntime']} on {board.device.name} has no "
                               f"{CUDA} (it has {', '.join(facts['providers'])}): install onnxruntime-gpu")
        if model.kind == "prototxt":
            result.prototxt_diff = model.at_batch(batch)[1]
        try:
            # The file this onnxruntime was made for (onnx_versions' table, by the probed version): ONNX
            # Runtime refuses files above its opset or IR version.
            target = target_for(onnx_versions.reader(onnx_versions.ONNXRUNTIME, facts["onnxruntime"]), options.opset)
            if target.opset > target.reader.opset:
                return result.fail(f"--opset {target.opset}: {target.reader.describe()}; export at opset "
                                   f"{target.reader.opset} or lower (drop --opset), or install a newer onnxruntime")
            exported = export_for(model, batch, options.precision, target)
        except (InputError, BackendUnavailable) as e:  # the table has no row, or the exporter refused
            return result.fail(str(e))
        result.model_info["onnx"] = {"sha256": exported.sha256, "opset": exported.opset,
                                     "ir_version": exported.ir_version, "opset_chosen": target.chosen,
                                     "precision": exported.precision, "input_names": exported.input_names,
                                     "output_names": exported.output_names, "seed": exported.seed,
                                     "exported_with": f"torch {exported.torch_version} (TorchScript exporter)"}
        result.settings = {"processor": options.processor, "providers": providers, "span": options.span,
                           "precision": options.precision, "threads": options.threads,
                           "iterations": options.iterations, "opset": options.opset,
                           "input": None if options.image_input is None else options.image_input.text}
        result.state["versions"] = {k: facts.get(k) for k in ("onnxruntime", "numpy", "python_version")}
        try:
            model_path, upload_s = upload_model(board, facts["cache"], exported, record_in=result)
        except OSError as e:
            return result.fail(f"could not put {exported.sha256}.onnx into {facts['cache']} on "
                               f"{board.device.name}: {e}")
        argv = runner_argv(facts, model_path, providers, options)
        argv += image_inputs.input_argv(board, model, options, result)
        report = self.run_runner(board, argv, result, options)
        return self._fill(result, report, exported, upload_s, provider)

    def variants(self, board, options: Options) -> list[Options]:
        """What --best tries: each provider among CPU, CUDA and TensorRT that the board's onnxruntime has and
        --processor allows (cpu: the CPU one; gpu: CUDA and TensorRT), in fp32 and, on CUDA and TensorRT,
        fp16; the CPU's fp32 first, as the reference. Where --processor allows none of them, the one plain
        measurement, which fails saying so."""
        available = board.backend_facts[self.name]["providers"]
        allowed = {"cpu": (CPU,), "gpu": (CUDA, TENSORRT)}.get(options.processor, _FALLBACK)
        base = replace(options, best=False, precision="fp32")
        tried = [replace(base, ort_provider=provider, precision=precision)
                 for provider in reversed(_FALLBACK) if provider in available and provider in allowed
                 for precision in (("fp32", "fp16") if provider in _FP16 else ("fp32",))]
        return tried or [base]

    @classmethod
    def _fill(cls, result: Result, report: dict, exported: OnnxExport, upload_s: float | None,
              chosen_provider: str | None = None) -> Result:
        cls.fill(result, report)
        result.figures.update(
            # The provider joins the label only where --best chose it: otherwise --processor says where it ran.
            variant=(exported.precision if chosen_provider is None
                     else f"{_SHORT[chosen_provider]}+{exported.precision}"),
            provider=report["providers_used"][0], onnx_sha256=exported.sha256,
            opset=exported.opset, ir_version=exported.ir_version, export_s=exported.export_s, export_cached=exported.cached,
            upload="skipped: already in the board's cache" if upload_s is None else "uploaded", upload_s=upload_s)
        if report.get("per_layer") is not None:
            # The nodes ORT ran, grouped by the prototxt's layers they compute (models.onnx_layers).
            profile = dict(report["per_layer"])
            profile["layers"] = group_nodes(profile["nodes"], LayerNames.of_file(exported.path))
            result.figures["per_layer"] = profile
        if report["provider_fallback"]:
            said = "; ".join(report["session_warnings"]) or "ONNX Runtime's log (raw_log) may say why"
            detail = (f"asked for {report['providers_requested'][0]}, the session runs on "
                      f"{', '.join(report['providers_used'])}: {said}")
            result.flags.append({"code": "provider_fallback", "detail": detail})
            result.figures["provider_fallback"] = detail
        return result
