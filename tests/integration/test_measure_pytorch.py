"""`edgeprof measure --backend pytorch` over real SSH: sim-desktop (Python 3.11, torch 2.13 in a venv) and
sim-tx2 (Debian's Python 3.9 and torch 1.7, an old torch as JetPack 4.6 boards carry); and `edgeprof check`
against real pycaffe on sim-tx2."""
import json

import pytest

from edgeprof.devices import connect, get_device

from ..conftest import board_entry, json_lines, write_inventory

LATENCY = {"median", "mean", "p90", "p95", "p99", "min", "max", "stdev", "iqr"}


def test_sim_desktop_batch_sweep_reports_every_figure_with_its_span(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--batch", "1,2",
                        "--iterations", "15", "--json", check=0)
    results = json_lines(proc.stdout)
    assert [(r["model"], r["batch"], r["status"]) for r in results] == [("alexnet", 1, "ok"), ("alexnet", 2, "ok")]
    for r in results:
        assert r["span"] == "compute" and r["iterations"] == 15
        latency = r["latency_ms"]
        assert set(latency) == LATENCY
        assert 0 < latency["min"] <= latency["median"] <= latency["max"]
        # 15 iterations bound the median, not the tail: p90 and p99 are null with what they would need.
        assert latency["p90"] is None and latency["p99"] is None
        assert r["latency_unbounded"]["p99"]["iterations_needed"] == 368
        assert r["latency_ci95_ms"]["median"][0] <= latency["median"] <= r["latency_ci95_ms"]["median"][1]
        figures = r["pytorch"]
        assert figures["load_s"] > 0 and figures["first_inference_ms"] > 0
        assert figures["memory"]["process_rss_peak_bytes"] > 50e6  # AlexNet's weights alone are 244 MB
        assert r["settings"]["processor"] == "cpu" and r["settings"]["precision"] == "fp32"
        assert r["state"]["versions"]["torch"].startswith("2.13.0")
        assert r["method"]["timer"] == "perf_counter" and r["method"]["iterations_policy"] == "fixed (15)"
        window = r["timed_window"]
        assert 0 < window["end_s"] - window["start_s"] < r["wall_s"]
        # Throughput comes from the timed window's wall time, not from the latency.
        assert r["throughput_ips"] == pytest.approx(r["batch"] * 15 / (window["end_s"] - window["start_s"]),
                                                    rel=0.05)
        full = json.loads(edgeprof_cli("results", "show", r["id"], "--json", check=0).stdout)
        command = full["commands"][-1]["command"]
        assert "/torch_runner.py --spec /tmp/edgeprof." in command and f"--batch {r['batch']}" in command
        assert f"dim: {r['batch']} dim: 3 dim: 227 dim: 227" in full["prototxt_diff"]


def test_adaptive_stopping_reports_its_confidence_interval(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--json", check=0)
    r = json_lines(proc.stdout)[0]
    figures = r["pytorch"]
    assert r["iterations"] >= 20 and figures["stop_reason"] in ("converged", "time_cap")
    low, high = figures["ci95_ms"]
    assert low <= r["latency_ms"]["median"] <= high
    if figures["stop_reason"] == "converged":
        assert figures["ci_rel"] <= 0.01
    assert r["method"]["iterations_policy"].startswith("adaptive")


def test_old_torch_on_sim_tx2_runs_the_same_build(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "pytorch,caffe", "googlenet",
                        "--iterations", "3", "--clocks", "leave", "--json", check=0)
    pytorch, caffe = json_lines(proc.stdout)
    assert pytorch["status"] == caffe["status"] == "ok"
    assert pytorch["state"]["versions"]["torch"].startswith("1.7")
    assert pytorch["settings"]["grad_mode"] == "no_grad"  # torch 1.7 has no inference_mode
    assert pytorch["span"] == "compute" and caffe["span"] == "caffe_forward"


def test_torchscript_file_is_uploaded_and_timed(edgeprof_cli, tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                                  torch.nn.AdaptiveAvgPool2d(1)))
    module.save(str(tmp_path / "tiny.pt"))
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", tmp_path / "tiny.pt",
                        "--iterations", "5", "--json", check=0)
    r = json_lines(proc.stdout)[0]
    assert (r["model"], r["status"], r["model_info"]["kind"]) == ("tiny", "ok", "torchscript")


def test_torchscript_model_with_caffe_is_refused_before_connecting(edgeprof_cli, tmp_path):
    (tmp_path / "net.pt").write_bytes(b"not used")
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "caffe", tmp_path / "net.pt", check=2)
    assert "net is a torchscript model, which caffe cannot run; use --backend " in proc.stderr
    assert "pytorch" in proc.stderr.rsplit("--backend ", 1)[1].strip().split(",")
    assert "connecting" not in proc.stderr


def test_missing_torchvision_on_the_board_says_how_to_install(edgeprof_cli):
    # sim-tx2 has Debian's torch 1.7 and no torchvision (sim-desktop has both).
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "pytorch", "torchvision:resnet18",
                        "--iterations", "2", "--clocks", "leave", "--json", check=1)
    r = json_lines(proc.stdout)[0]
    assert r["status"] == "failed" and "torchvision" in r["error"] and "install" in r["error"]


@pytest.fixture
def python_without_torch(lab_inventory):
    """A Python on sim-desktop that cannot import torch: a bare venv (the system Python has Debian's torch)."""
    board = connect(get_device("sim-desktop", lab_inventory))
    path = "/tmp/edgeprof-test-no-torch"
    try:
        assert board.run(["python3", "-m", "venv", "--without-pip", path]).ok
        yield f"{path}/bin/python3"
        board.run(["rm", "-rf", "--", path])
    finally:
        board.close()


def test_board_without_python_or_torch_says_what_to_install(edgeprof_cli, lab_inventory, tmp_path,
                                                            python_without_torch):
    no_python = dict(board_entry(lab_inventory, "sim-desktop"), python="/opt/nowhere/python3")
    no_torch = dict(board_entry(lab_inventory, "sim-desktop"), python=python_without_torch)
    inventory = write_inventory(tmp_path / "inv.toml", **{"no-python": no_python, "no-torch": no_torch})
    for device, expected in (("no-python", "/opt/nowhere/python3 not found on no-python"),
                             ("no-torch", f"torch not importable by {python_without_torch} on no-torch")):
        proc = edgeprof_cli("measure", "--device", device, "--backend", "pytorch", "alexnet", "--json",
                            inventory=inventory, check=1)
        r = json_lines(proc.stdout)[0]
        assert r["status"] == "failed" and r["error"].startswith(expected), r["error"]
        assert "pip install torch" in r["error"] or "inventory" in r["error"]


def test_gpu_asked_for_on_a_board_without_one_fails_clearly(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--processor",
                        "gpu", "--json", check=1)
    assert "sees no CUDA device" in json_lines(proc.stdout)[0]["error"]


@pytest.mark.parametrize("model", ["alexnet", "googlenet", "vgg16", "resnet50"])
def test_check_pycaffe_and_the_pytorch_build_agree(edgeprof_cli, model):
    proc = edgeprof_cli("check", model, "--device", "sim-tx2", "--json", check=0)
    report = json.loads(proc.stdout)
    print(f"\n{model}: {report['relative_errors']}")
    assert report["passed"] and report["max_relative_error"] < 1e-4
    assert "prob" in report["relative_errors"] and len(report["relative_errors"]) == 2  # + the last InnerProduct
    assert report["versions"]["torch"].startswith("1.7")
