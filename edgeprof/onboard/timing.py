"""edgeprof's timing core, which every board runner uses: the warm-up and adaptive-stopping loop, the
statistics, the timing options, and the memory and processor facts that do not depend on the framework.
Runs ON the board, beside the runners in the work folder (Python 3.6+, standard library only); the host
imports describe_method() from it as edgeprof.onboard.timing, so a result's `method` is written beside the
loop it describes.

The loop, `measure(step, args)` with `step()` returning (milliseconds, outputs); the discipline is the one
of Google Benchmark's and pyperf's runners (warm-up apart, then repeat until the estimate is stable,
https://pyperf.readthedocs.io/en/latest/run_benchmark.html):
    warm-up: at least --warmup iterations and --warmup-s seconds, excluded from every figure.
    timed: at least --min-iterations and --min-time-s, then until the median's distribution-free 95 %
        confidence interval (order statistics of the binomial(n, 1/2)) lies within --target-ci of the
        median (ci_rel = max(median - lo, hi - median) / median), or --max-time-s passes; --iterations N
        runs exactly N (0: none, e.g. only to dump outputs); --duration-s S runs for S seconds, whatever
        the estimate, and marks a window every --window-s seconds (its iterations and its span on the
        board's clock), so the host can follow the run as it goes: first window, drift, steady state.
    arrivals: --arrival fixed-rate=HZ or poisson=HZ issues the timed queries as a camera or a client would,
        one at each arrival time (every 1/HZ s, or exponential gaps of mean 1/HZ from --arrival-seed) instead
        of back to back; a query that arrives while the previous one runs waits for it. Each time is then
        from the query's arrival to its end (queueing included: what the frame's consumer sees), and a query
        not done before the next one arrives is a missed deadline. The run lasts --iterations queries,
        --duration-s seconds, or --max-time-s. The idle gaps are real: the board may lower its clocks there,
        which is the point (MLPerf Inference's single-stream scenario issues queries the same way, back to
        back; its server scenario as a Poisson process).
    throughput_ips: batch x iterations / wall time of the timed window; the window is also reported on the
        board's clock (epoch seconds), so telemetry can be summarized over exactly it.
"""
import json
import math
import os
import platform
import random
import statistics
import subprocess
import time


# --- options -------------------------------------------------------------------------------------------

def add_timing_arguments(parser):
    parser.add_argument("--iterations", type=int, help="run exactly N timed iterations (0: none)")
    parser.add_argument("--warmup", type=int, default=3, help="minimum warm-up iterations")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="minimum warm-up seconds")
    parser.add_argument("--min-iterations", type=int, default=20)
    parser.add_argument("--min-time-s", type=float, default=1.0)
    parser.add_argument("--max-time-s", type=float, default=30.0, help="stop the timed iterations after this")
    parser.add_argument("--target-ci", type=float, default=0.01,
                        help="stop once the median's 95%% CI is within this fraction of the median")
    parser.add_argument("--duration-s", type=float, help="run the timed iterations for this long, in windows")
    parser.add_argument("--window-s", type=float, default=5.0, help="with --duration-s: one window's length")
    parser.add_argument("--window-log", metavar="PATH",
                        help="with --duration-s: append each finished window to PATH as it ends (see log_window)")
    parser.add_argument("--arrival", default=BACK_TO_BACK, help="back-to-back, fixed-rate=HZ or poisson=HZ")
    parser.add_argument("--arrival-seed", type=int, default=0, help="poisson: the gaps' random seed")


BACK_TO_BACK = "back-to-back"
ARRIVALS = ("fixed-rate", "poisson")


def parse_arrival(text):
    """(kind, rate in Hz) of an --arrival value; (BACK_TO_BACK, None) for back to back. ValueError if bad."""
    if text == BACK_TO_BACK:
        return BACK_TO_BACK, None
    kind, _, rate = text.partition("=")
    try:
        hz = float(rate)
    except ValueError:
        hz = None
    if kind not in ARRIVALS or hz is None or not 0 < hz < 1e6 or hz != hz:
        raise ValueError("--arrival %r: back-to-back, fixed-rate=HZ or poisson=HZ with HZ a positive number "
                         "(e.g. fixed-rate=30 for a 30 fps camera)" % text)
    return kind, hz

