"""The ONNX Runtime backend without a board: the board runner (edgeprof/onboard/onnxruntime_runner.py)
run as the board runs it, from a folder with the rest of the bundle beside it, on a small exported net; its
outputs against the PyTorch runner's on the same input; its Python 3.6 compatibility; and the host's
mapping of its JSON (providers, fallback flag)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgeprof.backends import Options  # noqa: E402
from edgeprof.models.onnx_export import export_onnx  # noqa: E402
from edgeprof.backends.onnxruntime.runner import (CPU, CUDA, RUNNER_FILE, OnnxRuntimeBackend,  # noqa: E402
                                                  providers_for, runner_argv)
from edgeprof.onboard import bundle as runner_files  # noqa: E402
from edgeprof.backends.pytorch import runner as pytorch_runner  # noqa: E402
from edgeprof.models.netspec import netspec  # noqa: E402
from edgeprof.onboard.tensors import read_tensors, relative_error  # noqa: E402
from edgeprof.models import parse, resolve, set_batch  # noqa: E402
from edgeprof.result import Result  # noqa: E402

from .board import board_folder  # noqa: E402
from .test_onnx_export import NET  # noqa: E402

RUNNER = board_folder(runner_files()) / RUNNER_FILE
PYTORCH_RUNNER = board_folder(runner_files()) / pytorch_runner.RUNNER_FILE
PYTHON36 = Path("/root/.pyenv/versions/3.6.15/bin/python")
QUICK = ("--json", "--iterations", 4, "--warmup", 1, "--warmup-s", 0)
# The keys both runners give (PyTorch's extra ones are about torch: compile, CUDA graphs, weights...).
SHARED_KEYS = {"load_s", "first_inference_ms", "first_inference_timer", "latency_ms", "ci95_ms", "ci_rel",
               "iterations", "times_ms", "warmup_iterations", "stop_reason", "timed_window", "throughput_ips",
               "memory", "python_version", "device", "device_name", "threads", "span", "timer", "net", "batch",
               "outputs", "settings"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    (folder / "small.prototxt").write_text(NET)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        source = resolve(str(folder / "small.prototxt"))
        return source, export_onnx(source, 2)


def run_runner(runner, *args, check=True):
    result = subprocess.run([sys.executable, str(runner), *map(str, args)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr  # one JSON object and nothing else on stdout
    return json.loads(lines[0]), result.returncode


def spec_file(source, tmp_path):
    """The netspec JSON of `source` at batch 2, as the PyTorch backend uploads it."""
    path = tmp_path / "small.netspec.json"
    path.write_text(json.dumps(netspec(parse(set_batch(source.text, 2, source.path), source.path))))
    return path


@pytest.mark.parametrize("span", ["compute", "host"])
def test_figures_and_keys_as_the_pytorch_runner_gives_them(small, span, tmp_path):
    out, _ = run_runner(RUNNER, "--model", small[1].path, "--span", span, *QUICK)
    pytorch_out, _ = run_runner(PYTORCH_RUNNER, "--spec", spec_file(small[0], tmp_path), *QUICK)
    assert SHARED_KEYS <= set(out) and SHARED_KEYS <= set(pytorch_out)
    assert set(out["latency_ms"]) == set(pytorch_out["latency_ms"])
    assert set(out["memory"]) == set(pytorch_out["memory"]) and out["memory"]["process_rss_peak_bytes"] > 1e6
    assert {k: out["settings"][k] for k in ("iterations", "warmup", "min_iterations", "target_ci")} == \
        {k: pytorch_out["settings"][k] for k in ("iterations", "warmup", "min_iterations", "target_ci")}
    assert (out["span"], out["timer"], out["device"], out["batch"], out["iterations"]) == (span, "perf_counter",
                                                                                         "cpu", 2, 4)
    assert len(out["times_ms"]) == 4 and out["stop_reason"] == "forced" and out["first_inference_ms"] > 0
    assert 0 < out["latency_ms"]["min"] <= out["latency_ms"]["median"] <= out["latency_ms"]["max"]
    assert out["timed_window"]["start_s"] <= out["timed_window"]["end_s"]
    assert (out["providers_requested"], out["providers_used"], out["provider_fallback"]) == ([CPU], [CPU], False)
    assert out["inputs"] == [["data", "float32"]] and out["outputs"] == ["prob"]


def test_outputs_match_the_pytorch_runner_on_the_same_input(small, tmp_path):
    source, model = small
    # Both runners build their weights from seed 0 (the export through the PyTorch runner's own code).
    run_runner(PYTORCH_RUNNER, "--spec", spec_file(source, tmp_path), "--json", "--iterations", 0,
               "--save-input", tmp_path / "x.f32", "--dump-output", tmp_path / "torch.f32")
    run_runner(RUNNER, "--model", model.path, "--json", "--iterations", 0, "--input", tmp_path / "x.f32",
               "--dump-output", tmp_path / "ort.f32")
    ours = read_tensors((tmp_path / "ort.f32").read_bytes())
    theirs = read_tensors((tmp_path / "torch.f32").read_bytes())
    assert list(ours) == list(theirs) == ["prob"] and ours["prob"][0] == theirs["prob"][0] == [2, 6]
    assert relative_error(ours["prob"][1], theirs["prob"][1]) < 1e-5


def test_a_provider_that_silently_falls_back_is_reported(small):
    # This onnxruntime has no CUDA provider: ONNX Runtime warns and runs on the CPU.
    out, _ = run_runner(RUNNER, "--model", small[1].path, "--providers", f"{CUDA},{CPU}", *QUICK)
    assert out["providers_requested"] == [CUDA, CPU] and out["providers_used"] == [CPU]
    assert out["provider_fallback"] is True and out["device"] == "cpu"
    assert any(CUDA in warning for warning in out["session_warnings"])


def test_errors_are_json(small, tmp_path):
    (tmp_path / "bad.f32").write_bytes(b"not a tensor file\n")
    out, code = run_runner(RUNNER, "--model", small[1].path, "--json", "--input", tmp_path / "bad.f32", check=False)
    assert code == 1 and out["kind"] == "input" and "not an edgeprof tensor file" in out["error"]
    out, code = run_runner(RUNNER, "--json", check=False)
    assert code == 2 and out["kind"] == "usage" and "--model" in out["error"]
    out, code = run_runner(RUNNER, "--model", tmp_path / "missing.onnx", "--json", check=False)
    assert code == 1 and out["kind"] == "runtime" and "missing.onnx" in out["error"]


def test_text_summary_without_json(small):
    result = subprocess.run([sys.executable, str(RUNNER), "--model", small[1].path, "--iterations", "3",
                             "--warmup-s", "0"], capture_output=True, text=True, check=True)
    assert f"{Path(small[1].path).name} batch 2 on " in result.stdout
    assert "providers CPUExecutionProvider" in result.stdout and "3 iterations (forced)" in result.stdout


# --- Python 3.6 ----------------------------------------------------------------------------------------

needs_python36 = pytest.mark.skipif(not PYTHON36.exists(), reason=f"no Python 3.6 at {PYTHON36}")


@needs_python36
@pytest.mark.parametrize("name", sorted(runner_files()))
def test_compiles_under_python36(tmp_path, name):
    subprocess.run([str(PYTHON36), "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], "
                    "cfile=sys.argv[2], doraise=True)", str(RUNNER.parent / name), str(tmp_path / "r.pyc")],
                   check=True)


@needs_python36
def test_command_line_runs_under_python36(tmp_path):
    # No numpy or onnxruntime for 3.6 here: stubs let the module load, so its command line and the timing
    # core beside it run on a real 3.6 interpreter and standard library.
    (tmp_path / "numpy.py").write_text("float32 = float16 = None\n")
    (tmp_path / "onnxruntime.py").write_text("__version__ = 'stub'\n")
    script = (
        "import sys\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import onnxruntime_runner as r\n"
        "args = r.parse_args(['--model', 'm.onnx', '--providers', 'CUDAExecutionProvider,CPUExecutionProvider'])\n"
        "assert args.providers == ['CUDAExecutionProvider', 'CPUExecutionProvider'] and args.span == 'compute'\n"
        "assert r.timing.timing_settings(args)['min_iterations'] == 20\n"
        "r.parse_args(['--model', 'm.onnx', '--threads', '0'])\n"
    )
    result = subprocess.run([str(PYTHON36), "-c", script, str(tmp_path), str(RUNNER.parent)],
                            capture_output=True, text=True)
    # The last line is a usage error, which must come back as JSON with exit status 2.
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout) == {"error": "--threads must be at least 1", "kind": "usage"}


# --- host side -----------------------------------------------------------------------------------------

def test_providers_follow_the_processor():
    assert providers_for([CPU], "auto") == [CPU]
    assert providers_for([CUDA, CPU], "auto") == [CUDA, CPU]
    assert providers_for([CUDA, CPU], "cpu") == [CPU]
    assert providers_for(["TensorrtExecutionProvider", CUDA, CPU], "gpu") == [CUDA, CPU]
    assert providers_for(["AzureExecutionProvider", CPU], "gpu") is None


def test_board_command():
    facts = {"python": "/usr/bin/python3", "runner": "/tmp/edgeprof.x/onnxruntime_runner.py"}
    argv = runner_argv(facts, "/home/u/.cache/edgeprof/onnx/abc.onnx", [CUDA, CPU], Options(iterations=5, threads=2))
    assert argv == ["/usr/bin/python3", "/tmp/edgeprof.x/onnxruntime_runner.py", "--model",
                    "/home/u/.cache/edgeprof/onnx/abc.onnx", "--providers", f"{CUDA},{CPU}", "--span", "compute",
                    "--json", "--iterations", "5", "--threads", "2"]


def test_fallback_becomes_a_flag_and_a_figure(small):
    out, _ = run_runner(RUNNER, "--model", small[1].path, "--providers", f"{CUDA},{CPU}", *QUICK)
    result = Result(device="b", model="small", backend="onnxruntime", batch=2, run_id="r",
                    settings={"processor": "auto"}, state={"versions": {}})
    OnnxRuntimeBackend._fill(result, out, small[1], upload_s=0.5)
    [flag] = result.flags
    assert flag["code"] == "provider_fallback"
    assert flag["detail"].startswith(f"asked for {CUDA}, the session runs on {CPU}: Specified provider")
    assert result.figures["provider_fallback"] == flag["detail"]
    assert (result.figures["provider"], result.settings["processor"], result.span) == (CPU, "cpu", "compute")
    assert (result.figures["onnx_sha256"], result.figures["opset"], result.figures["upload"]) == \
        (small[1].sha256, 17, "uploaded")
    assert result.method["iterations_policy"] == "fixed (4)" and result.latency_ms["median"] > 0
    assert result.state["versions"]["onnxruntime"] == out["onnxruntime_version"]
