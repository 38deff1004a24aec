"""`edgeprof measure` with the Caffe backend on the lab's sim-tx2: real sshd, real Debian caffe."""
import json
import re
import sqlite3

from edgeprof.devices import connect, get_device
from edgeprof.models import resolve, set_batch

from ..conftest import json_lines

FORWARD_LINE = re.compile(r"Average Forward pass: (\S+) ms")


def test_four_catalog_models_match_the_raw_caffe_log(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "googlenet", "vgg16", "resnet50",
                        "--backend", "caffe", "--iterations", "2", "--json", check=0)
    results = json_lines(proc.stdout)
    assert [r["model"] for r in results] == ["alexnet", "googlenet", "vgg16", "resnet50"]
    for r in results:
        assert r["status"] == "ok" and r["error"] is None and r["span"] == "caffe_forward"
        assert r["iterations"] == 2 and r["batch"] == 1
        assert set(r["latency_ms"]) == {"median", "mean", "p90", "p99", "min", "max"}
        assert set(r["caffe"]) >= {"forward_ms", "backward_ms", "forward_backward_ms", "total_ms"}
        shown = edgeprof_cli("results", "show", r["id"], "--json", check=0)
        full = json.loads(shown.stdout)
        printed = FORWARD_LINE.search(full["raw_log"]).group(1)
        assert r["latency_ms"]["mean"] == float(printed) == r["caffe"]["forward_ms"]
        assert full["commands"][0]["command"].startswith("env GLOG_logtostderr=1 ")
        assert "-phase TEST" in full["commands"][0]["command"]
        assert r["throughput_ips"] > 0 and r["device_facts"]["os"].startswith("Debian GNU/Linux 11")


def test_direct_caffe_time_agrees_within_15_percent(edgeprof_cli, lab_inventory):
    """edgeprof's figure against the user's own `caffe time`, the fastest of three interleaved runs on each side.
    The lab's VM changes speed by tens of percent from one minute to the next (a CI run saw pairs at 0.92, 1.20
    and 1.34), and a disturbance only ever adds time, so the fastest run of each is the one closest to what the
    network costs."""
    board = connect(get_device("sim-tx2", lab_inventory))
    ours, theirs = [], []
    try:
        board.put_text("/tmp/direct-alexnet.prototxt", set_batch(resolve("alexnet").text, 1))
        for _ in range(3):
            proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--iterations", "20", "--wait", "600",
                                "--json", check=0)
            ours.append(json_lines(proc.stdout)[0]["latency_ms"]["mean"])
            # The user's way: copy the file by hand, run caffe time, read the line.
            direct = board.run(["caffe", "time", "-model", "/tmp/direct-alexnet.prototxt", "-iterations", "20",
                                "-phase", "TEST"], env={"GLOG_logtostderr": "1"})
            theirs.append(float(FORWARD_LINE.search(direct.stderr).group(1)))
        board.run(["rm", "-f", "/tmp/direct-alexnet.prototxt"])
    finally:
        board.close()
    assert abs(min(ours) / min(theirs) - 1) < 0.15, (ours, theirs)


def test_batch_sweep_rewrites_only_the_batch_number(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--batch", "1,4", "--iterations", "1",
                        "--json", check=0)
    results = json_lines(proc.stdout)
    assert [r["batch"] for r in results] == [1, 4]
    for r in results:
        full = json.loads(edgeprof_cli("results", "show", r["id"], "--json").stdout)
        changed = [line for line in full["prototxt_diff"].splitlines()
                   if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        assert changed == ["-  input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } }",
                           f"+  input_param {{ shape: {{ dim: {r['batch']} dim: 3 dim: 227 dim: 227 }} }}"]
        # Caffe itself reports the shape it ran with.
        assert f"Top shape: {r['batch']} 3 227 227" in full["raw_log"]


def test_every_result_is_stored_with_its_log(edgeprof_cli):
    edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--iterations", "1", "--json", check=0)
    rows = sqlite3.connect(edgeprof_cli.db).execute("SELECT model, status, length(raw_log) FROM results").fetchall()
    assert rows[0][:2] == ("alexnet", "ok") and rows[0][2] > 1000
    exported = edgeprof_cli("results", "export", "--format", "csv", check=0).stdout.splitlines()
    assert exported[0].startswith("id,run_id,device,model,backend,batch,status")
    assert len(exported) == 2
