"""The TensorRT backend's Python-API path (edgeprof/onboard/tensorrt_runner.py and the host's choice
of it), for boards without trtexec.

The real TensorRT cannot be installed here (no NVIDIA GPU), so `tensorrt` and cuda-python's `cuda.cudart`
are stand-ins (tests/backends/trt_standin/, its README says what they are), put on PYTHONPATH of the runner's
process ONLY in these tests. They keep the 8.x/10.x API differences and log the calls that matter, so these
tests check which API the runner picks and what it asks for, not TensorRT's behaviour: the path has never
run against real TensorRT. The runner runs as the board runs it, from a folder with the rest of the bundle.
"""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from edgeprof.backends import Options
from edgeprof.onboard import bundle
from edgeprof.onboard import timing as board_timing
from edgeprof.backends.tensorrt import runner as trt_runner
from edgeprof.backends.tensorrt.commands import OnnxModel
from edgeprof.devices import get_device
from edgeprof.models import resolve
from edgeprof.session import Board
from edgeprof.transport.local import LocalTransport

from .board import board_folder

STANDIN = Path(__file__).parent / "trt_standin"
RUNNER = board_folder(bundle()) / trt_runner.RUNNER_FILE
PYTHON36 = Path("/root/.pyenv/versions/3.6.15/bin/python")
QUICK = ("--json", "--iterations", 5, "--warmup", 1, "--warmup-s", 0)
# The ONNX Runtime runner's keys (tests/backends/test_onnxruntime_runner.py's SHARED_KEYS, which the PyTorch
# runner gives too) plus its "inputs"; its other keys name ONNX Runtime things (providers, session warnings).
ORT_KEYS = {"load_s", "first_inference_ms", "first_inference_timer", "latency_ms", "ci95_ms", "ci_rel",
            "iterations", "times_ms", "warmup_iterations", "stop_reason", "timed_window", "throughput_ips",
            "memory", "python_version", "device", "device_name", "threads", "span", "timer", "net", "batch",
            "outputs", "settings", "inputs", "memory_stages"}
ORT_MEMORY_KEYS = {"allocator_peak_bytes", "allocator_reserved_bytes", "process_rss_peak_bytes",
                   "nvml_process_bytes", "nvml_device_used_bytes"}
MODEL = {"inputs": [["data", [2, 3, 8, 8]]], "outputs": [["prob", [2, 6]]]}


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "small.onnx"  # the stand-in parser reads JSON
    path.write_text(json.dumps(MODEL))
    return path


def standin_env(tmp_path, version="8.2.1", cuda=True):
    """The environment that puts the stand-ins (tensorrt, and cuda unless `cuda` is False) first on the path."""
    folder = tmp_path / "path"
    folder.mkdir(exist_ok=True)
    (folder / "tensorrt.py").write_text((STANDIN / "tensorrt.py").read_text())
    if cuda:
        (folder / "cuda").mkdir(exist_ok=True)
        for name in ("__init__.py", "cudart.py"):
            (folder / "cuda" / name).write_text((STANDIN / "cuda" / name).read_text())
    return {"PYTHONPATH": str(folder), "TRT_STANDIN_VERSION": version, "TRT_STANDIN_LOG": str(tmp_path / "calls")}


def run_runner(env, *args, python=sys.executable, check=True):
    done = subprocess.run([str(python), str(RUNNER), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **env})
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout + done.stderr  # one JSON object and nothing else on stdout
    return json.loads(lines[0]), done.returncode


def calls(env):
    path = Path(env["TRT_STANDIN_LOG"])
    found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return found


def named(found, call):
    return [c for c in found if c["call"] == call]


@pytest.mark.parametrize("version, network_flags, workspace, execute", [
    ("8.2.1", 1, "max_workspace_size", "execute_async_v2"),       # before 8.4: no memory pools
    ("8.6.1", 1, "set_memory_pool_limit", "execute_async_v2"),    # has the I/O tensor API too: bindings used
    ("10.3.0", 0, "set_memory_pool_limit", "execute_async_v3"),   # explicit batch only, no bindings
])
def test_the_api_each_version_has(tmp_path, model, version, network_flags, workspace, execute):
    env = standin_env(tmp_path, version)
    out, _ = run_runner(env, "--onnx", model, "--engine", tmp_path / "e.engine", "--workspace-mib", 64, *QUICK)
    found = calls(env)
    assert named(found, "create_network") == [{"call": "create_network", "flags": network_flags}]
    assert [c.get("bytes") for c in named(found, workspace)] == [64 << 20]
    assert len(named(found, execute)) == 1 + 1 + 5  # first inference, one warm-up, five timed
    assert out["trt_version"] == version and out["iterations"] == 5 and out["batch"] == 2


