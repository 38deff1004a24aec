"""The PyTorch build of a model exported to ONNX on the host, once per content.

The net is the one the PyTorch backend runs: edgeprof/onboard/'s torch_models and caffe_layers, imported here,
build it exactly as the PyTorch runner does on a board with its defaults (its command line, parse_args): CaffeNet from the netspec of the prototxt rewritten to the
batch, with seeded random weights (--seed, default 0) and BatchNorm statistics calibrated on a seeded image;
torchvision:NAME with seeded random weights; a TorchScript file with its own weights. So ONNX Runtime or
TensorRT and the PyTorch backend run the same weights, and their outputs can be compared (edgeprof.check).
The module and the input are converted to the precision as that runner converts them (fp16: the module
and the input in half, batch norms keeping float32 statistics), then `torch.onnx.export(dynamo=False)`
(the TorchScript exporter, which needs no onnxscript) traces it at that batch (static shapes) and
`onnx.checker.check_model` checks the file.

Cache: ${XDG_CACHE_HOME:-~/.cache}/edgeprof/onnx/, content-addressed:
    <sha256 of the file>.onnx   the model, renamed into place once complete
    keys/<key>.json             which file an export made, and its input and output names
The key is the sha256 of what decides the file's content: the netspec JSON (the TorchScript file's bytes;
the torchvision name and version), batch, precision, opset, IR version, torch version, seed, and the sha256 of
caffe_layers.py and torch_models.py, which define the layers, the random weights and the conversions. Boards keep
their copies under the same file names (edgeprof.backends.onnxruntime.runner), so on `local` the two caches are
one folder.

For a board (`target_for`, `export_for`): the opset and IR version come from what the board's runtime reads
(edgeprof.models.onnx_versions: probed version -> table), the opset capped at the highest torch's TorchScript
exporter writes; `--opset N` overrides the opset (the IR version still follows the board). The file is exported
at that opset and its IR version lowered to the reader's where torch writes a higher one (the IR number says
which file-format features a reader must know; onnx's checker checks the lowered file). A net
with an operator the board's version has no importer for is refused, naming the operator, its node and the
version that has it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendUnavailable, InputError
from ..onboard import source as source_text
from .catalog import ModelSource
from .netspec import UnsupportedLayer, netspec
from .onnx_versions import CEIL_POOLING_OPSET, Reader, unreadable
from .prototxt import parse, set_batch

MODEL_KINDS = ("prototxt", "torchvision", "torchscript")
PRECISIONS = ("fp32", "fp16")
DEFAULT_OPSET = 17
INSTALL_HINT = "pip install 'edgeprof[local]'"
# Expected from the exporter on every model: that dynamo=False is the legacy path (chosen, see above), and
# that strided slices (Caffe pooling's explicit padding) are not constant-folded.
_EXPECTED_WARNINGS = ("You are using the legacy TorchScript-based ONNX export", "Constant folding - Only steps=1")


class ExportError(InputError):
    """The model cannot be built or exported here; the message says why."""


@dataclass(frozen=True)
class ExportTarget:
    """The opset and IR version a board's file is written at, and why (for the result's record)."""
    opset: int
    ir_version: int | None     # None: as torch writes it
    chosen: str                # how the opset was chosen, in words
    reader: Reader | None = None


@dataclass
class OnnxExport:
    """A checked ONNX file of a model's PyTorch build, in the host's cache."""
    path: str                  # the .onnx file on the host
    sha256: str                # of the file
    opset: int
    ir_version: int            # of the file (lowered to the reader's where asked)
    batch: int
    precision: str
    input_names: list[str]
    output_names: list[str]
    cached: bool               # found in the cache: nothing was built or exported
    seed: int                  # of the random weights (prototxt, torchvision)
    torch_version: str         # of the host torch that built and exported it
    export_s: float | None     # building + exporting + checking; None when cached


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeprof" / "onnx"


def host_modules():
    """(torch, onnx, edgeprof/onboard/'s torch_models), or BackendUnavailable saying how to install them."""
    try:
        import onnx
        import torch
    except ImportError as e:
        raise BackendUnavailable(f"exporting to ONNX needs torch and onnx on this host ({e}): "
                                 f"{INSTALL_HINT}") from None
    from ..onboard import torch_models
    return torch, onnx, torch_models


def build(model: ModelSource, batch: int, seed: int = 0):
    """The PyTorch build of `model` as the PyTorch runner makes it with --seed `seed`: (torch_models.Model,
    the inputs as float32 CPU tensors: standard normal from seed + 1, the runner's default input)."""
    torch, _, torch_models = host_modules()
    from ..onboard.harness import RunnerError
    from ..onboard.torch_runner import parse_args
    with tempfile.TemporaryDirectory(prefix="edgeprof-export-") as work:
        if model.kind == "prototxt":
            spec_path = os.path.join(work, "net.json")
            with open(spec_path, "w") as f:
                json.dump(_netspec(model, batch), f)
            source = ["--spec", spec_path]
        elif model.kind == "torchvision":
            source = ["--torchvision", model.path.split(":", 1)[1]]
        elif model.kind == "torchscript":
            source = ["--torchscript", model.path]
        else:
            raise ExportError(f"{model.name} is a {model.kind} model; ONNX export builds {', '.join(MODEL_KINDS)}")
        args = parse_args([*source, "--batch", str(batch), "--seed", str(seed)])
        try:
            loaded = torch_models.load_model(args)
        except RunnerError as e:
            raise ExportError(f"{model.name}: torch {torch.__version__} on this host cannot build it: {e}") from None
        return loaded, torch_models.inputs(loaded.inputs, args, batch)


def exporter_max_opset() -> int:
    """The highest opset this host's torch writes with the TorchScript exporter (torch 2.13: 20). Read from
    torch's own constant, which torch.onnx.export checks opset_version against."""
    torch, _, _ = host_modules()
    from torch.onnx import _constants
    return _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET


def target_for(reader: Reader, opset: int | None = None) -> ExportTarget:
    """The file a board whose runtime is `reader` gets: its opset (capped at what the exporter writes) and IR
    version; `opset` (--opset) overrides the opset."""
    if opset is not None:
        return ExportTarget(opset, reader.ir_version, f"--opset {opset} (the board's {reader.runtime} "
                                                      f"{reader.version} reads opset {reader.opset})", reader)
    highest = exporter_max_opset()
    chosen = f"the board's {reader.runtime} {reader.version} reads opset {reader.opset} (table row {reader.row})"
    if highest < reader.opset:
        chosen += f"; torch's TorchScript exporter writes at most {highest}"
    return ExportTarget(min(reader.opset, highest), reader.ir_version, chosen, reader)


def export_for(model: ModelSource, batch: int, precision: str, target: ExportTarget, *, seed: int = 0) -> OnnxExport:
    """export_onnx at the target's opset and IR version, refused (ExportError) when the file holds an operator
    the target's runtime version has no importer for: each such operator named with its nodes and the first
    version that reads it."""
    exported = export_onnx(model, batch, precision, target.opset, seed=seed, ir_version=target.ir_version)
    if target.reader is not None:
        _, onnx, _ = host_modules()
        ops: dict[str, list[str]] = {}
        for node in onnx.load(exported.path, load_external_data=False).graph.node:
            ops.setdefault(node.op_type, []).append(node.name or node.output[0])
        missing = unreadable(target.reader, ops)
        if missing:
            raise ExportError(f"{model.name} at opset {target.opset} ({target.chosen}): " + "; ".join(missing)
                              + ". Export at a lower opset (drop --opset) or use a board with a newer version")
    return exported


def export_onnx(model: ModelSource, batch: int, precision: str = "fp32", opset: int = DEFAULT_OPSET, *,
                seed: int = 0, ir_version: int | None = None) -> OnnxExport:
    """`model` (a prototxt, torchvision:NAME or TorchScript source) as a checked ONNX file at `batch` and
    `precision` (fp32 or fp16), from the cache when this host exported the same content before. With
    `ir_version`, the file's IR version is lowered to it where torch writes a higher one.

    Raises ExportError when the model cannot be built, exported or checked, and BackendUnavailable when
    this host lacks torch or onnx."""
    if precision not in PRECISIONS:
        raise ExportError(f"ONNX export: precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    torch, onnx, torch_models = host_modules()
    key = _key(model, batch, precision, opset, ir_version, seed, torch.__version__)
    folder = cache_dir()
    entry = folder / "keys" / f"{key}.json"
    if entry.is_file():
        known = json.loads(entry.read_text())
        if (folder / f"{known['sha256']}.onnx").is_file():
            return OnnxExport(**known, path=str(folder / f"{known['sha256']}.onnx"), cached=True, export_s=None)

    started = time.perf_counter()
    loaded, inputs = build(model, batch, seed)
    _refuse_lossy_layers(model, loaded.net)
    _refuse_ceil_pooling_below_10(model, loaded.net, opset)
    _refuse_detector_below_11(model, loaded, opset)
    dtype = getattr(torch, torch_models.PRECISIONS[precision])
    net = torch_models.convert(loaded.net, dtype, False).eval()
    inputs = tuple(torch_models.to_net_format(x, dtype, False) for x in inputs)
    input_names = [decl["name"] for decl in loaded.inputs]
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            try:
                # CaffeNet names its outputs; torchvision and TorchScript outputs are named as the runner
                # names them ("output", "output0"...), which takes one forward to count them.
                output_names = loaded.returns or torch_models.output_names(net(*inputs))
                # A TorchScript module is exported as itself (the exporter flattens its outputs as
                # FlatOutputs does): a trace cannot enter a loaded ScriptModule from a wrapper.
                traced = net
                if isinstance(net, torch_models.FlatOutputs) and isinstance(net.model, torch.jit.ScriptModule):
                    traced = net.model
                torch.onnx.export(traced, inputs, partial, input_names=input_names, output_names=output_names,
                                  opset_version=opset, dynamo=False)
            except Exception as e:
                raise ExportError(f"torch {torch.__version__} cannot export {model.name} ({precision}) to ONNX "
                                  f"opset {opset}: {type(e).__name__}: {str(e).strip()[:500]}") from None
        written = onnx.load(partial)
        if ir_version is not None and written.ir_version > ir_version:
            written.ir_version = ir_version
        name_nodes_by_layer(written, loaded.net)
        onnx.save(written, partial)
        try:
            onnx.checker.check_model(partial)
        except onnx.checker.ValidationError as e:
            raise ExportError(f"the ONNX export of {model.name} fails onnx {onnx.__version__}'s checker: "
                              f"{str(e).strip()[:500]}") from None
        sha = _file_sha256(partial)
        os.replace(partial, folder / f"{sha}.onnx")
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    known = {"sha256": sha, "opset": opset, "ir_version": written.ir_version, "batch": batch, "precision": precision, "input_names": input_names,
             "output_names": list(output_names), "seed": seed, "torch_version": torch.__version__}
    _write_atomically(entry, json.dumps(known))
    return OnnxExport(**known, path=str(folder / f"{sha}.onnx"), cached=False,
                     export_s=time.perf_counter() - started)


# The metadata entry holding {node name: [the Caffe layers it computes]} (edgeprof.models.onnx_layers reads it).
NODE_LAYERS_KEY = "edgeprof.node_layers"
_LAYER_SCOPE = re.compile(r"/layers\.(\d+)/(.*)")


def name_nodes_by_layer(model, net) -> None:
    """Rename the top-level nodes of a CaffeNet's export after the Caffe layers they compute, and record which
    layers each node computes in the model's metadata (NODE_LAYERS_KEY), so that a runtime's per-node profile
    (ONNX Runtime's) reads in the prototxt's names. torch's TorchScript exporter names a node after the module path it came from
    ("/layers.3/conv/Conv": CaffeNet.layers[3]); the rename keeps the rest of the path ("conv1/conv/Conv").
    A BatchNorm folded with its Scale (caffe_layers._foldable) computes both layers. Other models (torchvision,
    TorchScript) keep torch's names."""
    layers = getattr(net, "layers", None)
    if layers is None:
        return
    covered = {}
    for node in model.graph.node:
        found = _LAYER_SCOPE.fullmatch(node.name)
        if found is None or int(found.group(1)) >= len(layers):
            continue
        module = layers[int(found.group(1))]
        node.name = f"{module.caffe_name}/{found.group(2)}"
        covered[node.name] = [module.caffe_name] + [m.caffe_name for m in getattr(module, "folded", [])]
    entry = model.metadata_props.add()
    entry.key, entry.value = NODE_LAYERS_KEY, json.dumps(covered)


def _refuse_lossy_layers(model: ModelSource, net) -> None:
    """torch's TorchScript exporter drops avg_pool2d's divisor_override (torch 2.13: a plain AveragePool,
    which divides by the kernel area): the runner's AVE pooling with Caffe's own divisors (explicit padding,
    see its Pooling) would export as other values. Refused rather than exported wrong."""
    from ..onboard.caffe_layers import Pooling
    lossy = [m.caffe_name for m in getattr(net, "layers", []) if isinstance(m, Pooling)
             and not m.is_max and m.explicit_pad is not None]
    if lossy:
        raise ExportError(f"{model.name}: AVE pooling {', '.join(lossy)} divides by Caffe's clipped window sizes, "
                          f"which torch's ONNX exporter drops (avg_pool2d's divisor_override): the ONNX file "
                          f"would compute other values")


def _refuse_ceil_pooling_below_10(model: ModelSource, net, opset: int) -> None:
    """ONNX pooling rounds up (ceil_mode) only from opset 10 (MaxPool-10, AveragePool-10): below it a net
    with Caffe's rounding cannot be written, which torch would report as an export failure."""
    if opset >= CEIL_POOLING_OPSET:
        return
    from ..onboard.caffe_layers import Pooling
    rounded = [m.caffe_name for m in getattr(net, "layers", []) if isinstance(m, Pooling) and m.ceil_mode]
    if rounded:
        raise ExportError(f"{model.name}: pooling {', '.join(rounded)} rounds its output size up (Caffe's rule), "
                          f"which ONNX pooling has from opset {CEIL_POOLING_OPSET} (ceil_mode); opset {opset} "
                          f"cannot hold it: use a runtime that reads opset {CEIL_POOLING_OPSET} or newer")


# torchvision's detectors export from opset 11: torchvision registers the ONNX symbolics of its NMS and RoIAlign
# at opset 11 and later (torchvision/ops/_register_onnx_ops.py), and the transform's padding to a common size
# needs Pad with sizes computed in the graph, which ONNX has from Pad-11.
DETECTOR_OPSET = 11


def _refuse_detector_below_11(model: ModelSource, loaded, opset: int) -> None:
    if loaded.detector is not None and opset < DETECTOR_OPSET:
        raise ExportError(f"{model.name}: torchvision's detectors export to ONNX from opset {DETECTOR_OPSET} (its NMS "
                          f"and RoIAlign, and the transform's padding with computed sizes); opset {opset} cannot hold "
                          f"them: use a runtime that reads opset {DETECTOR_OPSET} or newer")


def _netspec(model: ModelSource, batch: int) -> dict:
    try:
        return netspec(parse(set_batch(model.text, batch, model.path), model.path))
    except UnsupportedLayer as e:
        raise ExportError(str(e)) from None


def _key(model: ModelSource, batch: int, precision: str, opset: int, ir_version: int | None, seed: int,
         torch_version: str) -> str:
    if model.kind == "prototxt":
        source = hashlib.sha256(json.dumps(_netspec(model, batch), sort_keys=True).encode()).hexdigest()
    elif model.kind == "torchvision":
        # Random torchvision weights depend on torchvision's version too.
        try:
            import torchvision
        except ImportError as e:
            raise ExportError(f"{model.name}: torchvision does not import on this host ({e}): pip install "
                              f"torchvision (the release matching torch {torch_version})") from None
        source = f"{model.sha256} torchvision {torchvision.__version__}"
    else:
        source = model.sha256
    builder = (source_text("caffe_layers.py") + source_text("torch_models.py")).encode()
    # node_names: 2 since nodes are named after their Caffe layers (name_nodes_by_layer).
    described = {"node_names": 2, "source": source, "kind": model.kind, "batch": batch, "precision": precision,
                 "opset": opset, "ir_version": ir_version, "torch": torch_version, "seed": seed,
                 "runner": hashlib.sha256(builder).hexdigest()}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    handle, partial = tempfile.mkstemp(prefix=".", dir=path.parent)
    with os.fdopen(handle, "w") as f:
        f.write(text)
    os.replace(partial, path)
