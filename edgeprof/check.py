"""`edgeprof check`: is the PyTorch build of a prototxt the network Caffe runs? Same weights, same input,
compare the outputs.

On one board with both pycaffe and torch: the PyTorch runner builds the net with seeded random weights
(BatchNorm statistics calibrated so deep nets keep unit-scale activations), saves those weights and the
input, and dumps its outputs; edgeprof/onboard/pycaffe_forward.py (uploaded with the runners) loads the same weights and input into caffe.Net (TEST
phase, CPU) and dumps Caffe's. The host compares them per blob: relative error = max |torch - caffe| /
max |caffe|. The last InnerProduct's output is compared too, since a softmax can hide differences.
Timing plays no part, so the board's clocks are not touched.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .backends import BackendUnavailable, Options
from .backends.onnxruntime import runner as onnxruntime_runner
from .backends.onnxruntime.runner import CPU, OnnxRuntimeBackend, upload_model
from .backends.pytorch import runner as pytorch_runner
from .backends.pytorch.runner import PyTorchBackend
from .models.netspec import netspec
from .models.stats import caffe_lacks_fork_layers
from .models.onnx_export import build, export_for, target_for
from .models.onnx_versions import ONNXRUNTIME, reader
from .onboard.tensors import read_tensors, relative_error, write_tensors
from .devices import Device, get_device
from .models import parse, resolve, set_batch
from .board import Board, open_board
from .session import MeasureError
from .transport import CommandResult

DEFAULT_TOLERANCE = 1e-4


@dataclass
class CheckReport:
    device: str
    model: str
    batch: int
    seed: int
    tolerance: float
    errors: dict = field(default_factory=dict)        # blob -> relative error
    shapes: dict = field(default_factory=dict)        # blob -> shape
    versions: dict = field(default_factory=dict)
    commands: list = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max(self.errors.values())

    @property
    def passed(self) -> bool:
        return self.max_error <= self.tolerance

    def to_dict(self) -> dict:
        return {"device": self.device, "model": self.model, "batch": self.batch, "seed": self.seed,
                "tolerance": self.tolerance, "max_relative_error": self.max_error, "passed": self.passed,
                "relative_errors": self.errors, "shapes": self.shapes, "versions": self.versions,
                "method": "relative error = max |torch - caffe| / max |caffe| per blob; pycaffe TEST phase "
                          "on the CPU; PyTorch build in float32 on the CPU; same seeded random weights "
                          "and standard-normal input",
                "commands": self.commands}


def check(device: str | Device, model: str, *, batch: int = 1, seed: int = 1,
          tolerance: float = DEFAULT_TOLERANCE, inventory: str | None = None,
          accept_new_host_key: bool = False) -> CheckReport:
    """Run `model` (a catalog name or deploy prototxt) in pycaffe and in edgeprof's PyTorch build on
    `device` with identical weights and input; return the per-blob relative errors.

    Raises MeasureError for a model that is not a prototxt, BackendUnavailable when the board lacks
    torch or pycaffe, and what edgeprof.session.measure raises for bad models or unreachable boards."""
    source = resolve(model)
    if source.kind != "prototxt":
        raise MeasureError(f"check compares against Caffe, so it needs a prototxt model; {model} is "
                           f"{source.kind}")
    deploy = set_batch(source.text, batch, source.path)
    spec = netspec(parse(deploy, source.path))
    inner_products = [layer["tops"][0] for layer in spec["layers"] if layer["type"] == "InnerProduct"]
    extra = [b for b in inner_products[-1:] if b not in {o["name"] for o in spec["outputs"]}]
    if isinstance(device, str):
        device = get_device(device, inventory)
    report = CheckReport(device.name, source.name, batch, seed, tolerance)

    with open_board(device, run_id="check", accept_new_host_key=accept_new_host_key) as board:
        torch_facts = PyTorchBackend().prepare(board)
        python = torch_facts["python"]
        found = board.run([python, "-c", "import caffe, numpy; print(numpy.__version__)"], timeout=120)
        if not found.ok:
            raise BackendUnavailable(
                f"pycaffe is not importable by {python} on {device.name} ({found.stderr.strip()[-300:]}): "
                f"Debian/Ubuntu: apt-get install python3-caffe-cpu; a source build: make pycaffe and put "
                f"caffe/python on that Python's path")
        report.versions = {"torch": torch_facts["torch"], "numpy": found.stdout.strip(),
                           "python": torch_facts["python_version"]}
        work = board.workdir
        board.put_text(f"{work}/deploy.prototxt", deploy)
        board.put_text(f"{work}/net.json", json.dumps(spec))
        steps = [
            (_torch_argv(torch_facts, work, batch)
             + ["--seed", str(seed), "--save-weights", f"{work}/weights.f32", "--save-input", f"{work}/input.f32",
                "--dump-output", f"{work}/torch.f32"] + (["--dump-blobs", ",".join(extra)] if extra else []), {}),
            ([python, f"{work}/pycaffe_forward.py", f"{work}/deploy.prototxt", f"{work}/weights.f32",
              f"{work}/input.f32", f"{work}/caffe.f32", *extra], {"GLOG_minloglevel": "2"}),
        ]
        # Debian's Caffe lacks the forks' layers: say so, naming them, rather than show protobuf's parse error.
        _run_steps(board, steps, report, lambda log: caffe_lacks_fork_layers(parse(deploy, source.path), log))
        ours = read_tensors(board.get_bytes(f"{work}/torch.f32"))
        theirs = read_tensors(board.get_bytes(f"{work}/caffe.f32"))
    return _compare(report, ("PyTorch", ours), ("Caffe", theirs))


def _torch_argv(facts: dict, work: str, batch: int) -> list[str]:
    """The PyTorch runner's command for the netspec in `work`, on the CPU, computing outputs only."""
    return pytorch_runner.runner_argv(facts["python"], facts["runner"], ["--spec", f"{work}/net.json"], "cpu", batch,
                                      Options(iterations=0))


