"""Reading a bundle that may come from anyone, and importing its results.

A tarball can hold what extraction tools have been tricked with: absolute names, "..", links, devices,
members of gigabytes, and JSON that is not what it claims. Nothing here is extracted to disk: each member is
checked by its header (a regular file, a name write_bundle gives, within the size limits, not seen before)
and read into memory or hashed, and every check of the whole bundle (the manifest lists exactly the members,
with their sha256; each result document loads as edgeprof's loader would store it, unchanged) passes before
import_bundle writes anything, in one transaction. Any failure is a BundleError naming the member and what
is wrong with it.
"""
from __future__ import annotations

import hashlib
import json
import tarfile
import zlib
from dataclasses import dataclass, field

from ..result import Result
from ..storage import SQLStore
from ..storage.documents import UNUSABLE_FLAG, load_result
from .layout import FORMAT, FORMAT_VERSION, MANIFEST, MEMBER_NAME, BundleError, identity

CHUNK = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """Sizes a bundle's members may have (bytes as the tar headers give them)."""
    document_bytes: int = 64 << 20     # manifest, a result's JSON, a log, reproduce.sh: read into memory
    file_bytes: int = 2 << 30          # a model file: only hashed
    total_bytes: int = 8 << 30
    members: int = 100_000


@dataclass
class Bundle:
    path: str
    manifest: dict
    results: list[tuple[int, Result]]      # (the id it had where it was bundled, the result)


@dataclass
class ImportReport:
    bundle: Bundle
    added: list[tuple[int, int]] = field(default_factory=list)        # (id in the bundle, new id)
    duplicates: list[tuple[int, int]] = field(default_factory=list)   # (id in the bundle, id already stored)


def _refuse(path: str, what: str) -> BundleError:
    return BundleError(f"{path}: refused, nothing imported: {what}")


