"""`edgeprof measure --backend tensorrt` on the lab's sim-tx2, whose trtexec is the stand-in of
tests/lab/trtexec_sim (TensorRT 8.2.1 on a TX2 unless a test configures it otherwise): every figure here is
invented by the stand-in; what is tested is the command construction, the engine cache, the parsing and
the failures. Each measure waits for the board's lease (--wait 600): other tests use sim-tx2 too."""
import json
import uuid

import pytest

from edgeprof.devices import connect, get_device
from edgeprof.models import resolve

from ..conftest import json_lines

MEASURE = ("measure", "--device", "sim-tx2", "--backend", "tensorrt", "--wait", "600", "--json")


@pytest.fixture
def board(lab_inventory):
    transport = connect(get_device("sim-tx2", lab_inventory))
    yield transport
    transport.close()


@pytest.fixture
def trtexec_config(board):
    """Set the stand-in's configuration (/etc/trtexec-sim/NAME) for one test; put back afterwards."""
    written = []

    def configure(name, value):
        proc = board.run(["sudo", "-n", "tee", f"/etc/trtexec-sim/{name}"], stdin=value + "\n")
        assert proc.ok, proc.stderr
        written.append(name)

    yield configure
    for name in written:
        board.run(["sudo", "-n", "rm", "-f", "--", f"/etc/trtexec-sim/{name}"])


@pytest.fixture
def engines(board):
    """Engine paths a test built, removed from the board's cache afterwards."""
    built = []
    yield built
    for path in built:
        board.run(["rm", "-f", "--", path, path.removesuffix(".engine") + ".json"])


@pytest.fixture
def fresh_net(tmp_path):
    """AlexNet's deploy prototxt with a comment no engine in the board's cache was built from."""
    path = tmp_path / "trtnet.prototxt"
    path.write_text(f"# edgeprof test {uuid.uuid4().hex}\n" + resolve("alexnet").text)
    return path


def measure(edgeprof_cli, *args, check=0):
    results = json_lines(edgeprof_cli(*MEASURE, *args, check=check).stdout)
    assert results
    return results


def show(edgeprof_cli, result):
    return json.loads(edgeprof_cli("results", "show", result["id"], "--json", check=0).stdout)


def test_prototxt_engine_is_built_once_then_loaded_from_the_cache(edgeprof_cli, fresh_net, engines):
    first = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--batch", "1,2", "--iterations", "30")
    engines += [r["tensorrt"]["engine_path"] for r in first]
    for r in first:
        t = r["tensorrt"]
        assert r["status"] == "ok" and r["span"] == "compute" and r["iterations"] == 30
        assert (t["trt_version"], t["source"], t["engine_cached"], t["stats_from"]) == (
            "8.2.1", "prototxt", False, "exportTimes")
        assert t["build_s"] > 0 and t["engine_build"]["build_s"] == t["build_s"]
        assert f"-trt8.2.1-fp32-b{r['batch']}-" in t["engine_key"] and t["dla"] is None
        latency = r["latency_ms"]
        assert 0 < latency["min"] <= latency["median"] <= latency["max"]
        assert latency["stdev"] is not None and latency["iqr"] is not None
        # trtexec's own percentiles stay in its figures; the headline's tail needs more than 30 iterations.
        assert latency["p99"] is None and t["gpu_compute_ms"]["p99"] is not None
        assert {k: v for k, v in latency.items() if v is not None} == {
            k: v for k, v in t["gpu_compute_ms"].items() if k not in r["latency_unbounded"]}
        assert len(t["times_ms"]) == 30
        # The figures come from the records; trtexec's own printed summary agrees with them.
        assert t["summary"]["gpu_compute_ms"]["median"] == pytest.approx(latency["median"], rel=1e-5)
        # One query is one batch: images per second = batch x queries per second.
        assert r["throughput_ips"] == pytest.approx(r["batch"] * t["throughput_qps"])
        assert r["throughput_ips"] == pytest.approx(r["batch"] * 30 / t["timed_span_s"])
        window = r["timed_window"]
        assert window["end_s"] - window["start_s"] == pytest.approx(t["timed_span_s"], abs=1e-3)
        assert t["command_window"]["start_s"] <= window["start_s"] < window["end_s"] == t["command_window"]["end_s"]
        # Per-layer times from the separate profile run, under the stand-in's layer names.
        assert t["layers"][0]["name"] == "conv1 + relu1" and t["profile_iterations"] >= 30
        assert sum(layer["percentage"] for layer in t["layers"]) == pytest.approx(100, abs=0.01)
        full = show(edgeprof_cli, r)
        commands = [c["command"] for c in full["commands"]]
        assert any(c.startswith("/usr/src/tensorrt/bin/trtexec --deploy=/tmp/edgeprof.") and
                   f"--output=prob --batch={r['batch']} --saveEngine=" in c for c in commands)
        assert any("--loadEngine=" in c and "--exportTimes=" in c and "--useSpinWait" in c for c in commands)
        assert "&&&& PASSED TensorRT.trtexec [TensorRT v8201]" in full["raw_log"]
        assert f"dim: {r['batch']} dim: 3 dim: 227 dim: 227" in full["prototxt_diff"]

    second = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--batch", "2", "--iterations", "30")[0]
    t = second["tensorrt"]
    assert second["status"] == "ok" and t["engine_cached"] is True and t["build_s"] is None
    assert t["engine_key"] == first[1]["tensorrt"]["engine_key"]
    assert t["engine_build"] == first[1]["tensorrt"]["engine_build"]
    assert not any("--deploy=" in c["command"] for c in show(edgeprof_cli, second)["commands"])
    # The stand-in's timings are a function of the engine: the same engine gives the same figures.
    assert second["latency_ms"] == first[1]["latency_ms"]


