"""edgeprof.backends.tensorrt.commands: trtexec argv per TensorRT version, checked against the flag table
(sources in the module docstring) and against real trtexec output (tests/parsers/logs/trtexec)."""

from pathlib import Path

import pytest

from edgeprof.backends.tensorrt.commands import (CaffeModel, effective_timing, OnnxModel, TensorRTCommandError, TimingOptions,
                                                 TrtVersion, build_command, engine_cache_key, implicit_batch,
                                                 latency_span, parse_version, profile_command, timing_command)

LOGS = Path(__file__).resolve().parent.parent / "parsers" / "logs" / "trtexec"

ONNX = OnnxModel("/m/model.onnx")
CAFFE = CaffeModel("/m/deploy.prototxt", "prob")
CAFFE_WEIGHTS = CaffeModel("/m/deploy.prototxt", "prob", "/m/net.caffemodel")
V = parse_version
SHA = "0123456789abcdef" * 4


# --- versions ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, version", [
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # trtexec --workspace=2048 --onnx=weights/culane_18.onnx",
     TrtVersion(8, 2, 1)),
    ("&&&& PASSED TensorRT.trtexec [TensorRT v8400] # trtexec --loadEngine=mnist16.trt --batch=16", TrtVersion(8, 4, 0)),
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v101600] [b72] # trtexec --onnx=x.onnx", TrtVersion(10, 16, 0)),
    ("[07/14/2023-11:52:09] [I] TensorRT version: 8.2.1", TrtVersion(8, 2, 1)),
    ("[09/15/2021-16:06:10] [I] TensorRT version: 8001", TrtVersion(8, 0, 1)),
    ("8.2.1-1+cuda10.2", TrtVersion(8, 2, 1)),
    ("libnvinfer8 8.5.2-1+cuda11.4", TrtVersion(8, 5, 2)),
    ("10.3.0.30-1+cuda12.5", TrtVersion(10, 3, 0)),
    ("7.1.3", TrtVersion(7, 1, 3)),
    ("4.0.1.6", TrtVersion(4, 0, 1)),
])
def test_parse_version(text, version):
    assert parse_version(text) == version


def test_parse_version_of_real_logs():
    assert parse_version((LOGS / "trt10_3_jetson_unknown_option_failed_excerpt.log").read_text()) == V("10.3.0")
    assert parse_version((LOGS / "trt8_2_1_jetson_nano_culane_excerpt.log").read_text()) == V("8.2.1")


def test_parse_version_without_one_is_an_error():
    with pytest.raises(ValueError):
        parse_version("&&&& RUNNING TensorRT.trtexec # trtexec --onnx=m.onnx")


def test_versions_order():
    assert V("8.6.1") < V("10.0.1") < V("10.16.0") < V("11.0.0")
    assert str(V("8.2.1")) == "8.2.1" and V("10.16.0").series == "10.16"


# --- build -------------------------------------------------------------------------------------------------

BUILDS = {
    # (version, model, precision, dla): argv after "trtexec"
    ("4.0.1", CAFFE, "fp16", None): ["--deploy=/m/deploy.prototxt", "--output=prob", "--batch=8", "--fp16",
                                     "--engine=/e.plan", "--iterations=1", "--avgRuns=1"],
    ("4.0.1", ONNX, "fp32", None): ["--onnx=/m/model.onnx", "--batch=8", "--engine=/e.plan", "--iterations=1",
                                    "--avgRuns=1"],
    ("5.0.6", CAFFE_WEIGHTS, "int8", 0): ["--deploy=/m/deploy.prototxt", "--output=prob", "--model=/m/net.caffemodel",
                                          "--batch=8", "--int8", "--engine=/e.plan", "--useDLACore=0",
                                          "--allowGPUFallback", "--iterations=1", "--avgRuns=1"],
    ("5.1.6", CAFFE, "best", 1): ["--deploy=/m/deploy.prototxt", "--output=prob", "--batch=8", "--fp16", "--int8",
                                  "--saveEngine=/e.plan", "--useDLACore=1", "--allowGPUFallback", "--iterations=1",
                                  "--avgRuns=1"],
    ("6.0.1", ONNX, "fp16", None): ["--onnx=/m/model.onnx", "--explicitBatch", "--fp16", "--saveEngine=/e.plan",
                                    "--buildOnly"],
    ("7.1.3", ONNX, "int8", 0): ["--onnx=/m/model.onnx", "--explicitBatch", "--int8", "--saveEngine=/e.plan",
                                 "--useDLACore=0", "--allowGPUFallback", "--buildOnly"],
    ("8.0.1", ONNX, "best", None): ["--onnx=/m/model.onnx", "--explicitBatch", "--fp16", "--int8",
                                    "--saveEngine=/e.plan", "--buildOnly"],
    ("8.2.1", ONNX, "best", None): ["--onnx=/m/model.onnx", "--best", "--saveEngine=/e.plan", "--buildOnly"],
    ("8.2.1", CAFFE, "fp32", None): ["--deploy=/m/deploy.prototxt", "--output=prob", "--batch=8",
                                     "--saveEngine=/e.plan", "--buildOnly"],
    ("8.5.2", CAFFE, "fp16", 0): ["--deploy=/m/deploy.prototxt", "--output=prob", "--batch=8", "--fp16",
                                  "--saveEngine=/e.plan", "--useDLACore=0", "--allowGPUFallback", "--buildOnly"],
    ("8.6.2", CAFFE, "fp16", None): ["--deploy=/m/deploy.prototxt", "--output=prob", "--batch=8", "--fp16",
                                     "--saveEngine=/e.plan", "--skipInference"],
    ("10.3.0", ONNX, "fp16", 0): ["--onnx=/m/model.onnx", "--fp16", "--saveEngine=/e.plan", "--useDLACore=0",
                                  "--allowGPUFallback", "--skipInference"],
    ("10.16.0", ONNX, "best", None): ["--onnx=/m/model.onnx", "--best", "--saveEngine=/e.plan", "--skipInference"],
    ("11.2.1", ONNX, "fp32", 1): ["--onnx=/m/model.onnx", "--saveEngine=/e.plan", "--useDLACore=1",
                                  "--allowGPUFallback", "--skipInference"],
}


