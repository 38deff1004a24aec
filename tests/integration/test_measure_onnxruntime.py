"""`edgeprof measure --backend onnxruntime` over real SSH and on `local`: the PyTorch build exported to ONNX on
the host, uploaded once into the board's cache, timed by ONNX Runtime next to the PyTorch backend; sim-tx2
(Debian's Python 3.9, no onnxruntime) says how to install it; and the must-show: ONNX Runtime's outputs
match the PyTorch build's to 1e-4 for the four catalog backbones, with identical weights and input.

Each edgeprof_cli run has its own HOME, so its host cache starts empty; sim-desktop shares the host's /root,
so its board cache (/root/.cache/edgeprof/onnx) outlives the tests. Other engineers use the same boards:
--wait queues behind their runs."""
import json
import os
import tomllib
from pathlib import Path

import pytest

from edgeprof.check import check_onnxruntime
from edgeprof.devices import connect, get_device
from edgeprof.models.onnx_export import exporter_max_opset
from edgeprof.models.onnx_versions import ONNXRUNTIME, reader

from ..conftest import json_lines

pytest.importorskip("torch")
pytest.importorskip("onnx")

MODELS = ["alexnet", "googlenet", "vgg16", "resnet50"]


def measure(edgeprof_cli, *args, check=None) -> list[dict]:
    """`edgeprof measure ARGS --iterations 3 --json`, queued behind other runs on the board, with the host's
    export cache in this test's HOME whatever XDG_CACHE_HOME says outside."""
    proc = edgeprof_cli("measure", *args, "--iterations", "3", "--wait", "600", "--json", timeout=1200, check=check,
                        env={"XDG_CACHE_HOME": str(edgeprof_cli.home / ".cache")})
    return json_lines(proc.stdout)


def test_sim_desktop_onnxruntime_and_pytorch_in_one_table(edgeprof_cli):
    results = measure(edgeprof_cli, "--device", "sim-desktop", "--backend", "onnxruntime,pytorch", *MODELS, check=0)
    assert [(r["backend"], r["model"], r["status"]) for r in results] == \
        [("onnxruntime", m, "ok") for m in MODELS] + [("pytorch", m, "ok") for m in MODELS]
    for r in results:
        assert r["span"] == "compute" and r["iterations"] == 3 and r["settings"]["processor"] == "cpu"
        figures = r[r["backend"]]
        assert figures["load_s"] > 0 and figures["first_inference_ms"] > 0 and len(figures["times_ms"]) == 3
        assert 0 < r["latency_ms"]["min"] <= r["latency_ms"]["mean"] <= r["latency_ms"]["max"]
        # Three iterations cannot bound a median (6 can): null, with the reason, never a guess.
        assert r["latency_ms"]["median"] is None and r["latency_unbounded"]["median"]["iterations_needed"] == 6
        assert r["method"]["iterations_policy"] == "fixed (3)" and r["method"]["timer"] == "perf_counter"
    for r, same_model in zip(results[:4], results[4:]):
        figures, onnx = r["onnxruntime"], r["model_info"]["onnx"]
        assert figures["provider"] == "CPUExecutionProvider" and figures["providers_used"] == ["CPUExecutionProvider"]
        assert figures["onnx_sha256"] == onnx["sha256"] and figures["opset"] == onnx["opset"]
        # The board's onnxruntime picks the file (edgeprof/models/onnx_versions.py): within what it reads.
        board_reads = reader(ONNXRUNTIME, r["state"]["versions"]["onnxruntime"])
        assert onnx["opset"] == min(board_reads.opset, exporter_max_opset())
        assert onnx["ir_version"] <= board_reads.ir_version and figures["ir_version"] == onnx["ir_version"]
        assert onnx["opset_chosen"].startswith(f"the board's ONNX Runtime {board_reads.version} reads opset")
        assert figures["export_cached"] is False and figures["export_s"] > 0  # this HOME's cache was empty
        assert "provider_fallback" not in {f["code"] for f in r["flags"]} and figures["variant"] == "fp32"
        assert r["state"]["versions"]["onnxruntime"] and r["state"]["versions"]["numpy"]
        full = json.loads(edgeprof_cli("results", "show", r["id"], "--json", check=0).stdout)
        command = full["commands"][-1]["command"]
        assert f"/onnxruntime_runner.py --model /root/.cache/edgeprof/onnx/{onnx['sha256']}.onnx" in command
        # The prototxt rewritten to the batch, as the PyTorch backend stores it.
        pytorch_full = json.loads(edgeprof_cli("results", "show", same_model["id"], "--json", check=0).stdout)
        assert full["prototxt_diff"] == pytorch_full["prototxt_diff"]
    # The terminal table lists both backends' figures side by side.
    table = edgeprof_cli("results", "list", check=0).stdout
    for backend in ("onnxruntime (fp32, cpu)", "pytorch (fp32, cpu)"):
        assert table.count(backend) == 4, table
    print("\n" + table)