def _run_steps(board: Board, steps: list[tuple[list[str], dict]], report: CheckReport,
               explain=lambda log: None) -> CommandResult:
    """Run (argv, env) steps in order, each recorded in the report; a failing one is an error naming its
    script, with explain(its output) when that has something to say. Returns the last step's result."""
    for argv, env in steps:
        run = board.run(argv, env=env, timeout=1800)
        report.commands.append(run.to_dict())
        if not run.ok:
            output = run.stdout + run.stderr
            raise MeasureError(f"{argv[1].rsplit('/', 1)[-1]} failed on {board.device.name} (status "
                               f"{run.exit_status}): {explain(output) or output.strip()[-800:]}")
    return run


def _compare(report: CheckReport, ours: tuple[str, dict], reference: tuple[str, dict]) -> CheckReport:
    """Fill the report's per-output shapes and relative errors of `ours` against `reference`, each a
    (framework name, tensors by name) pair; different output names or shapes are an error, not a figure."""
    (our_name, our_tensors), (their_name, their_tensors) = ours, reference
    if list(our_tensors) != list(their_tensors):
        raise MeasureError(f"the two builds name different outputs: {our_name} {list(our_tensors)}, "
                           f"{their_name} {list(their_tensors)}")
    for name, (shape, values) in our_tensors.items():
        if shape != their_tensors[name][0]:
            raise MeasureError(f"output {name!r}: {our_name} shape {shape}, {their_name} shape "
                               f"{their_tensors[name][0]}")
        report.shapes[name] = shape
        report.errors[name] = relative_error(values, their_tensors[name][1])
    return report


@dataclass
class OnnxRuntimeCheckReport(CheckReport):
    onnx: dict = field(default_factory=dict)          # the file compared: sha256, opset, providers used

    def to_dict(self) -> dict:
        return {**super().to_dict(), "onnx": self.onnx,
                "method": "relative error = max |onnxruntime - torch| / max |torch| per output; the PyTorch "
                          "build in float32 and its ONNX export (fp32, exported on the host) on the board's "
                          "CPU, ONNX Runtime's CPU provider; the seeded random weights the host built, in the "
                          "ONNX file and as a tensor file for the PyTorch runner, and the same standard-normal "
                          "input"}


