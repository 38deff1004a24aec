"""The simulated Jetson TX2 tools (tests/lab/jetson_sim), run from the source folder.

Each test gets its own board: a fresh state folder (JETSON_SIM_STATE), the TX2 nvpmodel.conf of
this folder (JETSON_SIM_NVPMODEL_CONF) and a HOME for jetson_clocks' default store file. What the
tools print is read back with edgeprof's own parsers, so these tests also check that the
simulator's formats are ones the parsers accept. Most tests change the board and need root, as
the real tools do; the non-root tests run the tools as ``nobody`` through setpriv.
"""

import ast
import importlib.machinery
import importlib.util
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edgeprof.parsers import jetson_clocks as clocks_parser
from edgeprof.parsers import nvpmodel as nvpmodel_parser
from edgeprof.parsers import tegrastats as tegrastats_parser

SIM = Path(__file__).parent / "jetson_sim"
TOOLS = ("nvpmodel", "jetson_clocks", "tegrastats")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the simulated tools change the board only as root")
needs_setpriv = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                   reason="running as nobody needs root and setpriv")

# The flashed TX2 (mode 3 MAXP_CORE_ARM, nothing pinned), as jetson_clocks --show reads back.
A57_MIN, A57_MAX = 345_600_000, 2_035_200_000


def cpu(number, online, min_hz, max_hz, cur_hz):
    return {"name": "cpu%d" % number, "online": online, "min_hz": min_hz, "max_hz": max_hz, "cur_hz": cur_hz}


FLASHED_SHOW = {
    "power_mode": "MAXP_CORE_ARM",
    "gpu": {"min_hz": 114_750_000, "max_hz": 1_134_750_000, "cur_hz": 114_750_000},
    "emc": {"min_hz": 40_800_000, "max_hz": 1_600_000_000, "cur_hz": 1_600_000_000},
    "cpus": [cpu(n, n not in (1, 2), A57_MIN, A57_MAX, A57_MIN) for n in range(6)],
}


