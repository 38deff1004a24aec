"""A repro bundle end to end on the lab: measure on a simulated TX2, bundle the run, import it into another
store, and run its reproduce.sh, which measures the same item again with edgeprof."""
import json
import os
import subprocess
import sys
import tarfile

from ..conftest import ROOT, json_lines

BOARD = "sim-tx2-13"
LENET = ROOT / "tests" / "lab" / "models" / "lenet.prototxt"


def test_bundle_import_and_reproduce_on_the_lab(edgeprof_cli, lab_inventory, tmp_path):
    measured = json_lines(edgeprof_cli("measure", "--device", BOARD, "--iterations", "10", "--wait", "600", LENET,
                                       "--json", check=0).stdout)
    run_id = measured[0]["run_id"]
    bundle = tmp_path / "lenet.tar.gz"
    made = edgeprof_cli("bundle", "--run", run_id, "-o", bundle, check=0).stdout
    assert "1 result(s) of run" in made and "model files: 1 included" in made

    other = tmp_path / "colleague.sqlite"
    imported = edgeprof_cli("import", bundle, "--json", env={"EDGEPROF_DB": str(other)}, check=0).stdout
    assert json.loads(imported)["added"] == {str(measured[0]["id"]): 1}
    again = json.loads(edgeprof_cli("import", bundle, "--json", env={"EDGEPROF_DB": str(other)}, check=0).stdout)
    assert again["added"] == {} and again["already_stored"] == {str(measured[0]["id"]): 1}
    shown = json.loads(edgeprof_cli("results", "show", "1", "--json", env={"EDGEPROF_DB": str(other)}, check=0).stdout)
    original = json.loads(edgeprof_cli("results", "show", str(measured[0]["id"]), "--json", check=0).stdout)
    assert {**shown, "id": None} == {**original, "id": None}

    with tarfile.open(bundle) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    rerun_db = tmp_path / "rerun.sqlite"
    environment = {**os.environ, "HOME": str(edgeprof_cli.home), "EDGEPROF_DB": str(rerun_db),
                   "EDGEPROF_INVENTORY": str(lab_inventory),
                   "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    script = tmp_path / "unpacked" / "edgeprof-bundle" / "reproduce.sh"
    proc = subprocess.run(["sh", str(script), BOARD], env=environment, capture_output=True, text=True,
                          timeout=900, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rerun = json.loads(edgeprof_cli("results", "show", "1", "--json", env={"EDGEPROF_DB": str(rerun_db)},
                                    check=0).stdout)
    for key in ("model", "backend", "batch", "iterations", "status"):
        assert rerun[key] == original[key], key
    assert rerun["model_info"]["sha256"] == original["model_info"]["sha256"]
    assert rerun["state"]["clocks_policy"] == original["state"]["clocks_policy"] == "max"
    assert rerun["run_id"] != original["run_id"]