def test_host_span_is_the_latency_with_copies(edgeprof_cli, fresh_net, engines):
    r = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--span", "host", "--iterations", "20")[0]
    engines.append(r["tensorrt"]["engine_path"])
    t = r["tensorrt"]
    assert r["status"] == "ok" and r["span"] == "host"
    # trtexec's figures whole; the headline without the percentiles 20 iterations cannot bound.
    assert {k: v for k, v in r["latency_ms"].items() if v is not None} == {
        k: v for k, v in t["latency_ms"].items() if k not in r["latency_unbounded"]}
    assert r["latency_ms"]["median"] > t["gpu_compute_ms"]["median"]


def test_onnx_export_is_the_default_source(edgeprof_cli, engines):
    pytest.importorskip("onnx")
    r = measure(edgeprof_cli, "googlenet", "--iterations", "20")[0]
    engines.append(r["tensorrt"]["engine_path"])
    t = r["tensorrt"]
    assert r["status"] == "ok", r["error"]
    assert t["source"] == "onnx" and t["model"]["kind"] == "onnx" and t["model"]["opset"] > 0
    assert t["engine_key"].startswith(t["model"]["sha256"][:12])
    commands = [c["command"] for c in show(edgeprof_cli, r)["commands"]]
    if not t["engine_cached"]:
        assert any(c.startswith("/usr/src/tensorrt/bin/trtexec --onnx=/tmp/edgeprof.") for c in commands)
    assert t["layers"] and all(layer["average_ms"] > 0 for layer in t["layers"])


def test_tensorrt_10_has_no_caffe_parser(edgeprof_cli, trtexec_config, fresh_net, engines):
    trtexec_config("version", "10.3.0")
    r = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--iterations", "20", check=1)[0]
    assert r["status"] == "failed" and r["tensorrt"]["trt_version"] == "10.3.0"
    assert r["error"].startswith("TensorRT 10.3.0 has no Caffe parser") and "ONNX" in r["error"]
    assert not any("trtexec" in c["command"] for c in show(edgeprof_cli, r)["commands"])
    pytest.importorskip("onnx")
    r = measure(edgeprof_cli, "googlenet", "--iterations", "20", "--precision", "fp16")[0]
    engines.append(r["tensorrt"]["engine_path"])
    t = r["tensorrt"]
    assert r["status"] == "ok", r["error"]
    assert "-trt10.3.0-fp16-b1-" in t["engine_key"] and t["layers"][0]["median_ms"] is not None  # 8.5+ profiles
    assert r["state"]["versions"]["tensorrt"] == "10.3.0"


def test_dla_on_a_tx2_fails_clearly(edgeprof_cli, fresh_net):
    r = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--dla-core", "0", "--iterations", "20",
                check=1)[0]
    assert r["status"] == "failed" and r["latency_ms"]["median"] is None
    assert r["error"].startswith("trtexec engine build failed: Cannot create DLA engine, 0 not available")
    assert "--dla-core needs a board with DLA cores" in r["error"]


