"""The trtexec stand-in (tests/lab/trtexec_sim), run from the source folder on the host.

It must accept the command lines edgeprof's commands.py builds for the version it claims and refuse the
flags commands.py's table says that version lacks, in that version's words (the real 10.3 failure is a
fixture); its text output must have the layout of the real logs and, like its --exportTimes and
--exportProfile files, go through edgeprof's own parsers.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprof.backends.tensorrt.commands import (CaffeModel, OnnxModel, TensorRTCommandError, TimingOptions,
                                                 TrtVersion, build_command, parse_version, profile_command,
                                                 timing_command)
from edgeprof.backends.tensorrt.runner import layer_placement
from edgeprof.models import resolve
from edgeprof.parsers import trtexec as parser

SIM = Path(__file__).parent / "trtexec_sim" / "trtexec"
LOGS = Path(__file__).resolve().parent.parent / "parsers" / "logs" / "trtexec"
VERSIONS = ("8.2.1", "8.5.2", "8.6.2", "10.3.0")
FAST = TimingOptions(iterations=20, warmup_ms=20, duration_s=0)


class Sim:
    """The stand-in with its own configuration folder and a folder for models, engines and exports."""

    def __init__(self, root: Path):
        self.config = root / "config"
        self.config.mkdir()
        self.dir = root

    def configure(self, version="8.2.1", board="tx2"):
        (self.config / "version").write_text(version + "\n")
        (self.config / "board").write_text(board + "\n")

    def run(self, *args):
        env = {"TRTEXEC_SIM_CONFIG": str(self.config), "TRTEXEC_SIM_BUILD_S": "0", "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, str(SIM), *map(str, args)], env=env, capture_output=True, text=True,
                              timeout=120, cwd=self.dir)

    def argv(self, argv):
        """A commands.py argv (trtexec=SIM) run as it is."""
        assert argv[0] == str(SIM)
        return self.run(*argv[1:])


@pytest.fixture
def sim(tmp_path):
    return Sim(tmp_path)


@pytest.fixture
def tiny_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.1] * 108)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("GlobalAveragePool", ["r"], ["output"], name="pool")],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 4, 1, 1])], initializer=[weight])
    model = helper.make_model(graph, producer_name="edgeprof-test", opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def alexnet(tmp_path) -> CaffeModel:
    path = tmp_path / "alexnet.prototxt"
    path.write_text(resolve("alexnet").text)
    return CaffeModel(str(path), "prob")


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    report = parser.parse(proc.stdout + proc.stderr)
    assert report.error is None, report.error
    return report


def failed(proc) -> str:
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "&&&& FAILED TensorRT.trtexec" in proc.stdout
    return parser.parse(proc.stdout + proc.stderr).error


# --- versions and flags --------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_help_banner_names_the_version(sim, version):
    sim.configure(version)
    proc = sim.run("--help")
    assert proc.returncode == 0 and "&&&& PASSED" not in proc.stdout
    assert str(parse_version(proc.stdout.splitlines()[0])) == version


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("source", ["caffe", "onnx"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "best"])
def test_runs_what_commands_py_builds_for_its_version(sim, tmp_path, tiny_onnx, version, source, precision):
    sim.configure(version)
    model = alexnet(tmp_path) if source == "caffe" else OnnxModel(str(tiny_onnx))
    v = parse_version(version)
    batch = 1 if source == "caffe" else 2
    engine = tmp_path / "model.engine"
    try:
        build = build_command(v, model, precision, batch, str(engine), trtexec=str(SIM))
    except TensorRTCommandError:
        assert source == "caffe" and v.major >= 10  # no Caffe parser: commands.py refuses before the board
        return
    assert ok(sim.argv(build)).trt_version == version
    assert json.loads(engine.read_text())["trt_version"] == version
    times = tmp_path / "times.json"
    timing = ok(sim.argv(timing_command(v, model, batch, str(engine), str(times), timing=FAST, trtexec=str(SIM))))
    assert timing.gpu_compute_ms.median > 0
    assert parser.parse_export_times(times.read_text(), warmup_ms=FAST.warmup_ms).iterations == FAST.iterations
    profile = tmp_path / "profile.json"
    argv = profile_command(v, model, batch, str(engine), str(profile), trtexec=str(SIM))
    ok(sim.argv(argv + ["--iterations=5", "--warmUp=0", "--duration=0"]))
    layers = parser.parse_export_profile(profile.read_text()).layers
    assert layers and all(layer.average_ms > 0 for layer in layers)


# Flags commands.py's table says the version does not have, as edgeprof would have passed them.
ABSENT = [("8.2.1", "--memPoolSize=workspace:64"), ("8.2.1", "--skipInference"), ("8.5.2", "--skipInference"),
          ("8.6.2", "--buildOnly"), ("10.3.0", "--deploy=net.prototxt"), ("10.3.0", "--output=prob"),
          ("10.3.0", "--model=net.caffemodel"), ("10.3.0", "--batch=8"), ("10.3.0", "--workspace=2048"),
          ("10.3.0", "--explicitBatch"), ("10.3.0", "--buildOnly"), ("10.3.0", "--minTiming=1")]
PRESENT = [("8.2.1", "--buildOnly"), ("8.2.1", "--workspace=64"), ("8.2.1", "--explicitBatch"),
           ("8.5.2", "--memPoolSize=workspace:64"), ("8.5.2", "--buildOnly"), ("8.6.2", "--skipInference"),
           ("8.6.2", "--workspace=64"), ("10.3.0", "--memPoolSize=workspace:64"), ("10.3.0", "--skipInference")]


@pytest.mark.parametrize("version, flag", ABSENT)
def test_refuses_flags_the_version_lacks(sim, tmp_path, tiny_onnx, version, flag):
    sim.configure(version)
    proc = sim.run(f"--onnx={tiny_onnx}", f"--saveEngine={tmp_path / 'e.engine'}", flag)
    key, _, value = flag.partition("=")
    assert f"[E] Unknown option: {key} {value}\n" in proc.stderr
    assert failed(proc) == f"Unknown option: {key} {value}".strip()
    assert not (tmp_path / "e.engine").exists()


@pytest.mark.parametrize("version, flag", PRESENT)
def test_accepts_flags_the_version_has(sim, tmp_path, tiny_onnx, version, flag):
    sim.configure(version)
    skip = "--skipInference" if parse_version(version) >= TrtVersion(8, 6) else "--buildOnly"
    ok(sim.run(f"--onnx={tiny_onnx}", f"--saveEngine={tmp_path / 'e.engine'}", skip, flag))


def test_the_real_10_3_failure(sim):
    """The command line of the real 10.3 log fails with the same [E] lines (their order is a hash map's)."""
    real = (LOGS / "trt10_3_jetson_unknown_option_failed_excerpt.log").read_text().splitlines()
    command = real[-1].split(" # ", 1)[1].split()[1:]
    sim.configure("10.3.0")
    proc = sim.run(*command)
    errors = {line.split("] [E] ", 1)[1] for line in real if "] [E] " in line}
    assert {line.split("] [E] ", 1)[1] for line in proc.stderr.splitlines()} == errors
    banner, _, ran = proc.stdout.splitlines()[-1].partition(" # ")
    assert banner == real[-1].split(" # ")[0] and ran.split()[1:] == command  # argv[0] is where the script is
    assert proc.returncode == 1


def test_invalid_argument_checks_of_8_2(sim, tiny_onnx):
    sim.configure("8.2.1")
    assert failed(sim.run(f"--onnx={tiny_onnx}", "--batch=4")).startswith("The --batch and --maxBatch flags should")
    assert failed(sim.run(f"--onnx={tiny_onnx}", "--output=prob")) == "The --output flag should not be used with ONNX models."
    assert failed(sim.run("--deploy=x.prototxt")) == "Caffe and Uff models require at least one output"
    assert failed(sim.run("--iterations=5")) == "Model missing or format not recognized"


# --- output layout -------------------------------------------------------------------------------------------

def layout(text: str, start: str) -> list[str]:
    """The lines from `start` to the closing banner as a shape: prefixes off, numbers as N, one line per run
    of trace averages."""
    shape = []
    lines = text.splitlines()
    for line in lines[next(i for i, line in enumerate(lines) if start in line):]:
        if line.startswith("&&&&"):
            break
        body = re.sub(r"^\[[^\]]*\] \[[IWE]\] ?", "", line)
        body = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "N", body).rstrip()
        if not (shape and body.startswith("Average on") and shape[-1] == body):
            shape.append(body)
    return shape