def check_timing_arguments(parser, args):
    if args.iterations is not None and args.iterations < 0:
        parser.error("--iterations must be at least 0")
    if args.min_iterations < 1 or args.max_time_s <= 0 or args.target_ci <= 0:
        parser.error("--min-iterations, --max-time-s and --target-ci must be positive")
    if args.duration_s is not None:
        if args.iterations is not None:
            parser.error("--duration-s and --iterations exclude each other")
        if args.duration_s <= 0 or args.window_s <= 0:
            parser.error("--duration-s and --window-s must be positive")
    try:
        parse_arrival(args.arrival)
    except ValueError as error:
        parser.error(str(error))


def timing_settings(args):
    """The timing options as run, under the keys the host reads to describe the iterations policy."""
    return {"iterations": args.iterations, "warmup": args.warmup, "warmup_s": args.warmup_s,
            "min_iterations": args.min_iterations, "min_time_s": args.min_time_s,
            "max_time_s": args.max_time_s, "target_ci": args.target_ci, "duration_s": args.duration_s,
            "window_s": args.window_s if args.duration_s is not None else None, "arrival": args.arrival,
            "arrival_seed": args.arrival_seed if args.arrival.startswith("poisson") else None}


# --- statistics ----------------------------------------------------------------------------------------

def percentile(ordered, p):
    """Linear interpolation between closest ranks (numpy's default) of a sorted list."""
    rank = (len(ordered) - 1) * p / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_ci(ordered, confidence=0.95):
    """Distribution-free confidence interval of the median: [x(k), x(n-k+1)] (1-based) with k the largest
    rank such that P(B <= k - 1) <= (1 - confidence) / 2 for B ~ binomial(n, 1/2); its coverage is at least
    `confidence`. None when n is too small (under 6 samples at 95 %)."""
    n = len(ordered)
    tail = (1 - confidence) / 2
    log_half_n = n * math.log(0.5)
    cumulative = 0.0
    k = 0
    while k < n:
        cumulative += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)
        if cumulative > tail:
            break
        k += 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def summarize(times):
    ordered = sorted(times)
    median = percentile(ordered, 50)
    ci = median_ci(ordered)
    return {
        "latency_ms": {
            "median": median,
            "mean": statistics.mean(ordered),
            "p90": percentile(ordered, 90),
            "p95": percentile(ordered, 95),
            "p99": percentile(ordered, 99),
            "min": ordered[0],
            "max": ordered[-1],
            "stdev": statistics.stdev(ordered) if len(ordered) > 1 else None,
            "iqr": percentile(ordered, 75) - percentile(ordered, 25),
        },
        "ci95_ms": list(ci) if ci else None,
        "ci_rel": max(median - ci[0], ci[1] - median) / median if ci and median > 0 else None,
    }


# --- the loop ------------------------------------------------------------------------------------------