def test_dla_with_gpu_fallback_counts_the_fallen_back_layers(edgeprof_cli, trtexec_config, fresh_net, engines):
    trtexec_config("board", "xavier")
    for run in ("built", "cached"):
        r = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--dla-core", "0", "--precision", "fp16",
                    "--iterations", "20")[0]
        engines.append(r["tensorrt"]["engine_path"])
        t = r["tensorrt"]
        assert r["status"] == "ok" and t["engine_cached"] == (run == "cached")
        assert t["dla"] == {"core": 0, "dla_subgraphs": 1, "gpu_layers": 1, "gpu_layer_names": ["prob"]}
        assert "-fp16-b1-" in t["engine_key"] and t["engine_key"].split("-")[-2] == "dla0"
        assert [layer["name"] for layer in t["layers"]] == ["{ForeignNode[conv1 + relu1...fc8]}", "prob"]


def test_unsupported_caffe_layer_fails_with_the_parsers_reason(edgeprof_cli, tmp_path):
    net = tmp_path / "custom.prototxt"
    net.write_text(resolve("alexnet").text.replace('type: "LRN"', 'type: "Python"'))
    r = measure(edgeprof_cli, net, "--trt-from", "prototxt", "--iterations", "20", check=1)[0]
    assert r["status"] == "failed" and r["error"] == "trtexec engine build failed: could not parse layer type Python"
    assert "could not parse layer type Python" in show(edgeprof_cli, r)["raw_log"]


def test_board_without_trtexec(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "tensorrt", "alexnet", "--trt-from",
                        "prototxt", "--wait", "600", "--json", check=1)
    r = json_lines(proc.stdout)[0]
    assert r["status"] == "failed"
    assert r["error"].startswith("trtexec not found on sim-desktop (looked for trtexec, /usr/src/tensorrt/bin/trtexec)")


def test_int8_builds_with_placeholder_scales_and_says_so(edgeprof_cli, fresh_net, engines):
    r = measure(edgeprof_cli, fresh_net, "--trt-from", "prototxt", "--precision", "int8", "--iterations", "20")[0]
    engines.append(r["tensorrt"]["engine_path"])
    t = r["tensorrt"]
    assert r["status"] == "ok", r["error"]
    assert t["variant"] == "int8" and "-trt8.2.1-int8-b1-" in t["engine_key"]
    # No calibration cache: trtexec sets placeholder scales, so the figures are timing only.
    assert t["int8"] == "int8 without calibration: timing only, outputs meaningless"
    assert r["settings"]["precision"] == "int8" and r["settings"]["int8_calibration"] is None
    assert {"code": "int8_uncalibrated", "detail": t["int8"]} in r["flags"]
    build = next(c["command"] for c in show(edgeprof_cli, r)["commands"] if "--deploy=" in c["command"])
    assert " --int8 " in build and "--calib" not in build


def test_int8_is_refused_by_the_backends_that_cannot_time_it(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch,onnxruntime", "alexnet",
                        "--precision", "int8", "--wait", "600", "--json", check=1)
    results = json_lines(proc.stdout)
    assert [r["backend"] for r in results] == ["pytorch", "onnxruntime"]
    assert {(r["status"], r["error"]) for r in results} == {
        ("failed", "int8 needs a calibrated model; only --backend tensorrt times int8")}


def test_best_times_each_precision_the_version_builds(edgeprof_cli, fresh_net, engines):
    proc = edgeprof_cli(*MEASURE, fresh_net, "--trt-from", "prototxt", "--best", "--iterations", "20", check=0)
    results = json_lines(proc.stdout)
    engines += [r["tensorrt"]["engine_path"] for r in results]
    assert [(r["status"], r["tensorrt"]["variant"]) for r in results] == [
        ("ok", "fp32"), ("ok", "fp16"), ("ok", "int8")]
    assert len({r["tensorrt"]["engine_key"] for r in results}) == 3
    assert [r["tensorrt"].get("int8") is not None for r in results] == [False, False, True]
    assert f"fastest tensorrt variant for {fresh_net.stem} batch 1 on sim-tx2: " in proc.stderr


# --- the ONNX file for the board's TensorRT (edgeprof/models/onnx_versions.py) -------------------------------

def layer_norm_model(tmp_path):
    """A TorchScript net with a layer norm: torch writes it as one LayerNormalization node from opset 17, as
    elementary operators below."""
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(6), torch.nn.LayerNorm([4, 6, 6]))
    path = tmp_path / f"ln-{uuid.uuid4().hex[:8]}.pt"
    torch.jit.script(net.eval()).save(str(path))
    return path


