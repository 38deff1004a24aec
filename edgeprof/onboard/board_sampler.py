"""edgeprof's telemetry sampler, run ON the board around one measurement (Python 3.6+, standard library only).

    python3 WORKDIR/board_sampler.py --out WORKDIR/telemetry-N.jsonl --stop WORKDIR/telemetry-N.jsonl.stop
        --interval-ms 100 [--tegrastats | --nvidia-smi FIELD,FIELD,...] [--proc] [--others WORKDIR]
    python3 WORKDIR/board_sampler.py --idle-sample SECONDS --others WORKDIR
    python3 WORKDIR/board_sampler.py --temperatures

The second form watches the other processes for SECONDS and prints one "others" record (below) on stdout:
how busy the board is before a measurement starts (--quiet-board). The third prints {"temps_c": {zone type:
degrees C}} of every readable thermal zone once (--start-below).

It writes JSON lines to OUT.part and renames the file to OUT when it has stopped, so a complete file
means a clean stop. Every record carries "t", the board's epoch clock (time.time()) when the reading
arrived; the backends report their timed window on the same clock. Records:

- {"kind": "start", ...}: pid, child pid, UTC offset, interval, thermal trip points (/sys/class/thermal);
- {"kind": "tegrastats", "line": ...} and {"kind": "nvidia-smi", "line": ...}: each tool's line as
  printed; the host parses them with edgeprof.parsers (one parser per format, no second copy here);
- {"kind": "block", "lines": N, "stats": ...} after every --block tegrastats lines (and after the last
  ones): window_stats.Stats of those N lines, each read with tegrastats_line (the parser the host's
  edgeprof.parsers.tegrastats wraps), the board total being the sum of the --power-total rails. The host
  merges the blocks that lie inside a result's timed window instead of parsing their lines again;
- {"kind": "blocks_stopped", "message": ...}: keeping blocks failed (the lines are still all written);
- {"kind": "proc", ...}: per-CPU load and clock, RAM, thermal zones, read from /proc and /sys;
- {"kind": "others", ...} (--others, once a second): the CPU seconds that processes other than the
  measurement used since the previous record, the busiest of them, the 1-minute load average, and the
  other processes holding the GPU at that moment ("gpu", or "gpu_error" when that could not be read);
- {"kind": "error", "message": ...}: a source that could not start or died;
- {"kind": "end", "reason": ...}: why it stopped.

It stops when the stop file appears (the host's normal stop: no signal, so no sudo, is needed to stop
a sampler started as root), or on SIGTERM/SIGINT/SIGHUP (Ctrl-C, and the board lease's guard, which
runs `pkill -TERM -f WORKDIR/` when the host dies: this script's path is in its command line). A tool
it starts has no work folder in its command line, so the sampler stops it itself; and the child gets
PR_SET_PDEATHSIG, so even a SIGKILLed sampler takes it along.
"""
import argparse
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time

if __package__:    # the host's tests import it as edgeprof.onboard.board_sampler; the board runs it as a script
    from .window_stats import Blocks
else:
    from window_stats import Blocks

_PR_SET_PDEATHSIG = 1
_THERMAL = "/sys/class/thermal"
# How often the stop file is looked for while no line arrives.
_POLL_S = 0.05
# How often the other processes are read: a pass reads /proc/PID/stat of every process.
_OTHERS_S = 1.0
_OTHERS_TOP = 5
# Who holds GPU memory on a Jetson: nvmap's per-client table in debugfs (root only), "CLIENT PROCESS PID
# SIZE" lines and a "total" line, the file jtop reads for its process list (rbonghi/jetson_stats,
# jtop/core/processes.py); L4T releases before Orin name it "clients", later ones "maps".
_NVMAP_TABLES = ("/sys/kernel/debug/nvmap/iovmm/maps", "/sys/kernel/debug/nvmap/iovmm/clients")
# Processes with a CUDA context on the measured GPU, index 0 as for the rest of the telemetry
# (nvidia-smi --help-query-compute-apps).
_COMPUTE_APPS = ["nvidia-smi", "-i", "0", "--query-compute-apps=pid,process_name,used_gpu_memory",
                 "--format=csv,noheader,nounits"]