def check_onnxruntime(device: str | Device, model: str, *, batch: int = 1, seed: int = 0,
                      tolerance: float = DEFAULT_TOLERANCE, inventory: str | None = None,
                      accept_new_host_key: bool = False) -> OnnxRuntimeCheckReport:
    """Run `model` (a catalog name or deploy prototxt) in edgeprof's PyTorch build and in ONNX Runtime from
    its ONNX export, on `device`, with identical weights and input; return the per-output relative errors.

    The host builds the net once more as the export did (same seed) and writes its weights and input as
    tensor files: the board's PyTorch runner loads them (--weights, --input), so the comparison holds even
    where the board's torch would draw other random weights than the host's; ONNX Runtime gets the input.

    Raises MeasureError for a model that is not a prototxt (--weights is about Caffe blobs),
    BackendUnavailable when the host cannot export or the board lacks torch or onnxruntime, ExportError when
    the model does not export, and what edgeprof.session.measure raises for bad models or unreachable boards."""
    source = resolve(model)
    if source.kind != "prototxt":
        raise MeasureError(f"check_onnxruntime gives both runners the same Caffe blobs, so it needs a prototxt "
                           f"model; {model} is {source.kind}")
    loaded, inputs = build(source, batch, seed)
    if isinstance(device, str):
        device = get_device(device, inventory)
    report = OnnxRuntimeCheckReport(device.name, source.name, batch, seed, tolerance)

    with open_board(device, run_id="check", accept_new_host_key=accept_new_host_key) as board:
        torch_facts = PyTorchBackend().prepare(board)
        ort_facts = OnnxRuntimeBackend().prepare(board)
        # The file the board's onnxruntime reads, as the backend exports it (edgeprof.models.onnx_versions).
        exported = export_for(source, batch, "fp32", target_for(reader(ONNXRUNTIME, ort_facts["onnxruntime"])),
                              seed=seed)
        report.onnx = {"sha256": exported.sha256, "opset": exported.opset, "ir_version": exported.ir_version,
                       "exported_with": f"torch {exported.torch_version}"}
        report.versions = {"torch": torch_facts["torch"], "onnxruntime": ort_facts["onnxruntime"],
                           "python": torch_facts["python_version"]}
        work = board.workdir
        board.put_text(f"{work}/net.json", json.dumps(netspec(parse(set_batch(source.text, batch, source.path),
                                                                    source.path))))
        with tempfile.TemporaryDirectory(prefix="edgeprof-check-") as host_work:
            for name, entries in (("weights.f32", [({"name": layer, "blob": i}, blob)
                                                   for layer, blobs in loaded.net.named_blobs()
                                                   for i, blob in enumerate(blobs)]),
                                  ("input.f32", [({"name": d["name"]}, x) for d, x in zip(loaded.inputs, inputs)])):
                write_tensors(f"{host_work}/{name}", entries)
                board.put_bytes(f"{work}/{name}", Path(f"{host_work}/{name}").read_bytes())
        model_path, _ = upload_model(board, ort_facts["cache"], exported)
        steps = [
            _torch_argv(torch_facts, work, batch) + ["--weights", f"{work}/weights.f32", "--input",
                                                     f"{work}/input.f32", "--dump-output", f"{work}/torch.f32"],
            onnxruntime_runner.runner_argv(ort_facts, model_path, [CPU], Options(iterations=0))
            + ["--input", f"{work}/input.f32", "--dump-output", f"{work}/ort.f32"],
        ]
        run = _run_steps(board, [(argv, {}) for argv in steps], report)
        report.onnx["providers_used"] = json.loads(run.stdout.strip().splitlines()[-1])["providers_used"]
        theirs = read_tensors(board.get_bytes(f"{work}/torch.f32"))
        ours = read_tensors(board.get_bytes(f"{work}/ort.f32"))
    return _compare(report, ("ONNX Runtime", ours), ("PyTorch", theirs))


__all__ = ["CheckReport", "DEFAULT_TOLERANCE", "OnnxRuntimeCheckReport", "check", "check_onnxruntime"]
