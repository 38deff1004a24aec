"""Host side of the PyTorch backend: find Python and torch on the board, map the options to the runner's
command line, keep the figures that are torch's own.

The board runs edgeprof/onboard/torch_runner.py (uploaded into edgeprof's private work folder with the rest
of the bundle, never installed) with the board's own Python and torch; it builds the net from the netspec
JSON written here (or from torchvision, or loads a TorchScript file), times it and prints one JSON object.
What each figure means (spans, timers, the stopping rule) is written in the runner's docstring and timing.py's,
and copied into every result's `method`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from ... import image_inputs
from ...models import ModelSource, parse
from ...models.netspec import UnsupportedLayer, netspec
from ...result import Result
from ..base import Backend, Options

RUNNER_FILE = "torch_runner.py"
# What the board's Python and torch can do; a constant script (Python 3.6+), nothing from the user in it.
_PROBE = r'''import json, platform, sys
facts = {"python_version": platform.python_version(), "python_executable": sys.executable}
try:
    import torch
except Exception as e:
    facts["torch_error"] = "%s: %s" % (type(e).__name__, e)
else:
    facts["torch"] = torch.__version__
    facts["cuda"] = torch.version.cuda
    facts["cuda_available"] = torch.cuda.is_available()
    if facts["cuda_available"]:
        facts["gpu_name"] = torch.cuda.get_device_name(0)
        facts["bf16"] = bool(getattr(torch.cuda, "is_bf16_supported", lambda: False)())
    facts["compile"] = hasattr(torch, "compile")
    facts["cuda_graphs"] = hasattr(torch.cuda, "CUDAGraph")
    try:
        import torchvision
        facts["torchvision"] = torchvision.__version__
    except Exception:
        facts["torchvision"] = None
print(json.dumps(facts))
'''
_INSTALL_HINT = {
    "jetson": "install NVIDIA's torch wheel for the board's JetPack (PyTorch for Jetson, "
              "docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform)",
    "desktop": "pip install torch (for the Python edgeprof runs there)",
}


def runner_argv(python: str, runner: str, model_args: list[str], device: str, batch: int,
                options: Options) -> list[str]:
    """The board command for one measurement with `options` (see torch_runner.py --help)."""
    own = options.of("pytorch")
    argv = [python, runner, *model_args, "--device", device, "--batch", str(batch), "--span", options.span,
            "--json"]
    # Variant flags only when asked for: the command in the result reads as what a person would type.
    if options.precision != "fp32":
        argv += ["--precision", options.precision]
    if own.mode != "inference":
        argv += ["--mode", own.mode]
    argv += options.timing_argv()
    if own.channels_last:
        argv.append("--channels-last")
    if own.cuda_graph:
        argv.append("--cuda-graph")
    if own.compile is not None:
        argv.append(f"--compile={own.compile}")
    if options.threads is not None:
        argv += ["--threads", str(options.threads)]
    # Per-layer hooks need a Caffe net's modules run eagerly: --best's CUDA graph and compile variants, torchvision
    # and TorchScript models are measured without them (their results carry no per-layer figures).
    if options.per_layer and "--spec" in model_args and own.mode == "inference" and not own.cuda_graph \
            and own.compile is None:
        argv.append("--per-layer")
    return argv


@dataclass(frozen=True)
class PyTorchOptions:
    """The pytorch backend's own options (--channels-last, --cuda-graph, --compile, --mode); the LibTorch
    runner refuses them by name."""
    channels_last: bool = False
    cuda_graph: bool = False
    compile: str | None = None       # a torch.compile mode (COMPILE_MODES), None: eager
    mode: str = "inference"          # or "train-step": forward + loss + backward + optimizer step (MODES)


class PyTorchBackend(Backend):
    name = "pytorch"
    option_type = PyTorchOptions
    tool = "PyTorch"
    model_kinds = ("prototxt", "torchvision", "torchscript")
    precisions = ("fp32", "fp16", "bf16")
    spans = ("compute", "host", "end-to-end")
    best_tries = "precisions, channels-last, CUDA graph, compile"
    runner = RUNNER_FILE
    probe = _PROBE
    modules = ("torch",)
    install_hint = _INSTALL_HINT
    report_versions = {"torch": "torch_version", "cuda": "cuda_version", "cudnn": "cudnn_version"}
    figures = ("variant", "calibration_s", "compile_s", "cuda_graph_capture_s", "weights", "loss", "per_layer",
               "end_to_end", "detector")

    def measure_impl(self, board, facts: dict, model: ModelSource, batch: int, options: Options,
                     result: Result) -> Result:
        device = self._device(facts, options)
        if device is None:
            return result.fail(f"--processor gpu: torch {facts['torch']} on {board.device.name} sees no CUDA "
                               f"device (torch.version.cuda = {facts['cuda']})")
        base = f"{board.workdir}/{model.file_stem(batch)}"
        if model.kind == "prototxt":
            rewritten, result.prototxt_diff = model.at_batch(batch)
            try:
                spec = netspec(parse(rewritten, model.path))
            except UnsupportedLayer as e:
                return result.fail(str(e))
            board.put_text(base + ".netspec.json", json.dumps(spec))
            model_args = ["--spec", base + ".netspec.json"]
        elif model.kind == "torchvision":
            model_args = ["--torchvision", model.path.split(":", 1)[1]]
        else:
            model_args = ["--torchscript", self.upload_model(board, model, batch, result)]

        argv = runner_argv(facts["python"], facts["runner"], model_args, device, batch, options)
        argv += image_inputs.input_argv(board, model, options, result)
        result.settings = {"processor": device, "span": options.span, "precision": options.precision,
                           **asdict(options.of(self.name)), "threads": options.threads,
                           "iterations": options.iterations,
                           "input": None if options.image_input is None else options.image_input.text}
        result.state["versions"] = {k: facts.get(k) for k in ("torch", "cuda", "torchvision", "python_version")}
        return self.fill(result, self.run_runner(board, argv, result, options))

    def variants(self, board, options: Options) -> list[Options]:
        """What --best tries on this board: eager fp32 as the reference, then what a careful hand-written
        script would (PyTorch's performance tuning guide,
        https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html): half precision in NHWC, CUDA graph
        replay, torch.compile; only those the board's torch and processor have. Compile times are reported
        apart from latency."""
        facts = board.backend_facts[self.name]
        base = replace(options, best=False, precision="fp32", channels_last=False, cuda_graph=False, compile=None)
        tried = [base, replace(base, channels_last=True)]
        if self._device(facts, options) == "cuda":
            tried = [base, replace(base, precision="fp16", channels_last=True)]
            if facts.get("cuda_graphs"):
                tried.append(replace(base, precision="fp16", channels_last=True, cuda_graph=True))
                if facts.get("bf16"):
                    tried.append(replace(base, precision="bf16", channels_last=True, cuda_graph=True))
            if facts.get("compile"):
                tried.append(replace(base, precision="fp16", channels_last=True, compile="reduce-overhead"))
        elif facts.get("compile"):
            tried.append(replace(base, compile="default"))
        return tried

    @staticmethod
    def _device(facts: dict, options: Options) -> str | None:
        if options.processor == "cpu":
            return "cpu"
        if facts.get("cuda_available"):
            return "cuda"
        return None if options.processor == "gpu" else "cpu"
