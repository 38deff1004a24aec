"""board_sampler.py as the board runs it (the zip application the host uploads: edgeprof.telemetry.sampler.archive):
a separate process, a tool it starts, and every way it stops.

The tool is a stand-in `tegrastats` on PATH that prints a real TX2 line (tests/parsers/logs/tegrastats) every
50 ms. The sampler runs under this interpreter and, where one is installed, Python 3.6 (JetPack 4.6's)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprof.onboard.window_stats import Stats
from edgeprof.parsers import tegrastats
from edgeprof.telemetry.sampler import archive
from edgeprof.telemetry.summary import NVIDIA_SMI_FIELDS, readings, stats_of

from .test_summary import h100_line

SAMPLER = Path(__file__).resolve().parents[2] / "edgeprof" / "onboard" / "board_sampler.py"
TX2_LINE = (Path(__file__).parent.parent / "parsers" / "logs" / "tegrastats" / "tx2_r32_datadog_agent.txt"
            ).read_text().splitlines()[0]


def _python36() -> list[str]:
    """A working Python 3.6 (JetPack 4.6's), if this machine has one: on PATH or under pyenv."""
    candidates = [shutil.which("python3.6") or ""] + sorted(glob.glob(os.path.expanduser(
        "~/.pyenv/versions/3.6*/bin/python3.6")))
    for path in candidates:
        if path and subprocess.run([path, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"],
                                   capture_output=True).returncode == 0:
            return [path]
    return []


PYTHONS = [sys.executable] + _python36()


def gone(pid: int) -> bool:
    """Exited (a zombie counts: its parent may reap late)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.fixture(params=PYTHONS, ids=lambda p: "python" + subprocess.run(
    [p, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True).stdout.strip())
def sampler(request, tmp_path):
    """Start the sampler with a fake tool folder on PATH; yields (process, out path, tool folder)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    zipped = tmp_path / "board_sampler.pyz"
    zipped.write_bytes(archive())
    out = tmp_path / "telemetry-1.jsonl"
    procs = []

    def start(*source, tool_body=None):
        if tool_body is not None:
            (tools / "tegrastats").write_text(f"#!{sys.executable}\n{tool_body}")
            (tools / "tegrastats").chmod(0o755)
        env = {**os.environ, "PATH": f"{tools}:/usr/bin:/bin"}
        proc = subprocess.Popen([request.param, str(zipped), "--out", str(out), "--stop", f"{out}.stop",
                                 "--interval-ms", "50", *source], env=env)
        procs.append(proc)
        wait_until(lambda: Path(f"{out}.part").exists() and Path(f"{out}.part").read_text().endswith("\n"))
        return proc, json.loads(Path(f"{out}.part").read_text().splitlines()[0])

    start.out = out
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


PRINT_TX2 = f"import time\nwhile True:\n    print({TX2_LINE!r}, flush=True)\n    time.sleep(0.05)\n"


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_stop_file_ends_a_clean_run(sampler):
    proc, first = sampler("--tegrastats", tool_body=PRINT_TX2)
    assert first["kind"] == "start" and first["child"] == "tegrastats" and first["pid"] == proc.pid
    wait_until(lambda: Path(f"{sampler.out}.part").read_text().count('"kind": "tegrastats"') >= 4)
    Path(f"{sampler.out}.stop").touch()
    assert proc.wait(timeout=5) == 0
    assert not Path(f"{sampler.out}.part").exists()
    got = records(sampler.out)
    lines = [r for r in got if r["kind"] == "tegrastats"]
    assert len(lines) >= 4 and all(r["line"] == TX2_LINE for r in lines)
    assert tegrastats.parse_line(lines[0]["line"]).rails_mw["VDD_IN"].cur == 3056
    times = [r["t"] for r in got]
    assert times == sorted(times) and abs(times[0] - time.time()) < 30   # the board's epoch clock
    assert got[-1]["kind"] == "end" and got[-1]["reason"] == "stop file"
    assert gone(first["child_pid"])


def test_a_block_after_every_n_lines_holds_their_stats(sampler):
    """--block 3: a block record after every 3 tegrastats lines and after the last ones, each the Stats the host
    computes from those lines itself (board total: --power-total)."""
    proc, _ = sampler("--tegrastats", "--block", "3", "--power-total", "VDD_IN+VDD_SYS_GPU", tool_body=PRINT_TX2)
    wait_until(lambda: Path(f"{sampler.out}.part").read_text().count('"kind": "tegrastats"') >= 7)
    Path(f"{sampler.out}.stop").touch()
    assert proc.wait(timeout=5) == 0
    got = records(sampler.out)
    assert got[-2]["kind"] == "block" and got[-1]["kind"] == "end"
    lines = []
    for record in got:
        if record["kind"] == "tegrastats":
            lines.append(record)
        elif record["kind"] == "block":
            assert record["lines"] == len(lines) and (len(lines) == 3 or record is got[-2])
            expected = stats_of(readings(lines, "VDD_IN+VDD_SYS_GPU"))
            assert expected.power[1] == len(lines)    # every line has both rails
            assert Stats.from_record(record["stats"]).to_record() == expected.to_record()
            lines = []
    assert not lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_stops_it_and_its_tool(sampler, signum):
    proc, first = sampler("--tegrastats", tool_body=PRINT_TX2)
    time.sleep(0.2)
    proc.send_signal(signum)
    assert proc.wait(timeout=5) == 0
    assert records(sampler.out)[-1] == {"kind": "end", "reason": signum.name, "t": records(sampler.out)[-1]["t"]}
    assert gone(first["child_pid"])


def test_sigkill_of_the_sampler_takes_the_tool_along(sampler):
    proc, first = sampler("--tegrastats", tool_body=PRINT_TX2)
    proc.kill()
    proc.wait()
    wait_until(lambda: gone(first["child_pid"]), timeout=3)   # PR_SET_PDEATHSIG
    assert not sampler.out.exists()   # not a clean stop: only the .part file


def test_a_missing_tool_falls_back_to_proc(sampler):
    proc, first = sampler("--tegrastats")
    assert first["child_pid"] is None
    wait_until(lambda: Path(f"{sampler.out}.part").read_text().count('"kind": "proc"') >= 2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    got = records(sampler.out)
    assert got[1]["kind"] == "error" and "tegrastats could not start" in got[1]["message"]
    proc_records = [r for r in got if r["kind"] == "proc"]
    assert len(proc_records) >= 2
    sample = proc_records[-1]
    assert sample["ram_total_mb"] > sample["ram_used_mb"] > 0
    assert len(sample["cpu_load_pct"]) >= os.cpu_count() and all(
        v is None or 0 <= v <= 100 for v in sample["cpu_load_pct"])


def test_a_tool_that_dies_is_reported(sampler):
    body = "import sys\nsys.stderr.write('tegrastats: permission denied on /sys/kernel/debug\\n')\nsys.exit(2)\n"
    proc, _ = sampler("--tegrastats", tool_body=body)
    wait_until(lambda: any(r["kind"] == "proc" for r in records(Path(f"{sampler.out}.part"))))
    Path(f"{sampler.out}.stop").touch()
    proc.wait(timeout=5)
    [error] = [r for r in records(sampler.out) if r["kind"] == "error"]
    assert error["message"] == "tegrastats exited with status 2: tegrastats: permission denied on /sys/kernel/debug"


def test_nvidia_smi_and_proc_together(sampler):
    """A stand-in nvidia-smi that checks the query it gets and answers with the H100's real values."""
    body = (f"import sys, time\n"
            f"assert sys.argv[1:] == ['--query-gpu={','.join(NVIDIA_SMI_FIELDS)}', '--format=csv,noheader,nounits',"
            f" '-lms', '50'], sys.argv\n"
            f"while True:\n    print({h100_line()!r}, flush=True)\n    time.sleep(0.05)\n")
    (sampler.out.parent / "bin" / "nvidia-smi").write_text(f"#!{sys.executable}\n{body}")
    (sampler.out.parent / "bin" / "nvidia-smi").chmod(0o755)
    proc, first = sampler("--nvidia-smi", ",".join(NVIDIA_SMI_FIELDS), "--proc")
    assert first["child"] == "nvidia-smi"
    wait_until(lambda: all(Path(f"{sampler.out}.part").read_text().count(f'"kind": "{kind}"') >= 4
                           for kind in ("nvidia-smi", "proc")))
    Path(f"{sampler.out}.stop").touch()
    proc.wait(timeout=5)
    got = records(sampler.out)
    assert [r for r in got if r["kind"] == "error"] == []
    kinds = [r["kind"] for r in got]
    assert kinds.count("nvidia-smi") >= 4 and kinds.count("proc") >= 4
    gpu = [r for r in readings(got, None) if r.power_total_w is not None]
    assert gpu and gpu[0].power_total_w == 100.92 and gpu[0].gpu_freq_mhz == 345


def test_other_gpu_processes_from_nvidia_smi_leave_out_the_measurement(sampler, tmp_path):
    """--others on an nvidia-smi board asks nvidia-smi which processes hold a CUDA context on GPU 0 and
    keeps those that are not the measurement's: here the test's own process (outside the work folder) and
    pid 1 (memory "[N/A]", as nvidia-smi prints it where the driver cannot tell), not the sampler."""
    body = (f"import os, sys, time\n"
            f"if '--query-compute-apps=pid,process_name,used_gpu_memory' in sys.argv:\n"
            f"    assert sys.argv[1:] == ['-i', '0', '--query-compute-apps=pid,process_name,used_gpu_memory',"
            f" '--format=csv,noheader,nounits'], sys.argv\n"
            f"    print('%d, /usr/bin/python3, 1562' % os.getppid())\n"
            f"    print('{os.getpid()}, /opt/venv/bin/python3.10, 6294')\n"
            f"    print('1, /sbin/init, [N/A]')\n"
            f"    sys.exit(0)\n"
            f"while True:\n    print({h100_line()!r}, flush=True)\n    time.sleep(0.05)\n")
    (sampler.out.parent / "bin" / "nvidia-smi").write_text(f"#!{sys.executable}\n{body}")
    (sampler.out.parent / "bin" / "nvidia-smi").chmod(0o755)
    proc, _ = sampler("--nvidia-smi", ",".join(NVIDIA_SMI_FIELDS), "--others", str(tmp_path / "work"))
    wait_until(lambda: '"kind": "others"' in Path(f"{sampler.out}.part").read_text(), timeout=10)
    Path(f"{sampler.out}.stop").touch()
    proc.wait(timeout=5)
    [first, *_] = [r for r in records(sampler.out) if r["kind"] == "others"]
    assert first["gpu"] == [["/opt/venv/bin/python3.10", os.getpid(), 6294.0], ["/sbin/init", 1, None]]


def test_a_jetson_without_a_readable_nvmap_table_says_so(sampler, tmp_path):
    """On a board without /sys/kernel/debug/nvmap (this host, or a Jetson sampled without root) the
    others record says why its GPU users are unknown, instead of reporting none."""
    proc, _ = sampler("--tegrastats", "--others", str(tmp_path / "work"), tool_body=PRINT_TX2)
    wait_until(lambda: '"kind": "others"' in Path(f"{sampler.out}.part").read_text(), timeout=10)
    Path(f"{sampler.out}.stop").touch()
    proc.wait(timeout=5)
    [first, *_] = [r for r in records(sampler.out) if r["kind"] == "others"]
    assert "gpu" not in first and first["gpu_error"].startswith("no nvmap client table (")


# nvmap's client table as printed on Jetsons: on an Orin (htop-dev/htop at 1c774fac, linux/NvidiaJetson.c,
# the comment before its sensor paths) and on L4T 36 with a comm cut at 15 characters (a Jetson
# memory-audit tool's design notes, "NvMap parser missed the column layout used by newer L4T"; found
# through the tool library's code search, which did not name the repository).
NVMAP_L4T35 = """CLIENT                        PROCESS      PID        SIZE
user                         gpu_burn     7979   23525644K
user                      gnome_shell     8119       5800K
user                             Xorg     2651      17876K
total                                            23549320K
"""
NVMAP_L4T36 = """CLIENT                        PROCESS      PID        SIZE
user                  VLLM::EngineCor  1792595   14617792K
"""


def test_nvmap_client_tables_of_two_l4t_releases():
    from edgeprof.onboard.board_sampler import nvmap_clients
    assert nvmap_clients(NVMAP_L4T35) == [("gpu_burn", 7979, 22974.3), ("gnome_shell", 8119, 5.7),
                                          ("Xorg", 2651, 17.5)]
    assert nvmap_clients(NVMAP_L4T36) == [("VLLM::EngineCor", 1792595, 14275.2)]
    # A comm with a space keeps it; the header and the total are not clients.
    assert nvmap_clients("user  Web Content  4242  2048K\n") == [("Web Content", 4242, 2.0)]
    assert nvmap_clients("total   23549320K\nCLIENT PROCESS PID SIZE\n") == []


@pytest.mark.parametrize("python", PYTHONS)
def test_an_idle_sample_names_what_keeps_the_board_busy(python, tmp_path):
    """--idle-sample: one others record of the seconds asked for, for --quiet-board's wait; a CPU burner of
    this test's own (not in the work folder) is in it, a process naming the work folder is not."""
    work = tmp_path / "work"
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    ours = subprocess.Popen(["sh", "-c", f"while :; do :; done # {work}/runner"])
    try:
        done = subprocess.run([python, str(SAMPLER), "--idle-sample", "1", "--others", str(work)],
                              capture_output=True, text=True, timeout=30)
    finally:
        for proc in (burner, ours):
            proc.kill()
            proc.wait()
    record = json.loads(done.stdout)
    assert record["kind"] == "others" and 0.9 <= record["interval_s"] < 2
    pids = [pid for _, pid, _ in record["top"]]
    assert burner.pid in pids and ours.pid not in pids
    assert record["cpu_s"] >= 0.3   # one busy loop on a 2-core machine shared with the rest of the suite


def test_temperatures_of_the_zones_sysfs_gives(tmp_path):
    """--start-below reads every zone's temp (millidegrees, Documentation/thermal/sysfs-api.txt) by its type,
    as tegrastats names them; a zone whose temp cannot be read (a powered-off GPU on Orin) is left out."""
    from edgeprof.onboard.board_sampler import temperatures, thermal_zones
    for index, (kind, temp) in enumerate([("BCPU-therm", "45500"), ("GPU-therm", None), ("PMIC-Die", "100000")]):
        zone = tmp_path / f"thermal_zone{index}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        if temp is not None:
            (zone / "temp").write_text(temp + "\n")
    (tmp_path / "cooling_device0").mkdir()
    assert temperatures(thermal_zones(str(tmp_path))) == {"BCPU-therm": 45.5, "PMIC-Die": 100.0}


def test_the_temperatures_command_prints_what_this_host_has():
    done = subprocess.run([sys.executable, str(SAMPLER), "--temperatures"], capture_output=True, text=True,
                          timeout=30)
    from edgeprof.onboard.board_sampler import temperatures, thermal_zones
    assert done.returncode == 0 and json.loads(done.stdout) == {"temps_c": temperatures(thermal_zones())}
