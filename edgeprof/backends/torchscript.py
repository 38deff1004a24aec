"""The frozen-TorchScript backend: a TorchScript file after torch.jit.freeze and optimize_for_inference, on the
board's CPU (edgeprof/onboard/torchscript_runner.py says what runs), beside the pytorch backend's eager run of
the same file. base.Backend probes, uploads and fills; this file holds only what is TorchScript's."""
from __future__ import annotations

from ..errors import RunnerFailed
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

    def measure(self, board, model: ModelSource, batch: int, options: Options) -> Result:
        result = board.new_result(model, self.name, batch)
        if refused := self.refusal(options):
            return result.fail(refused)
        facts = board.backend_facts[self.name]
        remote = f"{board.workdir}/{model.file_stem(batch)}.pt"
        with open(model.path, "rb") as f:
            board.put_bytes(remote, f.read())
        argv = [facts["python"], facts["runner"], "--model", remote, "--batch", str(batch), "--json"]
        argv += options.timing_argv()
        result.settings = {"iterations": options.iterations}
        try:
            return self.fill(result, self.run_runner(board, argv, result, options))
        except RunnerFailed as e:
            return result.fail(str(e))