@pytest.mark.parametrize("key", list(BUILDS), ids=lambda k: f"{k[0]}-{type(k[1]).__name__}-{k[2]}-dla{k[3]}")
def test_build_command(key):
    version, model, precision, dla = key
    argv = build_command(V(version), model, precision, 8, "/e.plan", dla_core=dla)
    assert argv == ["trtexec", *BUILDS[key]]


def test_trtexec_path_is_used():
    assert build_command(V("8.2.1"), ONNX, "fp32", 1, "/e", trtexec="/usr/src/tensorrt/bin/trtexec")[0] == \
        "/usr/src/tensorrt/bin/trtexec"


@pytest.mark.parametrize("version, flag", [("6.0.1", "--workspace=2048"), ("8.2.1", "--workspace=2048"),
                                           ("8.4.1", "--memPoolSize=workspace:2048"),
                                           ("10.3.0", "--memPoolSize=workspace:2048")])
def test_workspace_flag_follows_the_version(version, flag):
    assert flag in build_command(V(version), ONNX, "fp32", 1, "/e", workspace_mib=2048)


def test_flags_a_real_trt10_3_rejected_are_never_built_for_10_x():
    # The real 10.3 run: "[E] Unknown option: --workspace 2048", "--buildOnly", "--explicitBatch".
    log = (LOGS / "trt10_3_jetson_unknown_option_failed_excerpt.log").read_text()
    rejected = {"--workspace", "--buildOnly", "--explicitBatch"}
    assert all(f"Unknown option: {flag}" in log for flag in rejected)
    argv = build_command(V("10.3.0"), ONNX, "fp16", 1, "/e", dla_core=0, workspace_mib=2048)
    assert not {arg.split("=")[0] for arg in argv} & rejected


def test_caffe_after_8_6_is_a_clear_error_naming_the_version():
    for version in ("10.0.1", "10.3.0", "11.2.1"):
        with pytest.raises(TensorRTCommandError, match=rf"TensorRT {version} has no Caffe parser.*ONNX"):
            build_command(V(version), CAFFE, "fp16", 1, "/e")
        with pytest.raises(TensorRTCommandError, match="no Caffe parser"):
            timing_command(V(version), CAFFE, 1, "/e", "/t.json")


@pytest.mark.parametrize("precision", ["fp16", "int8", "best"])
def test_precision_flags_are_refused_on_11_x(precision):
    with pytest.raises(TensorRTCommandError, match="TensorRT 11.2.1 builds strongly typed networks only"):
        build_command(V("11.2.1"), ONNX, precision, 1, "/e")


@pytest.mark.parametrize("version", ["4.0.1", "5.0.6", "5.1.6"])
def test_int8_onnx_is_refused_where_trtexec_says_so(version):
    with pytest.raises(TensorRTCommandError, match="no INT8 for ONNX"):
        build_command(V(version), ONNX, "int8", 1, "/e")
    assert "--int8" in build_command(V(version), CAFFE, "int8", 1, "/e")


def test_dla_before_5_0_is_refused():
    with pytest.raises(TensorRTCommandError, match="useDLACore came in 5.0"):
        build_command(V("4.0.1"), CAFFE, "fp16", 1, "/e", dla_core=0)


