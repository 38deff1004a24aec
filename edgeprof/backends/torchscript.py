"""The frozen-TorchScript backend: a TorchScript file after torch.jit.freeze and optimize_for_inference, on the
board's CPU (edgeprof/onboard/torchscript_runner.py says what runs), beside the pytorch backend's eager run of
the same file. base.Backend probes, uploads and fills; this file holds only what is TorchScript's."""
from __future__ import annotations

from ..models import ModelSource
from ..result import Result
from .base import Backend, Options


class TorchScriptBackend(Backend):
    name = "torchscript"
    tool = "TorchScript"
    model_kinds = ("torchscript",)
    spans = ("compute",)
    runner = "torchscript_runner.py"
    modules = ("torch",)
    install_hint = {"desktop": "pip install torch 1.10 or newer (for the Python edgeprof runs there)"}
    report_versions = {"torch": "torch_version"}

    def refusal(self, options: Options) -> str | None:
        if options.processor == "gpu":
            return "--processor gpu: frozen TorchScript runs on the board's CPU; --backend pytorch runs it on the GPU"
        return super().refusal(options)

    def measure_impl(self, board, facts: dict, model: ModelSource, batch: int, options: Options,
                     result: Result) -> Result:
        remote = self.upload_model(board, model, batch, result)
        argv = [facts["python"], facts["runner"], "--model", remote, "--batch", str(batch), "--json"]
        result.settings = {"iterations": options.iterations}
        return self.fill(result, self.run_runner(board, argv + options.timing_argv(), result, options))
