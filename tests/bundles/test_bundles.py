"""Repro bundles: what goes in, what comes back out of an import (once), and every hostile tarball refused
with nothing written."""
import hashlib
import io
import json
import tarfile

import pytest

from edgeprof.bundles import BundleError, identity, import_bundle, read_bundle, write_bundle
from edgeprof.bundles.read import ReadLimits
from edgeprof.bundles.write import select
from edgeprof.result import Result
from edgeprof.storage import open_store
from edgeprof.validity import summarize_repeats

PROTOTXT = 'name: "tiny"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'


def measured(model_path, **changes) -> Result:
    result = Result(device="sim-tx2-13", model="tiny", backend="pytorch", batch=4, run_id="run1", span="compute",
                    raw_log="log line 1\nlog line 2\n", prototxt_diff="-input_dim: 1\n+input_dim: 4\n",
                    commands=[{"command": "python3 runner.py", "exit_status": 0, "duration_s": 1.5}],
                    model_info={"path": str(model_path), "kind": "prototxt", "catalog": False,
                                "sha256": hashlib.sha256(PROTOTXT.encode()).hexdigest()},
                    settings={"processor": "cpu", "precision": "fp32", "span": "compute", "channels_last": True,
                              "threads": 2, "iterations": 20, "compile": None, "mode": "inference"},
                    state={"clocks_policy": "max", "power_mode": {"mode_name": "MAXN", "mode_id": 0},
                           "versions": {"torch": "2.13.0"}},
                    device_facts={"family": "tx2", "hostname": "sim-tx2-13"}, iterations=20)
    result.latency_ms.update(median=3.0, mean=3.1)
    for key, value in changes.items():
        setattr(result, key, value)
    return result


@pytest.fixture
def origin(tmp_path):
    """A store holding a --repeat 3 group (three runs and their summary) and one plain result."""
    model = tmp_path / "tiny.prototxt"
    model.write_text(PROTOTXT)
    store = open_store(tmp_path / "origin.sqlite")
    runs = []
    for index, median in enumerate((3.0, 3.2, 2.9), 1):
        run = measured(model, repeat={"group": "g1", "index": index, "of": 3})
        run.latency_ms["median"] = median
        store.add(run)
        runs.append(run)
    summary = summarize_repeats(runs)
    summary.repeat["group"] = "g1"
    store.add(summary)
    store.add(measured(model, batch=1))
    yield store, model
    store.close()


def bundled(origin, tmp_path, **writing):
    store, _ = origin
    path = tmp_path / "b.tar.gz"
    write_bundle(select(store, run_ids=["run1"]), path, **writing)
    return path