class Board:
    """One simulated board: its state folder and a way to run its tools."""

    def __init__(self, root_dir):
        self.dir = root_dir
        self.state = root_dir / "state"
        self.home = root_dir / "home"
        self.proc = root_dir / "proc"
        for folder in (self.state, self.home, self.proc):
            folder.mkdir()
        (self.state / "tegrastats.d").mkdir()
        # Readable by nobody, as install.sh makes the board's state folder.
        for folder in (root_dir, self.state, self.home, self.proc):
            folder.chmod(0o755)
        (self.state / "tegrastats.d").chmod(0o1777)
        self.env = dict(os.environ, JETSON_SIM_STATE=str(self.state), HOME=str(self.home),
                        JETSON_SIM_NVPMODEL_CONF=str(SIM / "nvpmodel.conf"))
        self.started = []

    def command(self, tool, *args, user=None):
        command = [sys.executable, str(SIM / tool), *args]
        if user:
            command = ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups", *command]
        return command

    def run(self, tool, *args, user=None, stdin=""):
        return subprocess.run(self.command(tool, *args, user=user), env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=30)

    def start(self, tool, *args, user=None):
        process = subprocess.Popen(self.command(tool, *args, user=user), env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        self.started.append(process)
        return process

    def show(self):
        result = self.run("jetson_clocks", "--show")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def mode(self):
        return nvpmodel_parser.parse(self.run("nvpmodel", "-q").stdout).to_dict()

    def use_fake_proc(self, swap_total_kb=4_019_500):
        """A stand-in /proc with known memory figures and CPU counters that do not move."""
        (self.proc / "meminfo").write_text(
            "MemTotal:        8039000 kB\nMemFree:         5000000 kB\nBuffers:          100000 kB\n"
            "Cached:          1000000 kB\nSwapCached:         2048 kB\n"
            "SwapTotal:       %d kB\nSwapFree:        %d kB\n" % (swap_total_kb, max(swap_total_kb - 19_500, 0)))
        (self.proc / "stat").write_text(
            "cpu  200 0 200 2000 0 0 0 0 0 0\ncpu0 100 0 100 1000 0 0 0 0 0 0\ncpu1 100 0 100 1000 0 0 0 0 0 0\n")
        (self.proc / "buddyinfo").write_text(
            "Node 0, zone      DMA      1      1      1      1      1      1      1      1      1      1      2\n"
            "Node 0, zone   Normal     10     20     30     40     50     60     70     80     90    100   1154\n")
        self.env["JETSON_SIM_PROC"] = str(self.proc)


@pytest.fixture
def board():
    # Not under pytest's tmp_path: its base folder is private to root, and nobody must read the state.
    root_dir = Path(tempfile.mkdtemp(prefix="jetson-sim-"))
    made = Board(root_dir)
    yield made
    subprocess.run(made.command("tegrastats", "--stop"), env=made.env, capture_output=True, timeout=30)
    for process in made.started:
        if process.poll() is None:
            process.kill()
        process.communicate()
    shutil.rmtree(root_dir)


def read_line(process, timeout=10.0):
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no tegrastats line within %s s" % timeout
    return process.stdout.readline()


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def load_tool(tool, monkeypatch, board_):
    """Import a tool as a module, with the board's environment, to call its functions."""
    for name, value in board_.env.items():
        if name.startswith("JETSON_SIM_"):
            monkeypatch.setenv(name, value)
    loader = importlib.machinery.SourceFileLoader("sim_" + tool, str(SIM / tool))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


# --- the scripts themselves --------------------------------------------------------------------

@pytest.mark.parametrize("tool", TOOLS)
def test_scripts_are_python_3_6_and_executable(tool):
    # The board may run Python 3.6 (JetPack 4.6's Ubuntu 18.04); the lab's bullseye has 3.9.
    path = SIM / tool
    ast.parse(path.read_text(), feature_version=(3, 6))
    assert path.read_text().startswith("#!/usr/bin/env python3\n")
    assert path.stat().st_mode & stat.S_IXUSR


def test_install_puts_tools_where_jetpack_does(tmp_path):
    subprocess.run(["sh", str(SIM / "install.sh"), str(tmp_path)], check=True, capture_output=True)
    for path in ("usr/sbin/nvpmodel", "usr/bin/jetson_clocks", "usr/bin/tegrastats"):
        assert (tmp_path / path).read_bytes() == (SIM / Path(path).name).read_bytes()
        assert (tmp_path / path).stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "etc/nvpmodel.conf").read_bytes() == (SIM / "nvpmodel.conf").read_bytes()
    assert (tmp_path / "var/lib/jetson-sim").is_dir()
    assert (tmp_path / "var/lib/jetson-sim/tegrastats.d").stat().st_mode & 0o7777 == 0o1777
    # The SoC thermal zones the lab mounts at the board's /sys/class/thermal, read as edgeprof's sampler reads
    # them: types and trip points, no temp file (the temperatures are tegrastats').
    from edgeprof.onboard.board_sampler import temperatures, thermal_zones
    zones = thermal_zones(str(tmp_path / "usr/share/jetson-sim/thermal"))
    assert set(zones) == {"BCPU-therm", "MCPU-therm", "GPU-therm", "PLL-therm"}
    assert zones["GPU-therm"]["trips_c"] == [("passive", 96.5), ("critical", 101.5)]
    assert temperatures(zones) == {}


# --- nvpmodel and jetson_clocks ----------------------------------------------------------------

@needs_root
def test_flashed_board_is_mode_3_unpinned(board):
    assert board.mode() == {"mode_name": "MAXP_CORE_ARM", "mode_id": 3}
    verbose = board.run("nvpmodel", "-q", "--verbose").stdout
    assert nvpmodel_parser.parse(verbose).to_dict() == {"mode_name": "MAXP_CORE_ARM", "mode_id": 3}
    # The conf's 2000000 kHz and 1120000000 Hz read back rounded up, as on a JetPack 4.2 TX2.
    assert ("PARAM CPU_A57: ARG MAX_FREQ: PATH /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq: "
            "REAL_VAL: 2035200 CONF_VAL: 2000000") in verbose
    assert "REAL_VAL: 1134750000 CONF_VAL: 1120000000" in verbose
    show = board.show()
    assert show.splitlines()[:2] == ["SOC family:tegra186  Machine:quill", "Online CPUs: 0,3-5"]
    assert clocks_parser.parse(show).to_dict() == FLASHED_SHOW
    # Reading changes nothing: the state file appears with the first root change only.
    assert not (board.state / "state.json").exists()