def timed_run(sim, tmp_path, version):
    """Build AlexNet from its prototxt with an 8.x stand-in and time it (FAST), times in t.json."""
    sim.configure(version)
    model = alexnet(tmp_path)
    v = parse_version(version)
    engine = tmp_path / "a.engine"
    ok(sim.argv(build_command(v, model, "fp32", 1, str(engine), trtexec=str(SIM))))
    return sim.argv(timing_command(v, model, 1, str(engine), str(tmp_path / "t.json"), timing=FAST,
                                   trtexec=str(SIM)))


def test_8_2_layout_is_the_real_8_2_1_logs(sim, tmp_path):
    real = (LOGS / "trt8_2_1_jetson_nano_culane_excerpt.log").read_text()
    ours = timed_run(sim, tmp_path, "8.2.1").stdout
    assert layout(ours, "Starting inference") == layout(real, "Starting inference")
    # The prologue's device block and version line, as the real one prints them.
    for label in ("Selected Device: ", "Compute Capability: ", "TensorRT version: 8.2.1"):
        assert label in ours


def test_8_5_plus_summary_layout(sim, tmp_path):
    real = (LOGS / "trt8_5plus_format_ptlflow_issue65_excerpt.log").read_text()
    for version in ("8.5.2", "8.6.2"):
        ours = timed_run(sim, tmp_path, version).stdout
        # The real excerpt stops inside its last line.
        assert layout(ours, "=== Performance summary ===")[:8] == layout(real, "=== Performance summary ===")[:8]
        report = parser.parse(ours)
        assert report.latency_ms.p90 is not None and report.trt_version == version


