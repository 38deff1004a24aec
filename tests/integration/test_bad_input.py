"""Bad input: the user learns what happened and how to fix it, finished results are kept, nothing runs
that should not."""
import json
import subprocess

from ..conftest import board_entry, json_lines, write_inventory

# Caffe has no backward for ArgMax, and `caffe time` always runs backward: a real mid-run abort.
ABORTING_NET = """name: "aborts"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 4 } }
layer { name: "argmax" type: "ArgMax" bottom: "fc" top: "argmax" }
"""


def test_unknown_model_suggests_close_names_and_touches_no_board(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnt", check=2)
    assert "unknown model 'alexnt'" in proc.stderr and "Did you mean alexnet" in proc.stderr
    assert "connecting" not in proc.stderr


def test_shell_metacharacters_in_a_model_name_are_rejected(edgeprof_cli, lab_inventory, tmp_path):
    marker = "/tmp/edgeprof-pwned"
    proc = edgeprof_cli("measure", "--device", "sim-tx2", f"alexnet; touch {marker}", f"$(touch {marker})",
                        check=2)
    assert "unknown model" in proc.stderr
    entry = board_entry(lab_inventory, "sim-tx2")
    on_board = subprocess.run(["ssh", "-i", entry["key"], "-o", f"UserKnownHostsFile={entry['known_hosts']}",
                               "-o", "BatchMode=yes", f"{entry['user']}@{entry['host']}", "ls", marker],
                              capture_output=True)
    assert on_board.returncode != 0  # no such file on the board
    assert subprocess.run(["ls", marker], capture_output=True).returncode != 0


def test_malformed_prototxt_reports_line_and_column(edgeprof_cli, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('name: "x"\ninput: "data"\ninput_dim: 1\ninput_dim: 3 input_dim: 8\ninput_dim 8\n')
    proc = edgeprof_cli("measure", "--device", "sim-tx2", bad, check=2)
    assert f"{bad}:5:" in proc.stderr


def test_refused_connection(edgeprof_cli, lab_inventory, tmp_path):
    entry = {**board_entry(lab_inventory, "sim-tx2"), "port": 2222}
    inventory = write_inventory(tmp_path / "inv.toml", closed=entry)
    proc = edgeprof_cli("measure", "--device", "closed", "alexnet", inventory=inventory, check=2)
    assert "cannot connect" in proc.stderr and "Connection refused" in proc.stderr


def test_refused_key(edgeprof_cli, lab_inventory, tmp_path):
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    inventory = write_inventory(tmp_path / "inv.toml", wrongkey={**board_entry(lab_inventory, "sim-tx2"),
                                                                 "key": str(key)})
    proc = edgeprof_cli("measure", "--device", "wrongkey", "alexnet", inventory=inventory, check=2)
    assert "authentication failed" in proc.stderr and "authorized_keys" in proc.stderr


def test_unknown_host_key_is_refused_until_accepted(edgeprof_cli, lab_inventory, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    inventory = write_inventory(tmp_path / "inv.toml", fresh={**board_entry(lab_inventory, "sim-tx2"),
                                                             "known_hosts": str(known)})
    proc = edgeprof_cli("measure", "--device", "fresh", "alexnet", inventory=inventory, check=2)
    assert "host key not known" in proc.stderr and "--accept-new-host-key" in proc.stderr
    assert known.read_text() == ""
    edgeprof_cli("measure", "--device", "fresh", "alexnet", "-n", "1", "--accept-new-host-key",
                 inventory=inventory, check=0)
    assert "ssh-ed25519" in known.read_text()
    # Recorded: the next run needs no flag.
    edgeprof_cli("measure", "--device", "fresh", "alexnet", "-n", "1", inventory=inventory, check=0)


def test_changed_host_key_is_always_refused(edgeprof_cli, lab_inventory, tmp_path):
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", impostor], check=True)
    entry = board_entry(lab_inventory, "sim-tx2")
    known = tmp_path / "known_hosts"
    kind, key = impostor.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"{entry['host']} {kind} {key}\n")
    inventory = write_inventory(tmp_path / "inv.toml", moved={**entry, "known_hosts": str(known)})
    proc = edgeprof_cli("measure", "--device", "moved", "alexnet", "--accept-new-host-key",
                        inventory=inventory, check=2)
    assert "HOST KEY CHANGED" in proc.stderr and "ssh-keygen -R" in proc.stderr


def test_board_without_caffe_says_how_to_install(edgeprof_cli):
    # sim-desktop is the host's own filesystem, which has no caffe.
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "alexnet", "--json", check=1)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "failed"
    assert "caffe not found on sim-desktop" in result["error"] and "inventory" in result["error"]


def test_a_desktop_declared_a_jetson_names_the_tool_it_lacks(edgeprof_cli, lab_inventory, tmp_path):
    """sim-desktop (a root login; this host has neither sudo nor nvpmodel) under family tx2: the root login
    runs the power tools itself, the shell finds no nvpmodel, and the message says so and how to fix it,
    instead of asking for a sudo password the board could not use."""
    inventory = write_inventory(tmp_path / "inv.toml",
                                **{"not-a-jetson": {**board_entry(lab_inventory, "sim-desktop"), "family": "tx2"}})
    proc = edgeprof_cli("measure", "--device", "not-a-jetson", "alexnet", inventory=inventory, check=2)
    assert "nvpmodel is missing: is not-a-jetson a Jetson? If not, give it its family in the inventory" in proc.stderr
    assert "sudo" not in proc.stderr and "Traceback" not in proc.stderr


def test_caffe_abort_mid_sweep_keeps_the_other_models(edgeprof_cli, tmp_path):
    aborting = tmp_path / "aborts.prototxt"
    aborting.write_text(ABORTING_NET)
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", aborting, "googlenet", "-n", "1", "--json",
                        check=1)
    results = json_lines(proc.stdout)
    assert [(r["model"], r["status"]) for r in results] == [
        ("alexnet", "ok"), ("aborts", "failed"), ("googlenet", "ok")]
    error = results[1]["error"]
    assert error.startswith("caffe aborted (SIGABRT): Not Implemented Yet")
    assert "ArgMaxLayer" in error
    stored = json_lines(edgeprof_cli("results", "list", "--json").stdout)
    assert sorted(r["status"] for r in stored) == ["failed", "ok", "ok"]
    full = json.loads(edgeprof_cli("results", "show", results[1]["id"], "--json").stdout)
    assert full["commands"][0]["exit_status"] == 134