@needs_root
def test_mode_switch_then_pinning(board):
    switched = board.run("nvpmodel", "-m", "0")
    assert (switched.returncode, switched.stdout) == (0, "")
    assert board.mode() == {"mode_name": "MAXN", "mode_id": 0}
    unpinned = clocks_parser.parse(board.show()).to_dict()
    assert unpinned["cpus"] == [cpu(n, True, A57_MIN, A57_MAX, A57_MIN) for n in range(6)]
    assert unpinned["gpu"] == {"min_hz": 114_750_000, "max_hz": 1_300_500_000, "cur_hz": 114_750_000}
    assert unpinned["emc"] == {"min_hz": 40_800_000, "max_hz": 1_866_000_000, "cur_hz": 1_600_000_000}

    pinned_run = board.run("jetson_clocks")
    assert (pinned_run.returncode, pinned_run.stdout) == (0, "")
    show = board.show()
    pinned = clocks_parser.parse(show).to_dict()
    assert pinned["cpus"] == [cpu(n, True, A57_MAX, A57_MAX, A57_MAX) for n in range(6)]
    assert pinned["gpu"] == {"min_hz": 1_300_500_000, "max_hz": 1_300_500_000, "cur_hz": 1_300_500_000}
    assert pinned["emc"] == {"min_hz": 40_800_000, "max_hz": 1_866_000_000, "cur_hz": 1_866_000_000}
    assert "FreqOverride=1" in show and "IdleStates: C1=0 c6=0 c7=0" in show


@needs_root
def test_pinning_stays_within_the_mode(board):
    board.run("jetson_clocks")
    pinned = clocks_parser.parse(board.show()).to_dict()
    assert pinned["power_mode"] == "MAXP_CORE_ARM"
    assert [c["online"] for c in pinned["cpus"]] == [True, False, False, True, True, True]
    assert {c["cur_hz"] for c in pinned["cpus"] if c["online"]} == {A57_MAX}
    assert pinned["gpu"] == {"min_hz": 1_134_750_000, "max_hz": 1_134_750_000, "cur_hz": 1_134_750_000}
    # The EMC is pinned at the mode's ISO cap, not at its 1866 MHz maximum.
    assert pinned["emc"] == {"min_hz": 40_800_000, "max_hz": 1_600_000_000, "cur_hz": 1_600_000_000}


@needs_root
def test_maxq_limits_round_up_to_the_tables(board):
    assert board.run("nvpmodel", "-m1").returncode == 0
    verbose = board.run("nvpmodel", "-q", "--verbose").stdout
    assert "NVPM VERB: Current mode: NV Power Mode: MAXQ\n1\n" in verbose
    assert "REAL_VAL: 1267200 CONF_VAL: 1200000" in verbose
    assert "REAL_VAL: 854250000 CONF_VAL: 850000000" in verbose
    assert "REAL_VAL: 1331200000 CONF_VAL: 1331200000" in verbose


@needs_root
def test_unknown_mode_changes_nothing(board):
    result = board.run("nvpmodel", "-m", "7")
    assert (result.returncode, result.stdout) == (1, "NVPM ERROR: request for bad power mode 7\n")
    assert board.mode() == {"mode_name": "MAXP_CORE_ARM", "mode_id": 3}


@needs_root
def test_store_pin_restore_round_trip(board):
    before = (board.run("nvpmodel", "-q").stdout, board.show())
    stored = board.run("jetson_clocks", "--store")
    assert (stored.returncode, stored.stdout) == (0, "")
    saved = (board.home / "l4t_dfs.conf").read_text().splitlines()
    # The real script's "path:value" lines, TX2 paths, in its order.
    assert saved[:2] == ["/sys/devices/system/cpu/cpu0/online:1", "/sys/devices/system/cpu/cpu1/online:0"]
    assert "/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq:345600" in saved
    assert saved[-5:] == ["/sys/class/devfreq/17000000.gp10b/min_freq:114750000",
                          "/sys/class/devfreq/17000000.gp10b/device/railgate_enable:1",
                          "/sys/kernel/debug/bpmp/debug/clk/emc/mrq_rate_locked:0",
                          "/sys/devices/pwm-fan/target_pwm:0", "/sys/devices/pwm-fan/temp_control:1"]

    board.run("jetson_clocks")
    assert board.show() != before[1]
    restored = board.run("jetson_clocks", "--restore")
    assert (restored.returncode, restored.stdout) == (0, "")
    assert (board.run("nvpmodel", "-q").stdout, board.show()) == before


