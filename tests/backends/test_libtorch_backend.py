"""The LibTorch backend's host logic (edgeprof/backends/libtorch.py: where the build is cached, what a board
lacks, the argv of each step) and its board runner's Python half (edgeprof/onboard/libtorch_runner.py) driving
a stand-in for the C++ runner over the same pipe protocol, so the report it makes passes check_report and
Backend.fill without a compiler. The real build and measurement are tests/integration/test_measure_libtorch.py."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from edgeprof import backends, onboard
from edgeprof.backends import Options
from edgeprof.backends.base import check_report
from edgeprof.backends.libtorch import (LibTorchBackend, build_argv, build_dir, device_for, export_argv, missing,
                                        time_argv)
from edgeprof.onboard import bundle
from edgeprof.result import Result

from .board import board_folder

FACTS = {"python": "/usr/bin/python3", "runner": "/tmp/edgeprof.x/libtorch_runner.py", "torch": "2.13.0+cpu",
         "cmake": "/usr/bin/cmake", "cxx": "/usr/bin/g++", "make": "/usr/bin/make",
         "cmake_prefix_path": "/v env/torch/share/cmake",
         "torch_config": True, "build_dir": "/home/u/.cache/edgeprof/libtorch-2.13.0+cpu-0123456789abcdef",
         "binary": "/home/u/.cache/edgeprof/libtorch-2.13.0+cpu-0123456789abcdef/libtorch_runner"}


def test_the_build_is_cached_per_torch_version_sources_and_torch_location(monkeypatch):
    first = build_dir("/home/u/.cache", "2.13.0+cpu", "/venv/torch/share/cmake")
    assert first.startswith("/home/u/.cache/edgeprof/libtorch-2.13.0+cpu-") and len(first.rsplit("-", 1)[1]) == 16
    assert build_dir("/home/u/.cache", "2.13.0+cpu", "/venv/torch/share/cmake") == first
    assert build_dir("/home/u/.cache", "2.12.0+cpu", "/venv/torch/share/cmake") != first
    assert build_dir("/home/u/.cache", "2.13.0+cpu", "/other/torch/share/cmake") != first
    # A version string is a file name here: nothing but its own characters survive.
    assert "/libtorch-1.10_0a0_x-" in build_dir("/c", "1.10 0a0/x", "/p")
    changed = onboard.source("libtorch_runner.cpp") + "\n// changed\n"
    monkeypatch.setattr(onboard, "source", lambda name: changed if name == "libtorch_runner.cpp" else "")
    assert build_dir("/home/u/.cache", "2.13.0+cpu", "/venv/torch/share/cmake") != first


def test_what_a_board_lacks_is_named_with_how_to_install_it():
    assert missing(FACTS, "desktop") is None
    said = missing({**FACTS, "cmake": None, "cxx": None, "make": None}, "desktop")
    assert said == ("cmake, g++ and make (to build the C++ runner), not on the PATH: sudo apt-get install cmake g++ "
                    "make")
    assert missing({**FACTS, "cmake": None, "make": None}, "desktop").startswith("cmake and make (to build")
    said = missing({**FACTS, "cxx": None, "torch_config": False}, "jetson")
    assert said.startswith("g++ (to build the C++ runner), not on the PATH: sudo apt-get install g++; torch "
                           "2.13.0+cpu's CMake config (TorchConfig.cmake under torch.utils.cmake_prefix_path = "
                           "/v env/torch/share/cmake)")
    assert "PyTorch for Jetson" in said


def test_each_step_is_one_argv_without_a_shell():
    assert build_argv(FACTS, "/tmp/edgeprof.x") == [
        "/usr/bin/python3", FACTS["runner"], "build", "--source", "/tmp/edgeprof.x", "--build-dir", FACTS["build_dir"],
        "--prefix", "/v env/torch/share/cmake", "--cmake", "/usr/bin/cmake", "--cxx", "/usr/bin/g++"]
    assert export_argv(FACTS, "/w/a b-b1.libtorch.pt", ["--spec", "/w/a b-b1.netspec.json"], 4) == [
        "/usr/bin/python3", FACTS["runner"], "export", "--output", "/w/a b-b1.libtorch.pt", "--", "--spec",
        "/w/a b-b1.netspec.json", "--batch", "4"]
    assert time_argv(FACTS, "/w/m.pt", "cpu", 2, [3, 227, 227], Options()) == [
        "/usr/bin/python3", FACTS["runner"], "time", "--binary", FACTS["binary"], "--model", "/w/m.pt", "--device",
        "cpu", "--batch", "2", "--input-shape", "3,227,227", "--span", "compute", "--json"]
    assert time_argv(FACTS, "/w/m.pt", "cuda", 1, [3, 224, 224], Options(iterations=7, threads=2, span="host"))[-7:] \
        == ["--span", "host", "--json", "--threads", "2", "--iterations", "7"]


def test_device_follows_the_processor_and_what_torch_sees():
    assert [device_for({"cuda_available": False}, p) for p in ("auto", "cpu", "gpu")] == ["cpu", "cpu", None]
    assert [device_for({"cuda_available": True}, p) for p in ("auto", "cpu", "gpu")] == ["cuda", "cpu", "cuda"]


def test_refuses_the_variants_it_does_not_run():
    backend = backends.get("libtorch")
    assert backend.refusal(Options()) is None and backend.refusal(Options(span="host")) is None
    assert backend.refusal(Options(cuda_graph=True, mode="train-step")).startswith(
        "--mode train-step, --cuda-graph: the LibTorch runner times plain fp32 inference")
    assert backend.refusal(Options(per_layer=True)) == ("--per-layer: the LibTorch runner times plain fp32 inference "
                                                        "of the whole TorchScript trace; --backend pytorch has these")
    assert backend.refusal(Options(precision="fp16")) == "--precision fp16: LibTorch (C++) runs fp32 only"


def _run(*argv, env=None):
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, env=env)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


# A stand-in for the C++ runner: its start line, then one answer per command (libtorch_runner.cpp's protocol).
STAND_IN = textwrap.dedent('''\
    import json, sys
    print(json.dumps({"load_s": 0.5, "libtorch_version": "2.13.0", "device_name": None, "threads": 3,
                      "grad_mode": "inference_mode"}), flush=True)
    steps = 0
    for command in sys.stdin:
        command = command.strip()
        if command == "step":
            steps += 1
            if steps == int(sys.argv[sys.argv.index("--batch") + 1]) * 100:
                print(json.dumps({"error": "CUDA out of memory. Tried to allocate 2.00 GiB", "kind": "runtime"}))
                sys.exit(1)
            reply = 2.0 + steps % 3
        elif command == "memory":
            reply = {"rss_bytes": 10, "rss_peak_bytes": 20, "allocator_bytes": None, "allocator_peak_bytes": None,
                     "allocator_reserved_bytes": None}
        else:
            reply = 0
        print(json.dumps(reply), flush=True)
''')


@pytest.fixture
def stand_in(tmp_path):
    path = tmp_path / "libtorch_runner"
    path.write_text("#!" + sys.executable + "\n" + STAND_IN)
    path.chmod(0o700)
    return path


def test_the_driver_times_the_cpp_runner_with_timing_py_and_reports_what_fill_takes(stand_in):
    runner = board_folder(bundle()) / "libtorch_runner.py"
    status, report, _ = _run(runner, "time", "--binary", stand_in, "--model", "net.pt", "--batch", "1",
                             "--iterations", "9", "--warmup-s", "0", "--json")
    assert status == 0
    check_report(report, "the LibTorch runner")
    # The stand-in's answers to steps 5 to 13: step 1 is the first inference, 2 to 4 the warm-up.
    assert report["times_ms"] == [2.0 + step % 3 for step in range(5, 14)] and report["warmup_iterations"] == 3
    assert report["first_inference_ms"] == 3.0 and report["first_inference_timer"] == "steady_clock"
    assert report["memory"]["process_rss_peak_bytes"] == 20 and report["memory_stages"]["loaded"]["rss_bytes"] == 10
    assert report["pipe_round_trip_ms"] > 0 and report["settings"]["grad_mode"] == "inference_mode"
    result = LibTorchBackend.fill(Result(device="b", model="m", backend="libtorch", batch=1, run_id="r"), report)
    assert result.latency_ms["median"] == 3.0 and result.settings["processor"] == "cpu"
    assert result.state["versions"]["libtorch"] == "2.13.0" and result.figures["pipe_round_trip_ms"] > 0
    assert result.method["timer"] == "steady_clock" and result.method["iterations_policy"] == "fixed (9)"


def test_an_error_of_the_cpp_runner_is_the_drivers_with_its_kind(stand_in):
    runner = board_folder(bundle()) / "libtorch_runner.py"
    status, report, _ = _run(runner, "time", "--binary", stand_in, "--model", "net.pt", "--batch", "1",
                             "--iterations", "200", "--warmup-s", "0", "--json")
    assert (status, report["kind"]) == (1, "oom") and report["error"].startswith("CUDA out of memory")
    stand_in.write_text("#!/bin/sh\nexit 5\n")
    status, report, _ = _run(runner, "time", "--binary", stand_in, "--model", "net.pt", "--json")
    assert (status, report["kind"]) == (1, "runtime")
    assert report["error"] == ("the LibTorch runner exited with status 5 without answering its start (its output "
                               "is above)")


def test_the_build_folder_must_be_writable_by_its_user_only(tmp_path):
    home = tmp_path / "home"
    (home / ".cache").mkdir(parents=True)
    home.chmod(0o700)
    runner = board_folder(bundle()) / "libtorch_runner.py"
    env = {**os.environ, "HOME": str(home)}
    argv = [runner, "build", "--source", tmp_path, "--build-dir", home / ".cache/edgeprof/libtorch-x-1",
            "--prefix", tmp_path, "--cmake", "false", "--cxx", "false"]
    status, report, _ = _run(*argv, env=env)
    # The folder is made private and accepted; cmake (here `false`) is what fails.
    assert (status, report["kind"]) == (1, "build") and report["error"].startswith("cmake (configure) failed")
    assert (home / ".cache/edgeprof").stat().st_mode & 0o777 == 0o700
    (home / ".cache").chmod(0o777)
    status, report, _ = _run(*argv, env=env)
    assert (status, report["kind"]) == (1, "unavailable")
    assert report["error"].startswith(f"{home / '.cache'} is owned by uid {os.getuid()} with mode 777: another user")
