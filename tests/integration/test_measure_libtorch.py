"""`--backend libtorch` over real SSH: on sim-desktop (torch 2.13 CPU in a venv, the host's cmake and g++) the
C++ runner is built against the wheel's libtorch once and reused, and `compare --backend pytorch,libtorch`
sets it beside the Python runner (seed 004); sim-tx2 (Debian bullseye: torch 1.7 without its CMake config,
no cmake, g++ or make) refuses, naming what to install. sim-desktop and `local` share the host's filesystem, so
the build in root's cache is one per test session at most: the first test builds it where no earlier run
did."""
import json

from ..conftest import json_lines

# sim-desktop's login user is root: its cache is root's.
BUILD_DIR = "/root/.cache/edgeprof/libtorch-2.13.0+cpu-"


def test_compare_pytorch_with_libtorch_on_sim_desktop_and_reuse_the_build(edgeprof_cli):
    proc = edgeprof_cli("compare", "--device", "sim-desktop", "alexnet", "--backend", "pytorch,libtorch",
                        "--iterations", "15", "--wait", "600", "--format", "json", timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    comparison = json.loads(proc.stdout)
    assert [c["backend"] for c in comparison["columns"]] == ["pytorch (fp32, cpu)", "libtorch (cpu)"]
    python, cpp = comparison["rows"][0]["cells"]
    assert cpp["span"] == python["span"] == "compute" and cpp["samples"] == python["samples"] == 15
    assert cpp["ratio"]["value"] == cpp["latency_ms"] / python["latency_ms"] and cpp["ratio"]["ci"] is not None

    shown = json.loads(edgeprof_cli("results", "show", str(cpp["result_id"]), "--json", check=0).stdout)
    figures = shown["libtorch"]
    assert figures["runner_binary"].startswith(BUILD_DIR) and figures["runner_binary"].endswith("/libtorch_runner")
    # The trace is of the net the PyTorch backend runs, checked on a second input.
    assert figures["export_s"] > 0 and figures["trace_max_abs_diff"] < 1e-4
    assert figures["first_inference_ms"] > 0 and figures["load_s"] > 0 and 0 < figures["pipe_round_trip_ms"] < 5
    assert figures["memory"]["process_rss_peak_bytes"] > 200e6   # AlexNet's weights alone are 244 MB
    assert shown["settings"]["input_shape"] == [3, 227, 227] and shown["settings"]["processor"] == "cpu"
    assert shown["state"]["versions"]["libtorch"] == "2.13.0" and shown["method"]["timer"] == "steady_clock"
    commands = [c["command"] for c in shown["commands"]]
    assert " export --output " in commands[0] and " -- --spec " in commands[0]
    assert " time --binary " + figures["runner_binary"] in commands[1] and "--iterations 15" in commands[1]

    again = json_lines(edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "libtorch", "alexnet",
                                    "--iterations", "5", "--wait", "600", "--json", check=0, timeout=900).stdout)[0]
    assert again["status"] == "ok" and again["iterations"] == 5
    assert again["libtorch"]["build_cached"] is True and again["libtorch"]["build_s"] is None
    assert again["libtorch"]["runner_binary"] == figures["runner_binary"]
    # The first run built it unless an earlier one had.
    assert figures["build_cached"] is True or figures["build_s"] > 0


def test_sim_tx2_without_cmake_gpp_and_make_is_refused_with_how_to_install(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "libtorch", "alexnet", "--iterations", "3",
                        "--clocks", "leave", "--wait", "600", "--json", check=1)
    result = json_lines(proc.stdout)[0]
    assert result["status"] == "failed"
    assert result["error"].startswith("the libtorch backend builds its runner on sim-tx2 and needs cmake, g++ and "
                                      "make (to build the C++ runner), not on the PATH: sudo apt-get install cmake "
                                      "g++ make; torch 1.7")
    assert "TorchConfig.cmake" in result["error"] and "PyTorch for Jetson" in result["error"]