@pytest.mark.parametrize("version", ["2.1.2", "3.0.4", "9.2.0", "12.0.0"])
def test_versions_without_a_flag_source_are_refused(version):
    with pytest.raises(TensorRTCommandError, match=f"TensorRT {version}"):
        build_command(V(version), ONNX, "fp32", 1, "/e")


def test_bad_arguments():
    with pytest.raises(TensorRTCommandError, match="unknown precision"):
        build_command(V("8.2.1"), ONNX, "fp8", 1, "/e")
    with pytest.raises(TensorRTCommandError, match="batch"):
        build_command(V("8.2.1"), ONNX, "fp32", 0, "/e")
    with pytest.raises(TensorRTCommandError, match="DLA core"):
        build_command(V("8.2.1"), ONNX, "fp16", 1, "/e", dla_core=-1)


def test_implicit_batch():
    assert implicit_batch(V("8.6.2"), CAFFE) and implicit_batch(V("5.1.6"), ONNX)
    assert not implicit_batch(V("6.0.1"), ONNX) and not implicit_batch(V("10.3.0"), ONNX)


# --- timing ------------------------------------------------------------------------------------------------

TIMING = TimingOptions(iterations=200, warmup_ms=1000, duration_s=0, avg_runs=20)
TIMINGS = {
    ("4.0.1", CAFFE, None): ["--engine=/e.plan", "--output=prob", "--batch=8", "--iterations=200", "--avgRuns=20"],
    ("5.0.6", CAFFE, 0): ["--engine=/e.plan", "--output=prob", "--batch=8", "--useDLACore=0", "--iterations=200",
                          "--avgRuns=20"],
    ("5.1.6", ONNX, 1): ["--loadEngine=/e.plan", "--batch=8", "--useDLACore=1", "--iterations=200", "--avgRuns=20",
                         "--useSpinWait"],
    ("7.1.3", CAFFE, None): ["--loadEngine=/e.plan", "--batch=8", "--iterations=200", "--warmUp=1000", "--duration=0",
                             "--exportTimes=/t.json", "--useSpinWait"],
    ("8.6.2", ONNX, 0): ["--loadEngine=/e.plan", "--useDLACore=0", "--iterations=200", "--warmUp=1000",
                         "--duration=0", "--exportTimes=/t.json", "--useSpinWait"],
    ("10.16.0", ONNX, None): ["--loadEngine=/e.plan", "--iterations=200", "--warmUp=1000", "--duration=0",
                              "--exportTimes=/t.json", "--useSpinWait"],
    # 11.x: spin-wait is the default there; transfers and CUDA graphs are put back to the 6.0-10.x behaviour.
    ("11.2.1", ONNX, None): ["--loadEngine=/e.plan", "--iterations=200", "--warmUp=1000", "--duration=0",
                             "--exportTimes=/t.json", "--includeDataTransfers", "--noCudaGraph"],
}


@pytest.mark.parametrize("key", list(TIMINGS), ids=lambda k: f"{k[0]}-{type(k[1]).__name__}-dla{k[2]}")
def test_timing_command(key):
    version, model, dla = key
    times = "/t.json" if V(version) >= V("6.0.0") else None
    argv = timing_command(V(version), model, 8, "/e.plan", times, dla_core=dla, timing=TIMING)
    assert argv == ["trtexec", *TIMINGS[key]]
    assert "--allowGPUFallback" not in argv  # a builder setting, meaningless when loading


def test_export_times_file_must_match_the_version():
    with pytest.raises(TensorRTCommandError, match="give the file"):
        timing_command(V("8.2.1"), ONNX, 1, "/e", None)
    with pytest.raises(TensorRTCommandError, match="no --exportTimes"):
        timing_command(V("5.1.6"), ONNX, 1, "/e", "/t.json")


def test_onnx_engines_cannot_be_reloaded_before_5_1():
    with pytest.raises(TensorRTCommandError, match="blob names"):
        timing_command(V("5.0.6"), ONNX, 1, "/e", None)


def test_default_timing_options():
    argv = timing_command(V("8.2.1"), ONNX, 1, "/e", "/t.json")
    assert argv[2:5] == ["--iterations=100", "--warmUp=500", "--duration=0"]