@needs_root
def test_restoring_after_max_mode_needs_maxn_reapplied(board):
    saved = str(board.dir / "saved.conf")
    before = (board.run("nvpmodel", "-q").stdout, board.show())
    board.run("jetson_clocks", "--store", saved)
    board.run("nvpmodel", "-m", "0")
    board.run("jetson_clocks")

    # Back to mode 3 first: the Denver cores go offline still pinned, and restore cannot reach them.
    board.run("nvpmodel", "-m", "3")
    board.run("jetson_clocks", "--restore", saved)
    denver = clocks_parser.parse(board.show()).cpus[1]
    assert (denver.online, denver.min_hz, denver.max_hz) == (False, A57_MAX, A57_MAX)

    # Re-applying MAXN resets both clusters' minimum while every core is online.
    for args in (("nvpmodel", "-m", "0"), ("nvpmodel", "-m", "3"), ("jetson_clocks", "--restore", saved)):
        assert board.run(*args).returncode == 0
    assert (board.run("nvpmodel", "-q").stdout, board.show()) == before


@needs_root
def test_store_asks_before_overwriting(board):
    saved = board.dir / "saved.conf"
    board.run("jetson_clocks", "--store", str(saved))
    first = saved.read_text()
    board.run("jetson_clocks")

    refused = board.run("jetson_clocks", "--store", str(saved), stdin="n\n")
    assert refused.returncode == 1
    assert refused.stdout == ("File %s already exists. Can I overwrite it? Y/N:\nError: file %s already exists!\n"
                              % (saved, saved))
    assert saved.read_text() == first

    accepted = board.run("jetson_clocks", "--store", str(saved), stdin="y\n")
    assert accepted.returncode == 0
    assert "/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq:2035200" in saved.read_text()


@needs_root
def test_restore_without_file(board):
    result = board.run("jetson_clocks", "--restore", "/nonexistent/l4t_dfs.conf")
    assert (result.returncode, result.stdout) == (1, "Error: /nonexistent/l4t_dfs.conf file not found !\n")


@needs_root
def test_gpu_clock_override_hook(board):
    (board.state / "gpu_clock_override").write_text("318750000\n")
    assert clocks_parser.parse(board.show()).gpu.cur_hz == 318_750_000


@needs_root
def test_thermal_ramp_hook_heats_the_soc_and_throttles_the_pinned_gpu(board, monkeypatch):
    board.use_fake_proc()
    assert board.run("jetson_clocks").returncode == 0
    tegrastats = load_tool("tegrastats", monkeypatch, board)
    sampler = tegrastats.Sampler(root=True)
    cool = tegrastats_parser.parse_line(sampler.line([1.0]))
    assert (cool.temps_c["GPU"], cool.gpu_freq_mhz) == (46.5, 1134)
    # Not started yet: nothing changes.
    ramp = board.state / "thermal_ramp"
    ramp.write_text('{"start_s": %r, "rise_c_per_s": 10}' % (time.time() + 60))
    assert tegrastats_parser.parse_line(sampler.line([1.0])).temps_c["GPU"] == 46.5
    # 2 s in at 10 C/s: 68 C, under GPU-therm's 96.5 C passive trip, the clock still pinned.
    ramp.write_text('{"start_s": %r, "rise_c_per_s": 10}' % (time.time() - 2))
    warm = tegrastats_parser.parse_line(sampler.line([1.0]))
    assert 68 <= warm.temps_c["GPU"] <= 70 and warm.gpu_freq_mhz == 1134
    assert warm.temps_c["Tboard"] == cool.temps_c["Tboard"]     # the board's own sensors stay
    # Long past it: the peak (the trip + 1.5 C) and the cooling device's cap, in tegrastats and --show alike.
    ramp.write_text('{"start_s": %r, "rise_c_per_s": 10}' % (time.time() - 60))
    hot = tegrastats_parser.parse_line(sampler.line([1.0]))
    assert (hot.temps_c["GPU"], hot.temps_c["BCPU"], hot.gpu_freq_mhz) == (98, 98, 624)
    assert clocks_parser.parse(board.show()).gpu.cur_hz == 624_750_000
    ramp.unlink()
    assert clocks_parser.parse(board.show()).gpu.cur_hz == 1_134_750_000