def test_10_x_summary_layout(sim, tmp_path, tiny_onnx):
    real = (LOGS / "trt10_16_rtx6000ada_hackathon_result01_excerpt.log").read_text()
    sim.configure("10.3.0")
    v = parse_version("10.3.0")
    model = OnnxModel(str(tiny_onnx))
    engine = tmp_path / "t.engine"
    ok(sim.argv(build_command(v, model, "fp16", 2, str(engine), trtexec=str(SIM))))
    proc = sim.argv(timing_command(v, model, 2, str(engine), str(tmp_path / "t.json"), timing=FAST, trtexec=str(SIM)))
    report = ok(proc)
    assert report.trt_version == "10.3.0" and report.gpu_compute_ms.p95 is not None
    # The real 10.16 summary adds two warnings (unstable GPU time, enqueue-bound) the stand-in never gives.
    real_shape = [line for line in layout(real, "=== Performance summary ===")
                  if not line.lstrip().startswith(("*", "If"))]
    assert layout(proc.stdout, "=== Performance summary ===") == real_shape


@pytest.mark.parametrize("version", ["8.2.1", "8.5.2", "8.6.2"])
def test_summary_agrees_with_its_export_times(sim, tmp_path, version):
    proc = timed_run(sim, tmp_path, version)
    summary = parser.parse(proc.stdout)
    text = (tmp_path / "t.json").read_text()
    times = parser.parse_export_times(text, warmup_ms=FAST.warmup_ms)
    for name in ("gpu_compute_ms", "latency_ms", "h2d_ms"):
        printed, computed = getattr(summary, name), getattr(times, name)
        for stat in ("min", "max", "mean", "median", "p99"):
            assert getattr(printed, stat) == pytest.approx(getattr(computed, stat), rel=1e-5), (name, stat)
    # 8.2's exporter writes the warm-up queries too; edgeprof drops them by --warmUp.
    written = len(json.loads(text))
    assert (written > times.iterations) == (version == "8.2.1")
    assert times.iterations == FAST.iterations