# Set by the signal handler; the main loop's select() wakes through signal.set_wakeup_fd. A handler that
# raised instead could cut a JSON line in half.
_SIGNALLED = []


def _on_signal(signum, frame):
    _SIGNALLED.append(signal.Signals(signum).name)


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def _pdeathsig():
    """A preexec_fn for the child: the kernel sends it SIGTERM when the sampler dies, however it dies.
    libc is looked up here, in the sampler, not between fork and exec."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux/glibc: the sampler's own stop still terminates the child
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def thermal_zones(root=_THERMAL):
    """{zone type: {"path": sysfs temp file, "trips_c": [(type, degrees C)]}} for every readable zone."""
    zones = {}
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return zones
    for name in names:
        if not name.startswith("thermal_zone"):
            continue
        base = os.path.join(root, name)
        kind = _read(os.path.join(base, "type"))
        if not kind or kind in zones:
            continue  # a type seen twice keeps its first zone: tegrastats, too, names zones by type
        trips = []
        index = 0
        while True:
            trip_type = _read(os.path.join(base, "trip_point_%d_type" % index))
            trip_temp = _read(os.path.join(base, "trip_point_%d_temp" % index))
            if trip_type is None or trip_temp is None:
                break
            if trip_temp.lstrip("-").isdigit():
                trips.append((trip_type, int(trip_temp) / 1000.0))
            index += 1
        zones[kind] = {"path": os.path.join(base, "temp"), "trips_c": trips}
    return zones


def temperatures(zones):
    """{zone type: degrees C} of each zone whose temp file reads as millidegrees now (sysfs-api.txt)."""
    temps = {}
    for kind, zone in zones.items():
        value = _read(zone["path"])
        if value and value.lstrip("-").isdigit():
            temps[kind] = int(value) / 1000.0
    return temps


class ProcReader(object):
    """CPU load per core (busy jiffies over the interval), CPU clocks, RAM and thermal zones."""

    def __init__(self, zones):
        self.zones = zones
        self.before = self._cpu_times()

    @staticmethod
    def _cpu_times():
        times = []
        with open("/proc/stat") as handle:
            for line in handle:
                fields = line.split()
                if fields[0].startswith("cpu") and fields[0] != "cpu":
                    # user nice system idle iowait irq softirq steal: idle, iowait and steal (time the
                    # hypervisor gave to others) are not work done here.
                    user, nice, system, idle, iowait, irq, softirq, steal = [int(v) for v in fields[1:9]]
                    busy = user + nice + system + irq + softirq
                    times.append((fields[0], busy, busy + idle + iowait + steal))
        return times

    def sample(self):
        """Lists indexed by CPU number (None for a CPU that is offline, as tegrastats prints "off")."""
        after = self._cpu_times()
        previous = dict((name, (busy, total)) for name, busy, total in self.before)
        count = max(int(name[3:]) for name, _, _ in after) + 1
        loads, clocks = [None] * count, [None] * count
        for name, busy, total in after:
            index = int(name[3:])
            busy0, total0 = previous.get(name, (busy, total))
            loads[index] = round(100.0 * (busy - busy0) / (total - total0), 1) if total > total0 else None
            khz = _read("/sys/devices/system/cpu/%s/cpufreq/scaling_cur_freq" % name)
            clocks[index] = int(khz) // 1000 if khz and khz.isdigit() else None
        self.before = after
        meminfo = {}
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                meminfo[key] = int(rest.split()[0])
        # MemAvailable: the kernel's own estimate of what a new program could use without swapping.
        available = meminfo.get("MemAvailable", meminfo["MemFree"] + meminfo.get("Cached", 0))
        temps = temperatures(self.zones)
        return {"cpu_load_pct": loads, "cpu_freq_mhz": clocks,
                "ram_used_mb": (meminfo["MemTotal"] - available) // 1024, "ram_total_mb": meminfo["MemTotal"] // 1024,
                "temps_c": temps}


class OtherProcesses(object):
    """CPU time of every process but the measurement's own, over each interval: what competed with it.
    The measurement's processes are those whose command line names the work folder (the runner, caffe,
    trtexec, this sampler and the shells and sudo around them), plus the tool this sampler started. CPU
    time is utime + stime of /proc/PID/stat (fields 14 and 15, in clock ticks; proc(5))."""

    def __init__(self, workdir, own_pids, read_gpu_users=None):
        self.workdir = workdir
        self.own = set(own_pids)
        self.read_gpu_users = read_gpu_users
        self.tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self.ours = {}       # pid -> whether it belongs to the measurement (its command line is read once)
        self.before = self._ticks()
        self.since = time.monotonic()

    @staticmethod
    def _ticks():
        found = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            stat = _read("/proc/%s/stat" % name)
            if not stat:
                continue
            # "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so split after the last ")".
            close = stat.rfind(")")
            fields = stat[close + 2:].split()
            if len(fields) > 12 and fields[11].isdigit() and fields[12].isdigit():
                found[int(name)] = (stat[stat.find("(") + 1:close], int(fields[11]) + int(fields[12]))
        return found

    def _is_ours(self, pid):
        if pid in self.own:
            return True
        if pid not in self.ours:
            cmdline = _read("/proc/%d/cmdline" % pid)
            self.ours[pid] = cmdline is not None and self.workdir in cmdline
        return self.ours[pid]

    def sample(self):
        after, now = self._ticks(), time.monotonic()
        used = []
        for pid, (comm, ticks) in after.items():
            if not self._is_ours(pid):
                # A process born since the last pass counts from its start.
                delta = ticks - self.before.get(pid, (comm, 0))[1]
                if delta > 0:
                    used.append((delta * self.tick_s, comm, pid))
        self.before, interval = after, now - self.since
        self.since = now
        used.sort(reverse=True)
        load = (_read("/proc/loadavg") or "").split()
        record = {"interval_s": round(interval, 3), "cpu_s": round(sum(u[0] for u in used), 3),
                  "top": [[comm, pid, round(cpu, 3)] for cpu, comm, pid in used[:_OTHERS_TOP]],
                  "load1": float(load[0]) if load else None}
        if self.read_gpu_users is not None:
            try:
                record["gpu"] = [[name, pid, mb] for name, pid, mb in self.read_gpu_users()
                                 if not self._is_ours(pid)]
            except (OSError, subprocess.SubprocessError) as error:
                record["gpu_error"] = str(error)
        return record


def nvmap_clients(text):
    """[(process, pid, MB)] of an nvmap client table: the header, one "CLIENT PROCESS PID SIZE" line per
    client with its size in K (M or G where larger), then "total SIZE". The process name is the kernel's
    comm, which may hold spaces, so PID and SIZE are read from the end."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[-2].isdigit() and fields[-1][:-1].isdigit() and fields[-1][-1] in "KMG":
            scale = {"K": 1.0 / 1024, "M": 1.0, "G": 1024.0}[fields[-1][-1]]
            found.append((" ".join(fields[1:-2]), int(fields[-2]), round(int(fields[-1][:-1]) * scale, 1)))
    return found