# --- profile -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, expected", [
    ("6.0.1", ["--loadEngine=/e.plan", "--exportProfile=/p.json"]),
    ("7.0.0", ["--loadEngine=/e.plan", "--exportProfile=/p.json"]),
    ("7.1.3", ["--loadEngine=/e.plan", "--exportProfile=/p.json", "--separateProfileRun"]),
    ("8.4.1", ["--loadEngine=/e.plan", "--useDLACore=0", "--exportProfile=/p.json", "--separateProfileRun"]),
    ("10.3.0", ["--loadEngine=/e.plan", "--useDLACore=0", "--exportProfile=/p.json", "--separateProfileRun"]),
    # 11.x always profiles in a separate pass and warns that the flag is deprecated.
    ("11.2.1", ["--loadEngine=/e.plan", "--useDLACore=0", "--exportProfile=/p.json"]),
])
def test_profile_command(version, expected):
    dla = 0 if V(version) >= V("8.0.0") else None
    assert profile_command(V(version), ONNX, 8, "/e.plan", "/p.json", dla_core=dla) == ["trtexec", *expected]


def test_profile_command_keeps_the_implicit_batch():
    assert profile_command(V("8.2.1"), CAFFE, 8, "/e.plan", "/p.json") == [
        "trtexec", "--loadEngine=/e.plan", "--batch=8", "--exportProfile=/p.json", "--separateProfileRun"]


@pytest.mark.parametrize("version", ["4.0.1", "5.0.6", "5.1.6"])
def test_no_profile_file_before_6_0(version):
    assert profile_command(V(version), CAFFE, 1, "/e", "/p.json") is None


def test_latency_span_names_what_is_measured():
    assert latency_span(V("5.1.6")).startswith("gpu_compute_ms: GPU time of one enqueue")
    assert latency_span(V("8.2.1")) == latency_span(V("11.2.1"))
    assert "H2D + GPU compute + D2H" in latency_span(V("10.3.0"))


# --- engine cache key --------------------------------------------------------------------------------------

def test_engine_cache_key_is_stable_and_readable():
    key = engine_cache_key(SHA, V("8.2.1"), "fp16", 4, "Jetson Nano (4GB)")
    assert key == engine_cache_key(SHA, V("8.2.1"), "fp16", 4, "Jetson Nano (4GB)")
    assert key.startswith("0123456789ab-trt8.2.1-fp16-b4-jetson-nano-4gb-gpu-")
    assert len(key.rsplit("-", 1)[1]) == 12


@pytest.mark.parametrize("change", [
    dict(model_sha256="f" * 64), dict(version=V("8.2.3")), dict(precision="int8"), dict(batch=8),
    dict(device="Jetson Xavier NX"), dict(dla_core=0), dict(dla_core=1), dict(onnx=(17, 8)), dict(onnx=(13, 8)),
    dict(onnx=None)])
def test_engine_cache_key_changes_with_every_input(change):
    base = dict(model_sha256=SHA, version=V("8.2.1"), precision="fp16", batch=4, device="Jetson Nano (4GB)",
                dla_core=None, onnx=(13, 7))
    assert engine_cache_key(**{**base, **change}) != engine_cache_key(**base)


def test_engine_cache_key_names_the_onnx_opset_and_ir_version():
    key = engine_cache_key(SHA, V("8.2.1"), "fp16", 4, "Jetson Nano (4GB)", onnx=(13, 7))
    assert key.startswith("0123456789ab-op13ir7-trt8.2.1-fp16-b4-")


@pytest.mark.parametrize("version, effective", [
    ("5.0.2", {"cuda_graph": False, "spin_wait": False, "data_transfers": False}),
    ("5.1.5", {"cuda_graph": False, "spin_wait": True, "data_transfers": False}),
    ("8.2.1", {"cuda_graph": False, "spin_wait": True, "data_transfers": True}),
    ("11.2.1", {"cuda_graph": False, "spin_wait": True, "data_transfers": True}),  # 11.x's defaults put back
])
def test_effective_timing_is_what_timing_command_runs(version, effective):
    assert effective_timing(V(version)) == effective
    model = OnnxModel("m.onnx") if V(version) >= V("5.1.0") else CaffeModel("d.prototxt", "prob")
    argv = timing_command(V(version), model, 1, "e.engine", "t.json" if effective["data_transfers"] else None)
    assert ("--useSpinWait" in argv or "--includeDataTransfers" in argv) == effective["spin_wait"]


def test_engine_cache_key_device_names_that_slug_alike_still_differ():
    assert engine_cache_key(SHA, V("10.3.0"), "fp16", 1, "Orin NX") != engine_cache_key(SHA, V("10.3.0"), "fp16", 1,
                                                                                          "orin-nx")


def test_engine_cache_key_rejects_bad_input():
    with pytest.raises(ValueError, match="64 lowercase hex"):
        engine_cache_key("abc", V("8.2.1"), "fp16", 1, "nano")
    with pytest.raises(ValueError, match="precision"):
        engine_cache_key(SHA, V("8.2.1"), "fp64", 1, "nano")