def test_timings_are_deterministic_per_engine(sim, tmp_path):
    first = timed_run(sim, tmp_path, "8.2.1")
    first_times = (tmp_path / "t.json").read_text()
    second = sim.argv(timing_command(parse_version("8.2.1"), alexnet(tmp_path), 1, str(tmp_path / "a.engine"),
                                     str(tmp_path / "t.json"), timing=FAST, trtexec=str(SIM)))
    assert (tmp_path / "t.json").read_text() == first_times
    assert parser.parse(first.stdout).gpu_compute_ms == parser.parse(second.stdout).gpu_compute_ms


# --- failures --------------------------------------------------------------------------------------------------

def test_caffe_parser_refuses_unknown_layers(sim, tmp_path):
    sim.configure("8.2.1")
    net = tmp_path / "custom.prototxt"
    net.write_text(resolve("alexnet").text.replace('type: "LRN"', 'type: "Python"'))
    proc = sim.run(f"--deploy={net}", "--output=prob", "--batch=1", f"--saveEngine={tmp_path / 'e'}", "--buildOnly")
    assert "could not parse layer type Python\n" in proc.stdout
    assert failed(proc) == "could not parse layer type Python"
    assert "[E] Failed to create engine from model.\n" in proc.stderr
    sim.configure("8.6.2")
    assert "[E] Failed to create engine from model or file.\n" in sim.run(
        f"--deploy={net}", "--output=prob", "--skipInference").stderr


def test_missing_output_blob(sim, tmp_path):
    sim.configure("8.2.1")
    proc = sim.run(f"--deploy={alexnet(tmp_path).prototxt}", "--output=nope", "--buildOnly")
    assert "[E] Could not find output blob nope\n" in proc.stderr and proc.returncode == 1


def test_tx2_has_no_dla(sim, tmp_path):
    sim.configure("8.2.1", "tx2")
    argv = build_command(parse_version("8.2.1"), alexnet(tmp_path), "fp16", 1, str(tmp_path / "e"), dla_core=0,
                         trtexec=str(SIM))
    assert failed(sim.argv(argv)) == "Cannot create DLA engine, 0 not available"


@pytest.mark.parametrize("version, gpu_layer", [("8.2.1", "prob"), ("8.5.2", "SOFTMAX: prob")])
def test_xavier_dla_with_gpu_fallback(sim, tmp_path, version, gpu_layer):
    sim.configure(version, "xavier")
    argv = build_command(parse_version(version), alexnet(tmp_path), "fp16", 1, str(tmp_path / "e"), dla_core=1,
                         trtexec=str(SIM))
    proc = sim.argv(argv)
    ok(proc)
    assert layer_placement(proc.stdout) == {"dla": ["{ForeignNode[conv1 + relu1...fc8]}"], "gpu": [gpu_layer]}
    assert failed(sim.argv([a for a in argv if a != "--allowGPUFallback"])).startswith(
        "Error[2]: Error Code 2: Internal Error (Assertion allowGPUFallback failed. Layer 'prob'")
    assert failed(sim.argv([a.replace("--useDLACore=1", "--useDLACore=2") for a in argv])) == \
        "Cannot create DLA engine, 2 not available"


def test_engine_of_another_version_is_refused(sim, tmp_path, tiny_onnx):
    sim.configure("8.2.1")
    model = OnnxModel(str(tiny_onnx))
    ok(sim.argv(build_command(parse_version("8.2.1"), model, "fp32", 2, str(tmp_path / "e"), trtexec=str(SIM))))
    sim.configure("10.3.0")
    argv = timing_command(parse_version("10.3.0"), model, 2, str(tmp_path / "e"), str(tmp_path / "t"), timing=FAST,
                          trtexec=str(SIM))
    assert "Engine deserialization failed." in failed(sim.argv(argv))
    assert "[E] Error opening engine file: " in sim.run("--loadEngine=/nonexistent.engine").stderr


