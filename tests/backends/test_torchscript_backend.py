"""The frozen-TorchScript backend (edgeprof/backends/torchscript.py, edgeprof/onboard/torchscript_runner.py): the
smallest backend on base.Backend, measured end to end on this machine as the `local` board, and through the
CLI's capability lists."""
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from edgeprof import backends  # noqa: E402
from edgeprof.backends import Options  # noqa: E402
from edgeprof.backends.torchscript import TorchScriptBackend  # noqa: E402
from edgeprof.board import Board  # noqa: E402
from edgeprof.devices import get_device  # noqa: E402
from edgeprof.models import resolve  # noqa: E402
from edgeprof.onboard import bundle  # noqa: E402
from edgeprof.transport.local import LocalTransport  # noqa: E402

from .board import board_folder  # noqa: E402


@pytest.fixture
def scripted(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 5))
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    return path


@pytest.fixture
def board(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Board(device=get_device("local"), transport=LocalTransport(), run_id="test", workdir=str(workdir))


def test_measures_a_torchscript_file_on_the_local_board(board, scripted):
    backend = TorchScriptBackend()
    board.backend_facts["torchscript"] = backend.prepare(board)
    result = backend.measure(board, resolve(str(scripted)), 2, Options(iterations=5))
    assert result.error is None, result.error
    assert (result.iterations, result.span, result.settings["processor"]) == (5, "compute", "cpu")
    assert result.settings["input_shape"] == [3, 224, 224] and result.state["versions"]["torch"] == torch.__version__
    assert 0 < result.latency_ms["min"] <= result.latency_ms["median"] <= result.latency_ms["max"]
    assert len(result.figures["times_ms"]) == 5 and result.method["iterations_policy"] == "fixed (5)"
    stages = result.figures["memory_stages"]       # the cold start's memory (harness.stage_memory)
    assert stages["loaded"]["rss_bytes"] > 10e6 and stages["first_inference"]["rss_peak_bytes"] > 10e6


def test_refuses_what_it_does_not_declare(board, scripted):
    backend = TorchScriptBackend()
    for options, said in ((Options(span="host"), "--span host: TorchScript times compute only"),
                          (Options(precision="fp16"), "--precision fp16: TorchScript runs fp32 only"),
                          (Options(processor="gpu"), "--processor gpu: frozen TorchScript runs on the board's CPU")):
        assert backend.measure(board, resolve(str(scripted)), 1, options).error.startswith(said)


def test_its_capabilities_reach_the_cli_tables():
    assert backends.backend_class("torchscript").model_kinds == ("torchscript",)
    assert backends.precisions() == ("fp32", "fp16", "bf16", "int8")
    assert backends.spans() == ("compute", "host", "end-to-end")


def test_runner_errors_are_json(tmp_path):
    runner = board_folder(bundle()) / "torchscript_runner.py"
    done = subprocess.run([sys.executable, str(runner), "--model", str(tmp_path / "missing.pt"), "--json",
                           "--iterations", "1"], capture_output=True, text=True)
    out = json.loads(done.stdout)
    assert done.returncode == 1 and out["kind"] == "runtime" and out["torch_version"] == torch.__version__