def compute_apps(text):
    """[(process, pid, MB or None)] of nvidia-smi's compute-apps CSV (memory "[N/A]" where the driver hides
    it, as under some containers)."""
    found = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 3 and fields[0].isdigit():
            # A process name may hold commas; the memory is the last field.
            memory = fields[-1]
            found.append((",".join(fields[1:-1]), int(fields[0]),
                          float(memory) if memory.replace(".", "", 1).isdigit() else None))
    return found


def gpu_users(kind):
    """A function returning the processes that hold the GPU now, [(process, pid, MB)], or raising
    OSError with why they could not be read; None where the board has no such table."""
    if kind == "nvidia-smi":
        def read():
            done = subprocess.run(_COMPUTE_APPS, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, timeout=5)
            if done.returncode != 0:
                raise OSError("nvidia-smi --query-compute-apps exited with status %d: %s" % (
                    done.returncode, done.stderr.decode("utf-8", "replace").strip()[-200:]))
            return compute_apps(done.stdout.decode("utf-8", "replace"))
        return read
    if kind == "tegrastats":
        def read():
            for path in _NVMAP_TABLES:
                if os.path.exists(path):
                    with open(path) as handle:
                        return nvmap_clients(handle.read())
            raise OSError("no nvmap client table (%s)" % " or ".join(_NVMAP_TABLES))
        return read
    return None