# --- ONNX files above the parser's opset (edgeprof/models/onnx_versions.py's docstring says what real parsers do) --

def onnx_file(tmp_path, name, op, opset, ir_version=None):
    """input -> Conv -> `op` (Relu or LayerNormalization) -> output, stamped with `opset` (and `ir_version`)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.1] * 108)]
    inputs = ["c"]
    if op == "LayerNormalization":
        inits += [helper.make_tensor("scale", TensorProto.FLOAT, [14], [1.0] * 14),
                  helper.make_tensor("bias", TensorProto.FLOAT, [14], [0.0] * 14)]
        inputs += ["scale", "bias"]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
         helper.make_node(op, inputs, ["output"], name="/norm/" + op)],
        name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 14, 14])], initializer=inits)
    model = helper.make_model(graph, producer_name="edgeprof-test", opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def build(sim, tmp_path, path):
    return sim.argv(build_command(TrtVersion(*map(int, sim.version.split("."))), OnnxModel(str(path)), "fp32", 1,
                                  str(tmp_path / "e.engine"), trtexec=str(SIM)))


@pytest.mark.parametrize("version", VERSIONS)
def test_an_opset_and_ir_above_the_parsers_are_built_as_the_real_parser_builds_them(sim, tmp_path, version):
    """The real parser checks neither (8.2-GA's ModelImporter.cpp): an opset-17, IR-9 Conv + Relu builds on 8.2.1."""
    sim.configure(version)
    sim.version = version
    report = ok(build(sim, tmp_path, onnx_file(tmp_path, "relu17", "Relu", 17, ir_version=9)))
    assert report.error is None


@pytest.mark.parametrize("version, builds", [("8.2.1", False), ("8.5.2", False), ("8.6.2", True), ("10.3.0", True)])
def test_an_operator_without_an_importer_fails_as_the_real_parser_fails(sim, tmp_path, version, builds):
    sim.configure(version)
    sim.version = version
    proc = build(sim, tmp_path, onnx_file(tmp_path, "ln17", "LayerNormalization", 17))
    if builds:
        ok(proc)
        return
    error = failed(proc)
    # The lines of the real logs (NVIDIA/TensorRT#2875, #1988, #3346), in their order.
    assert "No importer registered for op: LayerNormalization. Attempting to import as plugin." in proc.stdout
    assert "Searching for plugin: LayerNormalization, plugin_version: 1, plugin_namespace: " in proc.stdout
    assert re.search(r'\[E\] \[TRT\] ModelImporter\.cpp:\d+: While parsing node number 1 \[LayerNormalization -> '
                     r'"output"\]:', proc.stderr)
    assert ('In function importFallbackPluginImporter:\n[8] Assertion failed: creator && "Plugin not found, are the '
            'plugin name, version, and namespace correct?"') in proc.stderr
    assert proc.stderr.index("Failed to parse onnx file") < proc.stderr.index("Parsing model failed")
    assert error


def test_the_stand_ins_missing_importers_are_edgeprofs_table():
    from edgeprof.models.onnx_versions import OP_LIMITS, TENSORRT
    found = re.search(r"^NO_IMPORTER = (\{.*\})$", SIM.read_text(), re.M)
    stand_in = eval(found.group(1))   # a dict literal of the stand-in's source
    # The stand-in plays the versions it claims: every limit of edgeprof's table that falls among them.
    claimed = [tuple(map(int, v.split(".")[:2])) for v in VERSIONS]
    relevant = {op: first for op, first in OP_LIMITS[TENSORRT].items() if min(claimed) < first <= max(claimed)}
    assert stand_in == relevant