def test_a_model_is_uploaded_once_per_board(edgeprof_cli, lab_inventory):
    args = ("--device", "sim-desktop", "--backend", "onnxruntime", "googlenet", "--batch", "2")
    first = measure(edgeprof_cli, *args, check=0)[0]
    sha = first["model_info"]["onnx"]["sha256"]
    # Take it out of the board's cache (another run may have left it there), then measure twice.
    board = connect(get_device("sim-desktop", lab_inventory))
    try:
        assert board.run(["rm", "-f", "--", f"/root/.cache/edgeprof/onnx/{sha}.onnx"]).ok
    finally:
        board.close()
    runs = [measure(edgeprof_cli, *args, check=0)[0] for _ in range(2)]
    assert [r["onnxruntime"]["upload"] for r in runs] == ["uploaded", "skipped: already in the board's cache"]
    assert runs[0]["onnxruntime"]["upload_s"] > 0 and runs[1]["onnxruntime"]["upload_s"] is None
    # The host exported once, on the first measure: the later ones found it in its cache.
    assert [r["onnxruntime"]["export_cached"] for r in [first, *runs]] == [False, True, True]
    assert {r["model_info"]["onnx"]["sha256"] for r in runs} == {sha}


def test_fp16_and_the_precisions_onnx_lacks(edgeprof_cli):
    fp16, bf16 = (measure(edgeprof_cli, "--device", "sim-desktop", "--backend", "onnxruntime", "googlenet",
                          "--precision", precision)[0] for precision in ("fp16", "bf16"))
    assert fp16["status"] == "ok" and fp16["onnxruntime"]["variant"] == "fp16"
    assert fp16["model_info"]["onnx"]["precision"] == "fp16"
    assert bf16["status"] == "failed" and "precision 'bf16' is not one of fp32, fp16" in bf16["error"]


def test_gpu_without_a_cuda_provider_fails_clearly(edgeprof_cli):
    error = measure(edgeprof_cli, "--device", "sim-desktop", "--backend", "onnxruntime", "alexnet", "--processor",
                    "gpu", check=1)[0]["error"]
    assert "has no CUDAExecutionProvider" in error and "install onnxruntime-gpu" in error


def test_sim_tx2_without_onnxruntime_says_how_to_install(edgeprof_cli):
    onnxruntime, pytorch = measure(edgeprof_cli, "--device", "sim-tx2", "--backend", "onnxruntime,pytorch", "alexnet",
                                   "--clocks", "leave", check=1)
    assert onnxruntime["status"] == "failed" and pytorch["status"] == "ok"
    assert onnxruntime["error"].startswith("onnxruntime not importable by python3 on sim-tx2 (ModuleNotFoundError")
    assert "install the onnxruntime-gpu wheel" in onnxruntime["error"]


# ONNX Runtime 1.10.0, JetPack 4.6's release, beside sim-tx2's python3 (tests/lab/onnxruntime/install.sh).
ORT_110 = "/opt/edgeprof-lab/onnxruntime-1.10.0/bin/python3"