def measure(step, args):
    """Warm-up, then the timed iterations; returns (times in ms, window dict, stop reason, warm-up count).
    With --iterations 0 nothing runs; with --duration-s the window dict also holds "windows"."""
    if args.iterations == 0:
        return [], None, None, 0
    warmup = 0
    t0 = time.perf_counter()
    while warmup < args.warmup or time.perf_counter() - t0 < args.warmup_s:
        step()
        warmup += 1
    if args.arrival != BACK_TO_BACK:
        return run_arrivals(step, args) + (warmup,)
    if args.duration_s is not None:
        return run_for(step, args) + (warmup,)
    times = []
    window = {"start_s": time.time()}
    start = time.perf_counter()
    next_check = args.min_iterations
    reason = "forced"
    while args.iterations is None or len(times) < args.iterations:
        times.append(step()[0])
        if args.iterations is not None:
            continue
        elapsed = time.perf_counter() - start
        if elapsed >= args.max_time_s:
            reason = "time_cap"
            break
        if len(times) >= next_check and elapsed >= args.min_time_s:
            stats = summarize(times)
            if stats["ci_rel"] is not None and stats["ci_rel"] <= args.target_ci:
                reason = "converged"
                break
            # Sorting every iteration would cost O(n log n) each time: check as n grows by a tenth.
            next_check = len(times) + max(1, len(times) // 10)
    window["end_s"] = time.time()
    window["wall_s"] = time.perf_counter() - start
    return times, window, reason, warmup


def log_window(args, mark, times):
    """--window-log: one JSON line per finished window, {"index", "start_s", "end_s", "iterations",
    "times_ms"}, appended and flushed as the window ends, so that the host can read the file while the runner
    runs (live progress) and, after stopping it (Ctrl-C), keep the windows done. A reader takes complete
    lines only: a runner killed while writing leaves at most one partial last line."""
    if not args.window_log:
        return
    with open(args.window_log, "a") as handle:
        handle.write(json.dumps(dict(mark, times_ms=[round(t, 6) for t in times]), sort_keys=True) + "\n")


def run_for(step, args):
    """--duration-s: timed iterations until that many seconds have passed, a window closed every
    --window-s seconds, each {"start_s", "end_s" (board clock), "iterations" (how many ended in it)}; the
    last, shorter window is kept when an iteration ended in it. Returns (times, window, "duration")."""
    times, windows = [], []
    window = {"start_s": time.time(), "windows": windows}
    start = time.perf_counter()
    opened, opened_at, elapsed = 0, window["start_s"], 0.0
    while elapsed < args.duration_s:
        times.append(step()[0])
        elapsed = time.perf_counter() - start
        if elapsed >= (len(windows) + 1) * args.window_s or elapsed >= args.duration_s:
            now = time.time()
            windows.append({"start_s": opened_at, "end_s": now, "iterations": len(times) - opened})
            log_window(args, dict(windows[-1], index=len(windows) - 1), times[opened:])
            opened, opened_at = len(times), now
    window["end_s"] = time.time()
    window["wall_s"] = time.perf_counter() - start
    return times, window, "duration"


def run_arrivals(step, args):
    """--arrival: one query per arrival (see the module docstring); returns (times from arrival, window,
    "arrivals"), the window holding "arrival" (what was asked, queries, missed deadlines, the service and
    queueing times) and, with --duration-s, its "windows" as run_for marks them."""
    kind, hz = parse_arrival(args.arrival)
    gaps = random.Random(args.arrival_seed)
    limit_s = args.duration_s if args.duration_s is not None else args.max_time_s
    times, service, queued, windows = [], [], [], []
    window = {"start_s": time.time()}
    start = arrival = time.perf_counter()
    opened, opened_at, missed, first_done, done = 0, window["start_s"], 0, None, None
    while len(times) < args.iterations if args.iterations is not None else arrival - start < limit_s:
        now = time.perf_counter()
        if now < arrival:
            time.sleep(arrival - now)
        begun = time.perf_counter()
        service.append(step()[0])
        done = time.perf_counter()
        first_done = first_done or done
        times.append((done - arrival) * 1e3)
        queued.append((begun - arrival) * 1e3)
        arrival += 1.0 / hz if kind == "fixed-rate" else gaps.expovariate(hz)
        missed += done > arrival
        elapsed = done - start
        if args.duration_s is not None and (elapsed >= (len(windows) + 1) * args.window_s
                                            or arrival - start >= args.duration_s):
            now = time.time()
            windows.append({"start_s": opened_at, "end_s": now, "iterations": len(times) - opened})
            log_window(args, dict(windows[-1], index=len(windows) - 1), times[opened:])
            opened, opened_at = len(times), now
    window["end_s"] = time.time()
    window["wall_s"] = time.perf_counter() - start
    if args.duration_s is not None:
        window["windows"] = windows
    window["arrival"] = {
        "scenario": kind, "rate_hz": hz, "seed": args.arrival_seed if kind == "poisson" else None,
        "queries": len(times), "missed_deadlines": missed,
        # Queries finished per second, first to last: the arrival rate when the board keeps up, its own pace when
        # it does not.
        "achieved_hz": (len(times) - 1) / (done - first_done) if len(times) > 1 and done > first_done else None,
        "service_ms": summarize(service)["latency_ms"] if service else None,
        "queued_ms": {"median": percentile(sorted(queued), 50), "max": max(queued)} if queued else None}
    return times, window, "arrivals"


def timing_report(times, window, reason, warmup, batch):
    """The JSON figures of one measure() run: latency statistics, every timed iteration, the window."""
    report = summarize(times) if times else {"latency_ms": None, "ci95_ms": None, "ci_rel": None}
    report.update({
        "iterations": len(times),
        # Every timed iteration, in order (ns resolution): for comparisons with intervals (bootstrap) and
        # for spotting drift within the window.
        "times_ms": [round(t, 6) for t in times],
        "warmup_iterations": warmup,
        "stop_reason": reason,
        "timed_window": {"start_s": window["start_s"], "end_s": window["end_s"]} if times else None,
        "throughput_ips": batch * len(times) / window["wall_s"] if times else None,
    })
    if times and "windows" in window:
        report["windows"] = window["windows"]
    if times and "arrival" in window:
        report["arrival"] = window["arrival"]
    return report


def describe_method(report):
    """The `method` of a result, from a runner's JSON (host side: the loop described beside its code)."""
    settings = report["settings"]
    arrival = report.get("arrival")
    if arrival:
        policy = ("%s arrivals at %g Hz, %d queries (--iterations, --duration-s, else --max-time-s); each time from "
                  "the query's arrival to its end, queueing included" % (arrival["scenario"], arrival["rate_hz"],
                                                                         arrival["queries"]))
    elif settings.get("duration_s") is not None:
        policy = "duration: %s s in windows of %s s (%d windows)" % (
            settings["duration_s"], settings["window_s"], len(report.get("windows") or []))
    elif settings["iterations"] is None:
        policy = ("adaptive: at least %d iterations and %s s, until the median's 95 %% CI is within %.0f%% or "
                  "%s s pass (stopped: %s)" % (settings["min_iterations"], settings["min_time_s"],
                                               settings["target_ci"] * 100, settings["max_time_s"],
                                               report["stop_reason"]))
    else:
        policy = "fixed (%d)" % settings["iterations"]
    return {
        "timer": report["timer"],
        "warmup": "%d iterations (at least %d and %s s)" % (report["warmup_iterations"], settings["warmup"],
                                                             settings["warmup_s"]),
        "statistic": "median and percentiles of per-iteration times; 95 % CI of the median from order statistics",
        "iterations_policy": policy,
        "first_inference": "reported apart (first_inference_ms), excluded from the statistics",
    }


# --- the processor and memory --------------------------------------------------------------------------

def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("model name", "Hardware"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _status_bytes(key):
    """A "kB" line of /proc/self/status (proc(5)) in bytes, or None where there is none (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_peak_bytes():
    found = _status_bytes("VmHWM")
    if found is not None:
        return found
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes():
    """The process's resident set now (VmRSS), or None where /proc cannot tell."""
    return _status_bytes("VmRSS")


def nvidia_smi(query, timeout_s=5.0):
    """The rows of `nvidia-smi QUERY --format=csv,noheader,nounits`, or None when it cannot answer (not
    installed, as on Jetsons before JetPack 6; hung; failed)."""
    try:
        done = subprocess.run(["nvidia-smi", query, "--format=csv,noheader,nounits"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [[field.strip() for field in line.split(",")] for line in done.stdout.splitlines() if line.strip()]


def _mib_bytes(text):
    try:
        return int(float(text) * 1024 * 1024)
    except ValueError:
        return None  # [N/A], [Not Supported]


def _bare_uuid(text):
    text = text.strip().lower()
    return text[4:] if text.startswith("gpu-") else text


def nvml_memory(uuid):
    """nvidia-smi's view of the GPU with this UUID: (bytes this process holds there, bytes used there), each
    None where it cannot tell: no nvidia-smi, N/A, or this process's PID unknown to it (another PID
    namespace). The device is matched by UUID, since CUDA_VISIBLE_DEVICES and CUDA's own ordering renumber
    devices; without a UUID (None) only a lone GPU is surely the one in use."""
    gpus = nvidia_smi("--query-gpu=uuid,memory.used")
    if not gpus:
        return None, None
    uuid = None if uuid is None else _bare_uuid(uuid)

    def ours(gpu_uuid):
        return len(gpus) == 1 if uuid is None else _bare_uuid(gpu_uuid) == uuid

    used = [_mib_bytes(row[1]) for row in gpus if len(row) == 2 and ours(row[0])]
    apps = nvidia_smi("--query-compute-apps=pid,gpu_uuid,used_memory") or []
    mine = [_mib_bytes(row[2]) for row in apps if len(row) == 3 and row[0] == str(os.getpid()) and ours(row[1])]
    return (sum(mine) if mine and None not in mine else None), (used[0] if len(used) == 1 else None)