def members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def test_a_bundle_holds_results_logs_model_script_and_a_manifest_of_every_member(origin, tmp_path):
    path = bundled(origin, tmp_path)
    inside = members(path)
    manifest = json.loads(inside.pop("edgeprof-bundle/manifest.json"))
    assert set(manifest["members"]) == set(inside)
    for name, data in inside.items():
        assert manifest["members"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert inside["edgeprof-bundle/logs/1.log"] == b"log line 1\nlog line 2\n"
    doc = json.loads(inside["edgeprof-bundle/results/1.json"])
    assert doc["commands"][0]["command"] == "python3 runner.py" and doc["state"]["versions"] == {"torch": "2.13.0"}
    assert doc["device_facts"]["family"] == "tx2" and doc["prototxt_diff"].startswith("-input_dim")
    sha = hashlib.sha256(PROTOTXT.encode()).hexdigest()
    assert inside[f"edgeprof-bundle/models/{sha[:12]}/tiny.prototxt"] == PROTOTXT.encode()
    assert [m["file"] for m in manifest["models"]] == [f"edgeprof-bundle/models/{sha[:12]}/tiny.prototxt"]
    assert [r["id"] for r in manifest["results"]] == [1, 2, 3, 4, 5]


def test_reproduce_sh_reruns_each_item_once_with_its_settings_and_the_bundled_model(origin, tmp_path):
    script = members(bundled(origin, tmp_path))["edgeprof-bundle/reproduce.sh"].decode()
    commands = [line for line in script.splitlines() if line.startswith("edgeprof measure")]
    sha = hashlib.sha256(PROTOTXT.encode()).hexdigest()
    options = ('--backend pytorch --batch {} --iterations 20 --processor cpu --channels-last --threads 2 '
               '--clocks max')
    assert commands == [
        f'edgeprof measure --device "$device1" {options.format(4)} --repeat 3 "$here"/models/{sha[:12]}/tiny.prototxt'
        ' || status=$?',
        f'edgeprof measure --device "$device1" {options.format(1)} "$here"/models/{sha[:12]}/tiny.prototxt'
        ' || status=$?']
    assert '#   DEVICE1: instead of "sim-tx2-13" (family "tx2")' in script


def test_a_model_file_too_large_or_changed_since_is_listed_by_hash_not_included(origin, tmp_path):
    manifest = json.loads(members(bundled(origin, tmp_path, max_file_mb=0.00001))["edgeprof-bundle/manifest.json"])
    assert manifest["models"][0]["file"] is None and "over the 1e-05 MB limit" in manifest["models"][0]["note"]
    origin[1].write_text(PROTOTXT + "# edited\n")
    manifest = json.loads(members(bundled(origin, tmp_path))["edgeprof-bundle/manifest.json"])
    assert manifest["models"][0]["file"] is None and "changed since" in manifest["models"][0]["note"]


def test_import_adds_every_result_once_and_renumbers_a_summarys_runs(origin, tmp_path):
    path = bundled(origin, tmp_path)
    with open_store(tmp_path / "other.sqlite") as other:
        other.add(measured(origin[1], run_id="someone-elses"))
        first = import_bundle(str(path), other)
        again = import_bundle(str(path), other)
        copied = other.query(run_id="run1")
    assert sorted(old for old, _ in first.added) == [1, 2, 3, 4, 5] and not first.duplicates
    assert not again.added and sorted(again.duplicates) == sorted(first.added)
    originals = {identity(r): r for r in origin[0].query(run_id="run1")}
    assert {identity(r) for r in copied} == set(originals)
    summary = next(r for r in copied if r.repeat.get("summary"))
    new_ids = dict(first.added)
    assert summary.repeat["result_ids"] == [new_ids[1], new_ids[2], new_ids[3]] != [1, 2, 3]
    assert next(r for r in copied if r.id == new_ids[5]).raw_log == "log line 1\nlog line 2\n"


def test_import_into_the_store_it_came_from_adds_nothing(origin, tmp_path):
    report = import_bundle(str(bundled(origin, tmp_path)), origin[0])
    assert not report.added and sorted(report.duplicates) == [(i, i) for i in range(1, 6)]


def test_bundling_a_summary_brings_its_runs_and_unknown_ids_are_named(origin, tmp_path):
    assert [r.id for r in select(origin[0], result_ids=[4])] == [1, 2, 3, 4]
    with pytest.raises(BundleError, match="no result 99 in"):
        select(origin[0], result_ids=[99])
    with pytest.raises(BundleError, match="no results of run nope"):
        select(origin[0], run_ids=["nope"])


# --- hostile bundles: each built from a good one with one thing wrong; the manifest is kept consistent
# with the change unless the change is to break it, so that the check under test is the one refusing.

def rebuilt(path, out, change=lambda inside: None, extra=(), fix_manifest=True):
    inside = members(path)
    change(inside)
    if fix_manifest:
        manifest = json.loads(inside["edgeprof-bundle/manifest.json"])
        manifest["members"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)}
                               for n, d in inside.items() if n != "edgeprof-bundle/manifest.json"}
        inside["edgeprof-bundle/manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(out, "w:gz") as tar:
        for name, data in inside.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return out


def link(name, kind, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def regular(name, size=1):
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def edit_result(key, value):
    def change(inside):
        doc = json.loads(inside["edgeprof-bundle/results/5.json"])
        doc[key] = value
        inside["edgeprof-bundle/results/5.json"] = json.dumps(doc).encode()
    return change


def replace(name, data):
    return lambda inside: inside.__setitem__(name, data)


HOSTILE = {
    "absolute path": (dict(extra=[regular("/etc/cron.d/x")]), "has an absolute path"),
    "dot-dot": (dict(extra=[regular("edgeprof-bundle/../../.bashrc")]), "climbs out of the bundle with '..'"),
    "symlink": (dict(extra=[link("edgeprof-bundle/logs/9.log", tarfile.SYMTYPE, "/etc/shadow")]),
                "is a symbolic link (to '/etc/shadow')"),
    "hard link": (dict(extra=[link("edgeprof-bundle/logs/9.log", tarfile.LNKTYPE, "/etc/shadow")]),
                  "is a hard link"),
    "device": (dict(extra=[link("edgeprof-bundle/logs/9.log", tarfile.CHRTYPE, "")]), "is not a regular file"),
    "foreign member": (dict(extra=[regular("edgeprof-bundle/run.py")]), "is not a file edgeprof puts in a bundle"),
    "huge member": (dict(extra=[regular("edgeprof-bundle/logs/9.log", 70000)]),
                    "is 70000 bytes, over the limit of 65536"),
    "twice": (dict(extra=[regular("edgeprof-bundle/logs/1.log")]), "appears twice"),
    "manifest not JSON": (dict(change=replace("edgeprof-bundle/manifest.json", b'{"format": '), fix_manifest=False),
                          "manifest.json is not valid JSON"),
    "result not JSON": (dict(change=replace("edgeprof-bundle/results/5.json", b"[1, 2")),
                        "results/5.json is not valid JSON"),
    "result not an object": (dict(change=replace("edgeprof-bundle/results/5.json", b"[]")), "is not a JSON object"),
    "unusable figure": (dict(change=edit_result("latency_ms", {"median": "fast"})),
                        "results/5.json is not a usable result: unusable stored result: latency_ms.median"),
    "edited result": (dict(change=edit_result("throughput_ips", 1e9)), "identity differs"),
    "member not as listed": (dict(change=replace("edgeprof-bundle/logs/1.log", b"forged"), fix_manifest=False),
                             "logs/1.log does not match the sha256 and size"),
    "member not listed": (dict(change=replace("edgeprof-bundle/logs/7.log", b"x"), fix_manifest=False),
                          "logs/7.log is not in the manifest"),
    "no manifest": (dict(change=lambda inside: inside.pop("edgeprof-bundle/manifest.json"), fix_manifest=False),
                    "no edgeprof-bundle/manifest.json"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_bundle_is_refused_whole_and_nothing_is_written(origin, tmp_path, case):
    building, message = HOSTILE[case]
    hostile = rebuilt(bundled(origin, tmp_path), tmp_path / "hostile.tar.gz", **building)
    with open_store(tmp_path / "target.sqlite") as target:
        with pytest.raises(BundleError, match="refused, nothing imported") as refused:
            import_bundle(str(hostile), target, ReadLimits(document_bytes=65536))
        assert target.query() == []
    assert message in str(refused.value)


def test_what_is_no_gzipped_tar_is_refused(tmp_path):
    for name, data in (("plain.tar.gz", b"hello"), ("cut.tar.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 20)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(BundleError, match="not a readable .tar.gz"):
            read_bundle(str(tmp_path / name))


def test_the_onnx_file_tensorrt_built_from_is_included_from_the_export_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    onnx = b"\x08\x07onnx bytes"
    sha = hashlib.sha256(onnx).hexdigest()
    (tmp_path / "cache/edgeprof/onnx").mkdir(parents=True)
    (tmp_path / "cache/edgeprof/onnx" / f"{sha}.onnx").write_bytes(onnx)
    result = measured(tmp_path / "gone.prototxt", backend="tensorrt", id=7,
                      figures={"model": {"kind": "onnx", "sha256": sha, "opset": 13},
                               "engine_build": {"trt_version": "8.2.1", "tool": "trtexec"}})
    bad = measured(tmp_path / "gone.prototxt", backend="tensorrt", id=8,
                   figures={"model": {"kind": "onnx", "sha256": "../../../etc/passwd"}})
    write_bundle([result, bad], tmp_path / "b.tar.gz")
    inside = members(tmp_path / "b.tar.gz")
    manifest = json.loads(inside["edgeprof-bundle/manifest.json"])
    assert inside[f"edgeprof-bundle/models/{sha[:12]}/{sha}.onnx"] == onnx
    assert {m["kind"]: m["note"] for m in manifest["models"]} == {
        "prototxt": "not included: not on this host (No such file or directory)", "onnx": ""}
    assert manifest["results"][0]["engine_build"] == {"trt_version": "8.2.1", "tool": "trtexec"}


def test_the_commands_exit_2_with_the_reason_and_write_nothing(origin, tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "edgeprof.cli", *map(str, args)], capture_output=True, text=True,
                              timeout=120)

    unknown = cli("bundle", "99", "-o", tmp_path / "x.tar.gz", "--db", tmp_path / "origin.sqlite")
    assert unknown.returncode == 2 and "no result 99 in" in unknown.stderr and not (tmp_path / "x.tar.gz").exists()
    hostile = rebuilt(bundled(origin, tmp_path), tmp_path / "hostile.tar.gz", **HOSTILE["dot-dot"][0])
    refused = cli("import", bundled(origin, tmp_path), hostile, "--db", tmp_path / "target.sqlite")
    assert refused.returncode == 2 and "refused, nothing imported" in refused.stderr
    assert "5 result(s) added" in refused.stdout      # the good bundle before it went in whole
    with open_store(tmp_path / "target.sqlite") as target:
        assert len(target.query()) == 5