@needs_root
def test_reboot_modes_hook_asks_and_a_declined_switch_changes_nothing(board):
    (board.state / "reboot_modes").write_text("1\n")
    for answer, last_lines in (("", ["NVPM ERROR: bad input!", "NVPM ERROR: optMask is 1, no request for power mode"]),
                               ("no\n", ["NVPM ERROR: optMask is 1, no request for power mode"])):
        declined = board.run("nvpmodel", "-m", "1", stdin=answer)
        assert declined.returncode == 1
        assert declined.stdout.splitlines() == [
            "NVPM WARN: Golden image context is already created",
            "NVPM WARN: Reboot required for changing to this power mode: 1",
            "NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:", *last_lines]
        assert board.mode() == {"mode_name": "MAXP_CORE_ARM", "mode_id": 3}
    assert board.run("nvpmodel", "-m", "0").returncode == 0      # a mode not listed switches at once
    assert board.run("nvpmodel", "-m", "1", stdin="yes\n").stdout.endswith("NVPM WARN: rebooting\n")
    assert board.mode() == {"mode_name": "MAXQ", "mode_id": 1}
    assert board.run("nvpmodel", "-m", "1").stdout == ""           # already in it: nothing to ask


# --- without root --------------------------------------------------------------------------------

@needs_setpriv
def test_nobody_reads_but_cannot_change(board):
    board.run("nvpmodel", "-m", "0")
    query = board.run("nvpmodel", "-q", user="nobody")
    assert query.returncode == 0
    assert query.stdout == (
        "NV Power Mode: MAXN\n0\n"
        "NVPM ERROR: Error opening /sys/kernel/nvpmodel_emc_cap/emc_iso_cap: 13\n"
        "NVPM ERROR: failed to read PARAM EMC: ARG MAX_FREQ: PATH /sys/kernel/nvpmodel_emc_cap/emc_iso_cap\n")
    assert nvpmodel_parser.parse(query.stdout).to_dict() == {"mode_name": "MAXN", "mode_id": 0}

    switch = board.run("nvpmodel", "-m", "3", user="nobody")
    assert switch.returncode == 1
    assert switch.stdout == (
        "NVPM ERROR: Error writing 0 to /sys/devices/system/cpu/cpu1/online: 13\n"
        "NVPM ERROR: failed to write PARAM CPU_ONLINE: ARG CORE_1: PATH: /sys/devices/system/cpu/cpu1/online VAL: 0\n"
        "NVPM ERROR: failed to set power mode!\n"
        "NVPM ERROR: optMask is 1, no request for power mode\n")
    assert board.mode() == {"mode_name": "MAXN", "mode_id": 0}

    script = str(SIM / "jetson_clocks")
    for args, output in [((), ""), (("--show",), "SOC family:tegra186  Machine:quill\n"),
                         (("--store", str(board.dir / "x.conf")), ""), (("--restore",), "")]:
        refused = board.run("jetson_clocks", *args, user="nobody")
        assert refused.returncode == 1
        assert refused.stdout == output + "Error: Run this script(%s) as a root user\n" % script
    assert not (board.dir / "x.conf").exists()
    assert clocks_parser.parse(board.show()).cpus[0].cur_hz == A57_MIN


@needs_setpriv
def test_nobody_gets_the_reduced_tegrastats_line(board):
    board.use_fake_proc()
    process = board.start("tegrastats", "--interval", "100", user="nobody")
    sample = tegrastats_parser.parse(read_line(process))[0].to_dict()
    assert (sample["emc_load_pct"], sample["emc_freq_mhz"], sample["gpu_freq_mhz"], sample["rails_mw"]) == (
        0, None, None, None)
    assert set(sample["temps_c"]) == {"PLL", "MCPU", "PMIC", "GPU", "BCPU", "thermal"}
    assert sample["cpus"][0] == {"load_pct": 0, "freq_mhz": 345}


# --- tegrastats ----------------------------------------------------------------------------------

@needs_root
def test_tegrastats_line_from_proc_and_state(board):
    board.use_fake_proc()
    process = board.start("tegrastats", "--interval", "100")
    line = read_line(process)
    # RAM used = MemTotal - MemFree - Buffers - Cached; lfb = order-10 blocks of both zones.
    assert line.startswith("RAM 1893/7850MB (lfb 1156x4MB) SWAP 19/3925MB (cached 2MB) "
                           "CPU [0%@345,off,off,0%@345,0%@345,0%@345] EMC_FREQ 3%@1600 GR3D_FREQ 0%@114 APE 150 ")
    sample = tegrastats_parser.parse(line)[0].to_dict()
    assert (sample["ram_used_mb"], sample["ram_total_mb"], sample["swap_used_mb"]) == (1893, 7850, 19)
    assert sample["timestamp"] is None
    assert set(sample["rails_mw"]) == {"VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU",
                                       "VDD_SYS_DDR"}
    assert 2500 < sample["rails_mw"]["VDD_IN"]["cur"] < 3500  # an idle TX2 draws about 3 W

    # Clocks follow the board while tegrastats runs: pin them, then drop the GPU clock.
    assert board.run("jetson_clocks").returncode == 0
    assert wait_for(lambda: "GR3D_FREQ 0%@1134" in read_line(process))
    (board.state / "gpu_clock_override").write_text("318750000")
    assert wait_for(lambda: tegrastats_parser.parse(read_line(process))[0].gpu_freq_mhz == 318)
    pinned = tegrastats_parser.parse(read_line(process))[0]
    assert [c.freq_mhz if c else None for c in pinned.cpus] == [2035, None, None, 2035, 2035, 2035]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert os.listdir(board.state / "tegrastats.d") == []