@pytest.fixture
def ort110_inventory(lab_inventory, tmp_path):
    """The lab's inventory plus sim-tx2-ort110: sim-tx2 with the Python that has real ONNX Runtime 1.10.0."""
    rootfs = Path(os.environ.get("EDGEPROF_LAB_CACHE", "/var/cache/edgeprof-lab")) / "bullseye-rootfs"
    if not (rootfs / ORT_110.lstrip("/")).exists():
        pytest.skip(f"no {ORT_110} in the lab's rootfs: tests/lab/lab up installs it")
    entry = dict(tomllib.loads(lab_inventory.read_text())["devices"]["sim-tx2"], python=ORT_110)
    path = tmp_path / "inventory.toml"
    path.write_text(lab_inventory.read_text() + '\n[devices."sim-tx2-ort110"]\n' + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in entry.items()))
    return path


def test_a_board_with_jetpack_4_6s_onnxruntime_gets_the_file_it_reads(edgeprof_cli, ort110_inventory):
    """Real ONNX Runtime 1.10.0 on the board: the file is opset 15, IR version 8 (onnx_versions' row, which the
    same release confirms in tests/models/test_onnx_versions.py), and it runs; --opset 16 is refused before the
    board sees it, as 1.10.0 itself would refuse the file."""
    def run(*args, check):
        proc = edgeprof_cli("measure", "--device", "sim-tx2-ort110", "--backend", "onnxruntime", "alexnet",
                            "--clocks", "leave", "--iterations", "6", "--wait", "600", "--json", *args,
                            inventory=ort110_inventory, timeout=1200, check=check,
                            env={"XDG_CACHE_HOME": str(edgeprof_cli.home / ".cache")})
        return json_lines(proc.stdout)[0]

    r = run(check=0)
    onnx = r["model_info"]["onnx"]
    assert r["status"] == "ok" and r["state"]["versions"]["onnxruntime"] == "1.10.0"
    assert (onnx["opset"], onnx["ir_version"]) == (15, 8)
    assert onnx["opset_chosen"] == "the board's ONNX Runtime 1.10.0 reads opset 15 (table row 1.9)"
    refused = run("--opset", "16", check=1)
    assert refused["status"] == "failed" and refused["error"].startswith(
        "--opset 16: ONNX Runtime 1.10.0's parser reads opset 15 and IR version 8")
    assert "refuses files above them" in refused["error"]


def test_local_runs_from_the_host_cache(edgeprof_cli):
    results = measure(edgeprof_cli, "--device", "local", "--backend", "onnxruntime,pytorch", "alexnet", "resnet50",
                      check=0)
    assert [(r["backend"], r["model"], r["status"]) for r in results] == [
        ("onnxruntime", "alexnet", "ok"), ("onnxruntime", "resnet50", "ok"),
        ("pytorch", "alexnet", "ok"), ("pytorch", "resnet50", "ok")]
    for r in results[:2]:
        # On `local` the board's cache is the host's: the export is already there.
        assert r["onnxruntime"]["upload"] == "skipped: already in the board's cache"
        assert r["onnxruntime"]["providers_used"] == ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def host_cache(tmp_path_factory):
    """One export cache for the module's checks (XDG_CACHE_HOME; on `local` also the board's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.parametrize("device", ["sim-desktop", "local"])
@pytest.mark.parametrize("model", MODELS)
def test_onnxruntime_outputs_match_the_pytorch_build(lab_inventory, host_cache, device, model):
    report = check_onnxruntime(device, model, inventory=str(lab_inventory))
    print(f"\n{device} {model}: {report.errors} (onnx {report.onnx['sha256'][:12]}, {report.versions})")
    assert report.passed and report.max_error < 1e-4
    assert list(report.errors) == ["prob"] and report.shapes["prob"] == [1, 1000]
    assert report.onnx["providers_used"] == ["CPUExecutionProvider"]
    # The file the board's onnxruntime reads, as the backend would export it.
    assert report.onnx["opset"] == min(reader(ONNXRUNTIME, report.versions["onnxruntime"]).opset, exporter_max_opset())
    assert report.to_dict()["method"].startswith("relative error = max |onnxruntime - torch| / max |torch|")