def _check_header(path: str, member: tarfile.TarInfo, seen: set[str], limits: ReadLimits) -> None:
    name = member.name
    if name.startswith("/"):
        raise _refuse(path, f"member {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise _refuse(path, f"member {name!r} climbs out of the bundle with '..'")
    if member.issym() or member.islnk():
        raise _refuse(path, f"member {name!r} is a {'symbolic' if member.issym() else 'hard'} link "
                            f"(to {member.linkname!r}); a bundle holds regular files only")
    if not member.isreg() or member.issparse():
        raise _refuse(path, f"member {name!r} is not a regular file (tar type {member.type!r})")
    if not MEMBER_NAME.fullmatch(name):
        raise _refuse(path, f"member {name!r} is not a file edgeprof puts in a bundle")
    if name in seen:
        raise _refuse(path, f"member {name!r} appears twice")
    limit = limits.file_bytes if "/models/" in name else limits.document_bytes
    if member.size > limit:
        raise _refuse(path, f"member {name!r} is {member.size} bytes, over the limit of {limit}")


def _members(path: str, limits: ReadLimits) -> dict[str, tuple[str, int, bytes | None]]:
    """name -> (sha256, size, content: None for model files, which are only hashed)."""
    found: dict[str, tuple[str, int, bytes | None]] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                _check_header(path, member, found.keys(), limits)
                total += member.size
                if len(found) >= limits.members or total > limits.total_bytes:
                    raise _refuse(path, f"more than {limits.members} members or {limits.total_bytes} bytes")
                found[member.name] = _read(tar, member)
    except (tarfile.TarError, zlib.error, EOFError) as e:
        raise _refuse(path, f"not a readable .tar.gz ({e})") from None
    except OSError as e:
        raise BundleError(f"{path}: cannot read it ({e.strerror or e})") from None
    return found


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[str, int, bytes | None]:
    digest, size, kept = hashlib.sha256(), 0, []
    stream = tar.extractfile(member)
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if "/models/" not in member.name:
            kept.append(chunk)
    return digest.hexdigest(), size, None if "/models/" in member.name else b"".join(kept)


def _json(path: str, name: str, data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _refuse(path, f"{name} is not valid JSON ({str(e)[:200]})") from None


def _manifest(path: str, members: dict) -> dict:
    if MANIFEST not in members:
        raise _refuse(path, f"no {MANIFEST}; is it an edgeprof bundle (edgeprof bundle -o FILE)?")
    manifest = _json(path, MANIFEST, members[MANIFEST][2])
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _refuse(path, f"{MANIFEST} is not an edgeprof bundle manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _refuse(path, f"bundle format version {manifest.get('format_version')!r}; this edgeprof reads "
                            f"version {FORMAT_VERSION} (upgrade edgeprof for a newer one)")
    listed = manifest.get("members")
    if not isinstance(listed, dict) or not isinstance(manifest.get("results"), list):
        raise _refuse(path, f"{MANIFEST} has no members object or results list")
    for name in sorted(set(listed) | set(members) - {MANIFEST}):
        entry = listed.get(name)
        if name not in members:
            raise _refuse(path, f"{name} is in the manifest but not in the bundle")
        if not isinstance(entry, dict) or entry.get("sha256") != members[name][0] \
                or entry.get("bytes") != members[name][1]:
            raise _refuse(path, f"{name} does not match the sha256 and size the manifest gives for it"
                          if entry is not None else f"{name} is not in the manifest")
    return manifest


def _result(path: str, entry, members: dict) -> tuple[int, Result]:
    """One manifest result entry, loaded and checked to be what was bundled."""
    if not isinstance(entry, dict) or type(entry.get("id")) is not int or not isinstance(entry.get("file"), str) \
            or not isinstance(entry.get("log"), str) or entry["file"] not in members or entry["log"] not in members:
        raise _refuse(path, f"manifest result entry {json.dumps(entry)[:120]} does not name its files")
    doc = _json(path, entry["file"], members[entry["file"]][2])
    if not isinstance(doc, dict):
        raise _refuse(path, f"{entry['file']} is not a JSON object")
    columns = {k: doc.get(k) if isinstance(doc.get(k), str) else "" for k in ("run_id", "device", "model", "backend")}
    row = {**columns, "id": None, "batch": doc.get("batch"), "status": doc.get("status"), "error": doc.get("error"),
           "commands": json.dumps(doc.pop("commands", [])), "prototxt_diff": doc.pop("prototxt_diff", ""),
           "raw_log": members[entry["log"]][2].decode("utf-8", "surrogateescape"), "doc": json.dumps(doc)}
    if not isinstance(row["prototxt_diff"], str):
        raise _refuse(path, f"{entry['file']}: prototxt_diff is not text")
    result = load_result(row)
    unusable = [f["detail"] for f in result.flags if f["code"] == UNUSABLE_FLAG]
    if result.status != doc.get("status") or len(unusable) > sum(
            isinstance(f, dict) and f.get("code") == UNUSABLE_FLAG for f in doc.get("flags") or []):
        raise _refuse(path, f"{entry['file']} is not a usable result: {result.error or unusable[-1]}")
    if identity(result) != entry.get("identity"):
        raise _refuse(path, f"{entry['file']} is not the result its manifest entry describes (identity differs)")
    return entry["id"], result


def read_bundle(path: str, limits: ReadLimits = ReadLimits()) -> Bundle:
    """The bundle at `path`, every member checked (see the module docstring); BundleError otherwise."""
    members = _members(str(path), limits)
    manifest = _manifest(str(path), members)
    results = [_result(str(path), entry, members) for entry in manifest["results"]]
    if len({old for old, _ in results}) != len(results):
        raise _refuse(str(path), "two manifest result entries have the same id")
    return Bundle(str(path), manifest, results)


def import_bundle(path: str, store: SQLStore, limits: ReadLimits = ReadLimits()) -> ImportReport:
    """Add the results of the bundle at `path` to `store`, all in one transaction, except those the store
    holds already (same identity); a --repeat summary's run ids are renumbered to the runs' ids in `store`."""
    report = ImportReport(read_bundle(path, limits))
    stored = {identity(r): r.id for run in {r.run_id for _, r in report.bundle.results}
              for r in store.query(run_id=run)}
    renumbered: dict[int, int] = {}
    # Runs before the summaries that name them, so that their new ids are known.
    ordered = sorted(report.bundle.results, key=lambda item: bool(item[1].repeat and item[1].repeat.get("summary")))
    with store.batch():
        for old, result in ordered:
            key = identity(result)
            if key in stored:
                renumbered[old] = stored[key]
                report.duplicates.append((old, stored[key]))
                continue
            if result.repeat and result.repeat.get("summary"):
                result.repeat["result_ids"] = [renumbered.get(i) for i in result.repeat.get("result_ids") or []]
            renumbered[old] = stored[key] = store.add(result)
            report.added.append((old, result.id))
    return report
