"""Writing a bundle: the results asked for (with the runs of any --repeat summary among them), their logs, the
model files this host still has with the recorded hashes, reproduce.sh and the manifest."""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

from ..board import now
from ..models.onnx_export import cache_dir as onnx_cache_dir
from ..result import Result
from ..storage import SQLStore
from . import reproduce
from .layout import (FORMAT, FORMAT_VERSION, MANIFEST, MODEL_FILE_LIMIT_MB, REPRODUCE, BundleError, identity,
                     log_member, model_member, result_member)


@dataclass
class ModelFile:
    """One model file the results name: included in the bundle, or listed with why not."""
    sha256: str
    kind: str                   # prototxt, torchscript, onnx
    path: str                   # where the results say it was
    member: str | None = None   # its name in the bundle when included
    bytes: int | None = None
    note: str = ""
    result_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "kind": self.kind, "path": self.path, "file": self.member,
                "bytes": self.bytes, "note": self.note, "result_ids": self.result_ids}


@dataclass
class BundleSummary:
    """What write_bundle wrote, for the command's message."""
    path: str
    results: list[Result]
    models: list[ModelFile]
    bytes: int


def select(store: SQLStore, result_ids: Sequence[int] = (), run_ids: Sequence[str] = ()) -> list[Result]:
    """The results named by id or run, in id order, with the runs of every --repeat summary among them;
    BundleError naming what is not in the store."""
    if not result_ids and not run_ids:
        raise BundleError("name the results to bundle: result ids (edgeprof results list) or --run RUN_ID")
    found = {}
    for run_id in run_ids:
        in_run = store.query(run_id=run_id)
        if not in_run:
            raise BundleError(f"no results of run {run_id} in {store.location}; see `edgeprof results list`")
        found.update((r.id, r) for r in in_run)
    wanted = list(result_ids)
    while wanted:
        result_id = wanted.pop()
        if result_id in found:
            continue
        result = store.get(result_id)
        if result is None:
            raise BundleError(f"no result {result_id} in {store.location}; see `edgeprof results list`")
        found[result_id] = result
        if result.repeat and result.repeat.get("summary"):
            wanted += [i for i in result.repeat.get("result_ids") or [] if type(i) is int]
    return [found[i] for i in sorted(found)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _candidates(result: Result) -> list[tuple[str, str, str]]:
    """(sha256, kind, path on this host) of each model file a result names: its prototxt or TorchScript
    file, and the ONNX export it ran (in the host's export cache, named by its hash): ONNX Runtime records it
    in model_info.onnx, TensorRT in its figures' model."""
    info, found = result.model_info, []
    if info.get("kind") in ("prototxt", "torchscript") and isinstance(info.get("sha256"), str) \
            and isinstance(info.get("path"), str):
        found.append((info["sha256"], info["kind"], info["path"]))
    for onnx in (info.get("onnx"), result.figures.get("model")):
        if isinstance(onnx, dict) and onnx.get("kind", "onnx") == "onnx" and isinstance(onnx.get("sha256"), str) \
                and re.fullmatch(r"[0-9a-f]{64}", onnx["sha256"]):
            found.append((onnx["sha256"], "onnx", str(onnx_cache_dir() / f"{onnx['sha256']}.onnx")))
    return found


def _model_file(sha256: str, kind: str, path: str, limit: int) -> tuple[ModelFile, bytes | None]:
    """The file at `path` if it still has the recorded hash and fits the limit; else why not."""
    model = ModelFile(sha256, kind, path)
    try:
        size = os.stat(path).st_size
    except OSError as e:
        model.note = f"not included: not on this host ({e.strerror})"
        return model, None
    model.bytes = size
    if size > limit:
        model.note = f"not included: {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit (--max-file-mb)"
        return model, None
    data = Path(path).read_bytes()
    if _sha256(data) != sha256:
        model.note = f"not included: the file at this path has changed since (sha256 now {_sha256(data)})"
        return model, None
    model.member = model_member(sha256, Path(path).name)
    return model, data


def _models(results: list[Result], limit: int) -> tuple[list[ModelFile], dict[str, bytes]]:
    models: dict[str, ModelFile] = {}
    contents: dict[str, bytes] = {}
    for result in results:
        for sha256, kind, path in _candidates(result):
            if sha256 not in models:
                models[sha256], data = _model_file(sha256, kind, path, limit)
                if data is not None:
                    contents[models[sha256].member] = data
            models[sha256].result_ids.append(result.id)
    return list(models.values()), contents


def _edgeprof_version() -> str:
    try:
        return f"edgeprof {version('edgeprof')}"
    except PackageNotFoundError:
        return "edgeprof (version unknown: not installed as a package)"


def _result_entry(result: Result) -> dict:
    return {"id": result.id, "run_id": result.run_id, "device": result.device, "model": result.model,
            "backend": result.backend, "batch": result.batch, "status": result.status,
            "model_sha256": result.model_info.get("sha256"), "power_mode": result.state.get("power_mode"),
            "versions": result.state.get("versions"), "identity": identity(result),
            # A TensorRT engine stays in the cache of the board that built it (it only runs on that GPU and
            # TensorRT version); how it was built is what travels.
            "engine_build": result.figures.get("engine_build"),
            "file": result_member(result.id), "log": log_member(result.id)}


def _member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    return info, io.BytesIO(data)


def write_bundle(results: list[Result], output: str | os.PathLike, *,
                 max_file_mb: float = MODEL_FILE_LIMIT_MB) -> BundleSummary:
    """Write `results` (stored ones: each has an id) as a bundle at `output` (a .tar.gz), replacing it whole
    once complete. Model files over max_file_mb are listed by hash only."""
    made_by = _edgeprof_version()
    models, contents = _models(results, int(max_file_mb * 1e6))
    for result in results:
        contents[result_member(result.id)] = json.dumps(
            {k: v for k, v in result.to_dict(full=True).items() if k != "raw_log"}, indent=1).encode()
        contents[log_member(result.id)] = result.raw_log.encode()  # the loader replaced any lone surrogate
    included = {m.sha256: m.member for m in models if m.member}
    contents[REPRODUCE] = reproduce.script(results, included, made_by).encode()
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": now(), "created_by": made_by,
                "host": {"python": platform.python_version(), "platform": platform.platform()},
                "results": [_result_entry(r) for r in results], "models": [m.to_dict() for m in models],
                "members": {name: {"sha256": _sha256(data), "bytes": len(data)}
                            for name, data in sorted(contents.items())}}
    output = Path(output)
    try:
        handle = tempfile.NamedTemporaryFile(dir=output.parent, prefix=f".{output.name}.", delete=False)
    except OSError as e:
        raise BundleError(f"cannot write {output}: {e.strerror or e}") from None
    try:
        with handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
            tar.addfile(*_member(MANIFEST, json.dumps(manifest, indent=1).encode()))
            for name, data in contents.items():
                tar.addfile(*_member(name, data, 0o755 if name == REPRODUCE else 0o644))
        os.replace(handle.name, output)
    except OSError as e:
        Path(handle.name).unlink(missing_ok=True)
        raise BundleError(f"cannot write {output}: {e.strerror or e}") from None
    return BundleSummary(str(output), results, models, output.stat().st_size)