class Sampler(object):
    def __init__(self, args, wakeup):
        self.args = args
        self.wakeup = wakeup
        self.part = args.out + ".part"
        self.out = open(self.part, "w")
        self.child = None
        self.child_kind = None
        self.child_stderr = args.out + ".stderr"
        self.buffer = b""
        self.blocks = Blocks(args.block, args.power_total)

    def write(self, kind, **values):
        values.update(kind=kind, t=time.time())
        self.out.write(json.dumps(values, sort_keys=True) + "\n")
        self.out.flush()

    def keep_in_block(self, line):
        """Add a tegrastats line (already written) to the current block; write the block when it is full."""
        if self.blocks is None:
            return
        try:
            block = self.blocks.add(line)
        except Exception as error:  # a line this parser cannot take: the host parses every line itself
            self.write("blocks_stopped", message="%s: %s" % (type(error).__name__, error))
            self.blocks = None
            return
        if block:
            self.write("block", **block)

    def end_block(self):
        block = self.blocks.end() if self.blocks is not None else None
        if block:
            self.write("block", **block)

    def start_child(self):
        """Start the tool, if one is asked for; returns why it could not start, or None."""
        if self.args.tegrastats:
            argv, kind = ["tegrastats", "--interval", str(self.args.interval_ms)], "tegrastats"
        elif self.args.nvidia_smi:
            argv = ["nvidia-smi", "--query-gpu=" + self.args.nvidia_smi, "--format=csv,noheader,nounits",
                    "-lms", str(self.args.interval_ms)]
            kind = "nvidia-smi"
        else:
            return None
        try:
            # stderr to a file: a pipe nobody reads until the end could fill up and stall the tool.
            with open(self.child_stderr, "wb") as stderr:
                self.child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                              preexec_fn=_pdeathsig())
            self.child_kind = kind
        except OSError as error:
            return "%s could not start: %s" % (argv[0], error)
        return None

    def stop_child(self):
        if self.child is None or self.child.poll() is not None:
            return
        self.child.terminate()
        try:
            self.child.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()

    def _child_lines(self):
        """Complete lines the child printed; None once it has exited."""
        chunk = os.read(self.child.stdout.fileno(), 65536)
        if not chunk:
            return None
        self.buffer += chunk
        lines = self.buffer.split(b"\n")
        self.buffer = lines.pop()
        return [line.decode("utf-8", "replace").rstrip() for line in lines if line.strip()]

    def _child_exited(self):
        status = self.child.wait()
        message = (_read(self.child_stderr) or "no message").splitlines()[-1:]
        self.child = None
        return "%s exited with status %s: %s" % (self.child_kind, status, " ".join(message))

    def _without_tool(self, message, proc, zones):
        """Record why the tool is gone; /proc still gives CPU and RAM figures."""
        self.write("error", message=message)
        return proc or ProcReader(zones)

    def run(self):
        zones = thermal_zones()
        proc = ProcReader(zones) if self.args.proc else None
        failed = self.start_child()
        self.write("start", pid=os.getpid(), child_pid=self.child.pid if self.child else None,
                   child=self.child_kind, interval_ms=self.args.interval_ms,
                   utc_offset_s=time.localtime().tm_gmtoff,
                   trip_points_c=dict((kind, zone["trips_c"]) for kind, zone in zones.items()))
        if failed:
            proc = self._without_tool(failed, proc, zones)
        others = OtherProcesses(self.args.others, [os.getpid()] + ([self.child.pid] if self.child else []),
                                gpu_users("tegrastats" if self.args.tegrastats else
                                          "nvidia-smi" if self.args.nvidia_smi else None)) \
            if self.args.others else None
        next_others = time.monotonic() + _OTHERS_S
        interval_s = self.args.interval_ms / 1000.0
        next_proc = time.monotonic() + interval_s
        reason = None
        while reason is None:
            wait = _POLL_S if proc is None else max(0.0, min(_POLL_S, next_proc - time.monotonic()))
            watched = [self.wakeup] + ([self.child.stdout] if self.child else [])
            readable = select.select(watched, [], [], wait)[0]
            if self.child is not None and self.child.stdout in readable:
                lines = self._child_lines()
                if lines is None:
                    proc = self._without_tool(self._child_exited(), proc, zones)
                else:
                    for line in lines:
                        self.write(self.child_kind, line=line)
                        if self.child_kind == "tegrastats":
                            self.keep_in_block(line)
            if proc and time.monotonic() >= next_proc:
                self.write("proc", **proc.sample())
                next_proc = max(next_proc + interval_s, time.monotonic())
            if others and time.monotonic() >= next_others:
                self.write("others", **others.sample())
                next_others = max(next_others + _OTHERS_S, time.monotonic())
            if _SIGNALLED:
                reason = _SIGNALLED[0]
            elif os.path.exists(self.args.stop):
                reason = "stop file"
        self.stop_child()
        self.end_block()
        self.write("end", reason=reason)
        self.out.close()
        os.rename(self.part, self.args.out)