def test_the_same_model_gets_the_opset_each_boards_tensorrt_reads_and_both_build(edgeprof_cli, trtexec_config,
                                                                                 engines, board):
    pytest.importorskip("onnx")
    # Both engines built here, so that their logs hold the parser's header: an earlier test (or run of the lab,
    # whose rootfs keeps the login's cache) may have left AlexNet's opset-13 engine, keyed by its ONNX file.
    board.run(["sh", "-c", 'rm -f -- "${XDG_CACHE_HOME:-$HOME/.cache}"/edgeprof/tensorrt-engines/*'])
    old = measure(edgeprof_cli, "alexnet", "--iterations", "20")[0]
    engines.append(old["tensorrt"]["engine_path"])
    trtexec_config("version", "10.3.0")
    new = measure(edgeprof_cli, "alexnet", "--iterations", "20")[0]
    engines.append(new["tensorrt"]["engine_path"])
    assert old["status"] == new["status"] == "ok", (old["error"], new["error"])
    (o, n) = (old["tensorrt"]["model"], new["tensorrt"]["model"])
    assert (o["opset"], o["ir_version"]) == (13, 7) and o["opset_chosen"].startswith(
        "the board's TensorRT 8.2.1 reads opset 13")
    assert n["opset"] == 20 and n["ir_version"] <= 10 and o["sha256"] != n["sha256"]
    assert "-op13ir7-trt8.2.1-fp32-b1-" in old["tensorrt"]["engine_key"]
    assert f"-op20ir{n['ir_version']}-trt10.3.0-fp32-b1-" in new["tensorrt"]["engine_key"]
    # The stand-in prints the file's header as the parser does.
    assert "Opset version:    13" in show(edgeprof_cli, old)["raw_log"]
    assert not any(f["code"] == "opset_above_parser" for r in (old, new) for f in r["flags"])


def test_an_upgraded_tensorrt_never_loads_the_old_versions_engine(edgeprof_cli, trtexec_config, engines):
    pytest.importorskip("onnx")
    # --opset 13 on both: the very same ONNX file, only the TensorRT version changes.
    first = measure(edgeprof_cli, "alexnet", "--opset", "13", "--iterations", "20")[0]
    engines.append(first["tensorrt"]["engine_path"])
    trtexec_config("version", "8.5.2")
    upgraded = measure(edgeprof_cli, "alexnet", "--opset", "13", "--iterations", "20")[0]
    engines.append(upgraded["tensorrt"]["engine_path"])
    assert first["status"] == upgraded["status"] == "ok"
    assert first["tensorrt"]["model"]["sha256"] == upgraded["tensorrt"]["model"]["sha256"]
    assert upgraded["tensorrt"]["engine_cached"] is False and upgraded["tensorrt"]["build_s"] > 0
    assert first["tensorrt"]["engine_key"] != upgraded["tensorrt"]["engine_key"]
    assert "-trt8.5.2-" in upgraded["tensorrt"]["engine_key"]


def test_forcing_opset_17_on_tensorrt_8_2(edgeprof_cli, trtexec_config, engines, tmp_path):
    """8.2's parser checks no opset: AlexNet at opset 17 builds, flagged as above what the parser documents. A
    net with a LayerNormalization node is refused before anything runs on the board, naming the node and the
    version that has an importer for it; 8.6 builds it."""
    pytest.importorskip("onnx")
    forced = measure(edgeprof_cli, "alexnet", "--opset", "17", "--iterations", "20")[0]
    engines.append(forced["tensorrt"]["engine_path"])
    assert forced["status"] == "ok" and forced["tensorrt"]["model"]["opset"] == 17
    assert forced["settings"]["opset"] == 17
    [flag] = [f for f in forced["flags"] if f["code"] == "opset_above_parser"]
    assert "TensorRT 8.2.1's parser reads opset 13" in flag["detail"]

    net = layer_norm_model(tmp_path)
    refused = measure(edgeprof_cli, net, "--opset", "17", "--iterations", "20", check=1)[0]
    assert refused["status"] == "failed"
    assert "LayerNormalization (layer " in refused["error"]
    assert "needs TensorRT 8.6 or newer; TensorRT 8.2.1's parser has no importer for it" in refused["error"]
    assert not any("trtexec" in c["command"] for c in show(edgeprof_cli, refused)["commands"])
    # Without --opset, 8.2 gets opset 13, where the layer norm is elementary operators: it builds.
    default = measure(edgeprof_cli, net, "--iterations", "20")[0]
    engines.append(default["tensorrt"]["engine_path"])
    assert default["status"] == "ok" and default["tensorrt"]["model"]["opset"] == 13
    trtexec_config("version", "8.6.2")
    newer = measure(edgeprof_cli, net, "--opset", "17", "--iterations", "20")[0]
    engines.append(newer["tensorrt"]["engine_path"])
    assert newer["status"] == "ok", newer["error"]
