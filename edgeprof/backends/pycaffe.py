"""The pycaffe backend: Caffe's own net through its Python interface (edgeprof/onboard/pycaffe_runner.py says
what runs and what each figure covers), for the cold start `caffe time` cannot report (load in a fresh
process, first forward, memory after each) and per-iteration forward times. base.Backend probes, uploads
and fills; this file holds only what is pycaffe's."""
from __future__ import annotations

from ..models import ModelSource
from ..result import Result
from .base import Backend, Options


class PyCaffeBackend(Backend):
    name = "pycaffe"
    tool = "pycaffe"
    model_kinds = ("prototxt",)
    spans = ()  # always "pycaffe_forward" (the runner's docstring)
    runner = "pycaffe_runner.py"
    modules = ("caffe", "numpy")
    install_hint = {"desktop": "apt-get install python3-caffe (Debian bullseye; python3-caffe-cuda for a GPU), or "
                               "build Caffe with `make pycaffe` and put its python/ on the PYTHONPATH"}
    report_versions = {"caffe": "caffe_version", "numpy": "numpy_version"}
    gpu_by_argument = True  # the runner's --gpu N: caffe.set_device, as caffe time's -gpu N

    def measure_impl(self, board, facts: dict, model: ModelSource, batch: int, options: Options,
                     result: Result) -> Result:
        remote = self.upload_model(board, model, batch, result)
        argv = [facts["python"], facts["runner"], "--model", remote, "--json", *options.timing_argv()]
        # A board whose probe found an NVIDIA GPU (or a Jetson's) runs it there unless --processor cpu.
        on_gpu = bool(board.facts.get("gpu")) and options.processor != "cpu"
        if on_gpu:
            argv += ["--gpu", str(options.gpu or 0)]
        elif options.processor == "gpu":
            return result.fail(f"--processor gpu: {board.device.name} has no GPU its probe found")
        result.settings = {"iterations": options.iterations, "gpu": on_gpu}
        return self.fill(result, self.run_runner(board, argv, result, options))