@pytest.mark.parametrize("precision, flags", [("fp32", []), ("fp16", ["FP16"]), ("int8", ["INT8"]),
                                              ("best", ["FP16", "INT8"])])
def test_precision_flags(tmp_path, model, precision, flags):
    env = standin_env(tmp_path, "10.3.0")
    out, _ = run_runner(env, "--onnx", model, "--engine", tmp_path / "e.engine", "--precision", precision, *QUICK)
    found = calls(env)
    assert named(found, "build") == [{"call": "build", "flags": flags}]
    ranges = {(c["tensor"], c["high"]) for c in named(found, "set_dynamic_range")}
    # int8 without a calibrator: trtexec's placeholder ranges, inputs +-2 and layer outputs +-4.
    assert ranges == ({("data", 2.0), ("prob", 4.0)} if "INT8" in flags else set())
    assert out["precision"] == out["settings"]["precision"] == precision


def test_a_cached_engine_is_loaded_not_built(tmp_path, model):
    env = standin_env(tmp_path)
    engine = tmp_path / "cache" / "k.engine"
    engine.parent.mkdir()
    first, _ = run_runner(env, "--onnx", model, "--engine", engine, *QUICK)
    assert first["engine_cached"] is False and first["build_s"] > 0 and engine.exists()
    assert [p.name for p in engine.parent.iterdir()] == ["k.engine"]  # no partial file left behind
    assert named(calls(env), "build")
    second, _ = run_runner(env, "--onnx", tmp_path / "gone.onnx", "--engine", engine, *QUICK)
    assert second["engine_cached"] is True and second["build_s"] is None and second["engine_path"] == str(engine)
    assert not named(calls(env), "build")


@pytest.mark.parametrize("span", ["compute", "host"])
def test_keys_as_the_onnxruntime_runner_gives_them(tmp_path, model, span):
    env = standin_env(tmp_path, "10.3.0")
    out, _ = run_runner(env, "--onnx", model, "--engine", tmp_path / "e.engine", "--span", span, *QUICK)
    assert ORT_KEYS <= set(out) and set(out["memory"]) == ORT_MEMORY_KEYS
    assert set(out["memory_stages"]) == {"loaded", "first_inference"} and out["memory_stages"]["loaded"]["rss_bytes"]
    assert set(out["latency_ms"]) == set(board_timing.summarize([1.0, 2.0])["latency_ms"])
    assert {"trt_version", "build_s", "engine_cached", "cuda_bindings"} <= set(out)
    assert (out["span"], out["timer"], out["device"], out["cuda_bindings"]) == (span, "cuda_event", "cuda",
                                                                              "cuda-python")
    assert len(out["times_ms"]) == 5 and out["stop_reason"] == "forced"
    assert 0 < out["latency_ms"]["min"] <= out["latency_ms"]["median"] <= out["latency_ms"]["max"]
    assert out["inputs"] == [["data", "DataType.FLOAT"]] and out["outputs"] == ["prob"]


def test_unavailable_without_cuda_bindings(tmp_path, model):
    env = standin_env(tmp_path, cuda=False)
    out, code = run_runner(env, "--onnx", model, "--engine", tmp_path / "e.engine", *QUICK, check=False)
    assert code == 1 and out["kind"] == "unavailable"
    assert all(name in out["error"] for name in ("cuda-python", "pycuda", "torch"))
    assert not (tmp_path / "e.engine").exists()


def test_errors_are_json(tmp_path, model):
    env = standin_env(tmp_path, "11.0.0")
    out, code = run_runner(env, "--onnx", model, "--engine", tmp_path / "e.engine", *QUICK, check=False)
    assert code == 1 and out["kind"] == "unsupported" and "8.x and 10.x" in out["error"]
    env = standin_env(tmp_path)
    (tmp_path / "bad.onnx").write_text("not a model")
    out, code = run_runner(env, "--onnx", tmp_path / "bad.onnx", "--engine", tmp_path / "e.engine", *QUICK,
                           check=False)
    assert code == 1 and out["kind"] == "build" and "not a stand-in model" in out["error"]
    out, code = run_runner(env, "--json", check=False)
    assert code == 2 and out["kind"] == "usage"


