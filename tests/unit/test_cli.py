"""The CLI over things that need no board: parsing a log, listing models and devices, exports."""
import json
import subprocess
import sys
from pathlib import Path

LOGS = Path(__file__).resolve().parent.parent / "parsers" / "logs" / "caffe_time"


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edgeprof.cli", *map(str, args)], capture_output=True, text=True,
                          env=env)


def test_parse_caffe_time_json_prints_one_object():
    proc = cli("parse", "caffe-time", LOGS / "jkjung_ssd_caffe_tx2_alexnet_gpu.log", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"forward_ms", "backward_ms", "forward_backward_ms", "total_ms", "iterations", "layers",
                           "error"}
    assert report["forward_ms"] == 12.9396 and report["total_ms"] == 2420.4


def test_models_lists_the_catalog_with_counts():
    rows = [json.loads(line) for line in cli("models", "--json").stdout.splitlines()]
    assert {r["name"] for r in rows} >= {"alexnet", "googlenet", "vgg16", "resnet50"}
    assert next(r for r in rows if r["name"] == "alexnet")["params"] == 60_965_224


def test_unknown_device_is_a_clear_error(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "EDGEPROF_DB": str(tmp_path / "r.sqlite")}
    proc = cli("measure", "--device", "tx2-nowhere", "alexnet", env=env)
    assert proc.returncode == 2 and "unknown device 'tx2-nowhere'" in proc.stderr


def test_bad_batch_is_a_usage_error():
    proc = cli("measure", "--device", "local", "alexnet", "--batch", "1,x")
    assert proc.returncode == 2 and "comma-separated" in proc.stderr


def test_parse_covers_every_tool_edgeprof_drives():
    logs = LOGS.parent
    nvpmodel = json.loads(cli("parse", "nvpmodel", logs / "nvpmodel" / "nano_r32_root_jetbot_issue49.txt",
                              "--json").stdout)
    assert set(nvpmodel) == {"mode_name", "mode_id"}
    clocks = cli("parse", "jetson-clocks", next((logs / "jetson_clocks").glob("*.txt")), "--json")
    assert set(json.loads(clocks.stdout)) == {"power_mode", "gpu", "emc", "cpus"}
    rows = json.loads(cli("parse", "tegrastats", next((logs / "tegrastats").glob("*.txt")), "--json").stdout)
    assert rows and "rails_mw" in rows[0]


def test_parse_rejects_options_of_other_tools():
    proc = cli("parse", "nvpmodel", "-", "--fields", "a,b")
    assert proc.returncode == 2 and "--fields only applies to nvidia-smi" in proc.stderr