def main(argv):
    parser = argparse.ArgumentParser(prog="board_sampler.py")
    parser.add_argument("--idle-sample", type=float, metavar="SECONDS")
    parser.add_argument("--temperatures", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--stop")
    parser.add_argument("--interval-ms", type=int, default=100)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tegrastats", action="store_true")
    source.add_argument("--nvidia-smi", metavar="FIELDS")
    parser.add_argument("--proc", action="store_true")
    parser.add_argument("--others", metavar="WORKDIR", help="also the CPU time of processes not naming WORKDIR")
    parser.add_argument("--block", type=int, default=10, metavar="LINES", help="tegrastats lines per block record")
    parser.add_argument("--power-total", metavar="RAILS", help="the rails whose sum is the board total: VDD_IN, A+B")
    args = parser.parse_args(argv)
    if args.temperatures:
        print(json.dumps({"temps_c": temperatures(thermal_zones())}, sort_keys=True))
        return 0
    if args.idle_sample is not None:
        if not args.others or args.idle_sample <= 0:
            parser.error("--idle-sample takes a positive number of seconds and --others WORKDIR")
        others = OtherProcesses(args.others, [os.getpid()])
        time.sleep(args.idle_sample)
        print(json.dumps(dict(others.sample(), kind="others", t=time.time()), sort_keys=True))
        return 0
    if not args.out or not args.stop:
        parser.error("--out and --stop are required")
    if args.block < 1:
        parser.error("--block takes a positive number of lines")
    wakeup, wakeup_write = os.pipe()
    for fd in (wakeup, wakeup_write):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wakeup_write)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    # Started through sudo on Jetsons: the login user's edgeprof must read the file and remove the folder.
    os.umask(0o022)
    Sampler(args, wakeup).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