@pytest.mark.parametrize("version, builds", [("8.2.1", False), ("8.5.2", False), ("8.6.1", True), ("10.3.0", True)])
def test_an_operator_the_versions_parser_lacks_is_a_build_error_with_its_words(tmp_path, version, builds):
    """LayerNormalization before 8.6 (onnx-tensorrt operators.md): the runner reports the parser's own error."""
    path = tmp_path / "ln.onnx"
    path.write_text(json.dumps(dict(MODEL, ops=[["/conv/Conv", "Conv"], ["/norm/LayerNormalization",
                                                                       "LayerNormalization"]])))
    env = standin_env(tmp_path, version)
    out, code = run_runner(env, "--onnx", path, "--engine", tmp_path / "e.engine", *QUICK, check=False)
    if builds:
        assert code == 0 and out["engine_cached"] is False
        return
    assert code == 1 and out["kind"] == "build"
    assert out["error"] == (f"the ONNX parser refused {path}: In node 1 (importFallbackPluginImporter): "
                            'UNSUPPORTED_NODE: Assertion failed: creator && "Plugin not found, are the plugin name, '
                            'version, and namespace correct?"')
    assert not (tmp_path / "e.engine").exists()


# --- Python 3.6 ----------------------------------------------------------------------------------------

needs_python36 = pytest.mark.skipif(not PYTHON36.exists(), reason=f"no Python 3.6 at {PYTHON36}")


@needs_python36
@pytest.mark.parametrize("name", sorted(bundle()))
def test_compiles_under_python36(tmp_path, name):
    subprocess.run([str(PYTHON36), "-m", "py_compile", str(RUNNER.parent / name)], check=True)


@needs_python36
def test_runs_under_python36(tmp_path, model):
    # The stand-ins are 3.6 code too: the whole runner and timing core run on a real 3.6 interpreter.
    out, _ = run_runner(standin_env(tmp_path, "10.3.0"), "--onnx", model, "--engine", tmp_path / "e.engine",
                        *QUICK, python=PYTHON36)
    assert out["python_version"].startswith("3.6.") and out["iterations"] == 5


# --- host side -----------------------------------------------------------------------------------------

@pytest.fixture
def board(tmp_path, monkeypatch):
    """The local device as a board whose profile names no trtexec that exists, and whose Python (this one)
    imports the stand-ins from PYTHONPATH."""
    for name, value in standin_env(tmp_path, "10.3.0").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    local = get_device("local")
    device = replace(local, profile=replace(local.profile, trtexec=("edgeprof-test-no-trtexec",)))
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Board(device=device, transport=LocalTransport(), run_id="test", workdir=str(workdir))


def test_prepare_takes_the_python_api_without_trtexec(board):
    facts = trt_runner.TensorRTBackend().prepare(board)
    assert (facts["tool"], facts["version"], facts["version_source"]) == ("python-api", "10.3.0", "python module")
    assert facts["cuda_bindings"] == "cuda-python" and facts["python"] == sys.executable
    assert Path(facts["runner"]).exists() and (Path(board.workdir) / "timing.py").exists()
    assert facts["cache_dir"].startswith(os.environ["XDG_CACHE_HOME"])


def test_measure_on_the_python_api(board, model, monkeypatch):
    backend = trt_runner.TensorRTBackend()
    board.backend_facts["tensorrt"] = backend.prepare(board)
    # The ONNX export replaced by the stand-in's model file (its parser reads JSON, not ONNX).
    remote = f"{board.workdir}/small.onnx"
    uploads = []
    monkeypatch.setattr(trt_runner.TensorRTBackend, "_model", lambda self, *args: trt_runner._Model(
        OnnxModel(remote), "0" * 64, lambda: uploads.append(board.put_text(remote, model.read_text())),
        {"kind": "onnx", "opset": 20, "ir_version": 10}))
    source = resolve("alexnet")
    options = Options(iterations=5, precision="fp16")
    first = backend.measure(board, source, 2, options)
    assert first.error is None, first.error
    assert first.settings["tensorrt_tool"] == "python-api" and first.settings["precision"] == "fp16"
    assert first.figures["engine_cached"] is False and first.figures["build_s"] > 0 and len(uploads) == 1
    assert first.iterations == 5 and first.latency_ms["median"] > 0 and first.state["versions"]["tensorrt"] == "10.3.0"
    # The build facts lie beside the engine, where the trtexec path looks for them.
    built = json.loads(Path(first.figures["engine_path"][:-len(".engine")] + ".json").read_text())
    assert built["tool"] == "python-api" and built["build_s"] == first.figures["build_s"]
    second = backend.measure(board, source, 2, options)
    assert second.figures["engine_cached"] is True and second.figures["engine_build"] == built and len(uploads) == 1
    prototxt = backend.measure(board, source, 2, replace(options, tensorrt_source="prototxt"))
    assert "--trt-from prototxt needs trtexec" in prototxt.error