@needs_root
def test_no_swap_no_swap_field(board):
    board.use_fake_proc(swap_total_kb=0)
    process = board.start("tegrastats", "--interval", "100")
    line = read_line(process)
    assert "SWAP" not in line
    assert tegrastats_parser.parse(line)[0].swap_used_mb is None


@needs_root
def test_load_drives_cpu_gpu_and_power(board, monkeypatch):
    board.use_fake_proc()
    tegrastats = load_tool("tegrastats", monkeypatch, board)
    assert tegrastats.loads_between([(100, 1000), (0, 1000)], [(150, 1100), (100, 1100)]) == [0.5, 1.0]
    sampler = tegrastats.Sampler(root=True)
    idle = tegrastats_parser.parse_line(sampler.line([0.0]))
    busy = tegrastats_parser.parse_line(sampler.line([1.0]))
    assert [c.load_pct for c in busy.cpus if c] == [100, 100, 100, 100]
    assert busy.gpu_load_pct == 100
    assert busy.rails_mw["VDD_IN"].cur > idle.rails_mw["VDD_IN"].cur
    # The average is over the lines printed so far.
    assert busy.rails_mw["VDD_IN"].avg == round((idle.rails_mw["VDD_IN"].cur + busy.rails_mw["VDD_IN"].cur) / 2)


@needs_root
def test_rails_and_clocks_follow_the_power_mode(board, monkeypatch):
    """The same load draws less in MAXQ than in MAXN: lower clock ceilings, two cores fewer (what a power-mode
    sweep measures); the simulator's timing is the host's and does not change with the mode."""
    board.use_fake_proc()
    tegrastats = load_tool("tegrastats", monkeypatch, board)
    lines = {}
    for mode in ("0", "1"):
        assert board.run("nvpmodel", "-m", mode).returncode == 0 and board.run("jetson_clocks").returncode == 0
        lines[mode] = tegrastats_parser.parse_line(tegrastats.Sampler(root=True).line([0.8]))
    maxn, maxq = lines["0"], lines["1"]
    assert (maxn.gpu_freq_mhz, maxq.gpu_freq_mhz) == (1300, 854)
    assert (maxn.emc_freq_mhz, maxq.emc_freq_mhz) == (1866, 1331)
    assert [c is None for c in maxq.cpus] == [False, True, True, False, False, False]
    for rail in ("VDD_IN", "VDD_SYS_GPU", "VDD_SYS_CPU", "VDD_SYS_DDR"):
        assert maxq.rails_mw[rail].cur < maxn.rails_mw[rail].cur, rail


@needs_root
def test_stop_ends_foreground_and_background_instances(board):
    board.use_fake_proc()
    foreground = board.start("tegrastats", "--interval", "100")
    read_line(foreground)
    log = board.dir / "tegrastats.log"
    background = board.run("tegrastats", "--interval", "100", "--logfile", str(log))
    assert (background.returncode, background.stdout) == (0, "")
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2)
    assert len(os.listdir(board.state / "tegrastats.d")) == 2
    daemon_pid = next(int(name) for name in os.listdir(board.state / "tegrastats.d") if int(name) != foreground.pid)

    stopped = board.run("tegrastats", "--stop")
    assert stopped.returncode == 0
    assert foreground.wait(timeout=10) == 0
    assert wait_for(lambda: not os.path.exists("/proc/%d" % daemon_pid) or
                    "Z" in Path("/proc/%d/stat" % daemon_pid).read_text().split()[2])
    assert wait_for(lambda: os.listdir(board.state / "tegrastats.d") == [])
    samples = tegrastats_parser.parse(log.read_text())
    assert len(samples) >= 2 and samples[0].ram_total_mb == 7850
