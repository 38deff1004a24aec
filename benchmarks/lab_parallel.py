#!/usr/bin/env python3
"""Are the boards of a lab truly measured in parallel, and what does the host pay per item?

    tests/lab/lab up --copies 16
    EDGEPROF_INVENTORY=... .venv/bin/python benchmarks/lab_parallel.py [--devices tag:copy ...] [--iterations 1000]
        [--runs 5] [--record benchmarks/results/lab-parallel-DATE.json] [--wait S] [--parts]

Runs a plan of every selected board x 2 small models (tests/lab/models: LeNet, CIFAR-10 quick) x caffe in this
process (edgeprof.lab.Lab) and prints:
- concurrency: the mean number of boards inside a measurement, = the sum of the stored timed windows (caffe's
  own "Benchmark begins/ends" on the board clock) / the time from the first window's start to the last one's
  end; also the peak. Target (issue 7): at least 12 of 16.
- host CPU per item and per board-second: this process's user + system CPU time during the run / items ok,
  and / the summed timed windows (modules imported beforehand: a one-time cost). Targets (issue 18): under
  20 ms per item and 0.5 ms per board-second.
  Per board-second is per item over the window's length as long as per-item costs dominate: given several
  --iterations (runs alternate between them), a least-squares fit over the runs of host CPU = A x items +
  B x board-seconds splits the cost into A, fixed per item, and B, what each board-second of measurement adds.
- host peak RSS of this process. Target: under 300 MB at 128 boards.
- items lost: planned items that did not end ok (a dropped connection, a busy board). Target: none in five
  consecutive runs (--runs 5) at 64 boards.
- with --parts, the host CPU of each part of an item that may grow with its board-seconds (PARTS), per item and
  per board-second, and its own fit when runs alternate between --iterations.
Our machines have 2 cores and the 16 boards share them, so wall time says little; these three do.
"""
import argparse
import cProfile
import functools
import importlib
import json
import pstats
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from edgeprof import backends
from edgeprof.lab import Lab, Plan
# Imported before the measurement: their one-time import (about 0.4 s of CPU) is not a cost per item.
import edgeprof.backends.caffe.runner  # noqa: E402,F401
import edgeprof.transport.ssh  # noqa: E402,F401  (paramiko)
# A plan's check asks every backend class what it runs (Plan.validate): their modules too, once a process.
for _name in backends.names():
    backends.backend_class(_name)

MODELS = Path(__file__).resolve().parent.parent / "tests" / "lab" / "models"

# --parts: function (module, attribute path) by part. Each is wrapped where the item's code looks it up, and
# the CPU time (time.thread_time) of the thread that runs it is added to its part; a call inside another of
# the same part is counted once. "sampler stop" includes its board command, which "board commands" also
# counts; paramiko's reader threads (each connection's packets) are in no part.
PARTS = {
    "telemetry summary": ("edgeprof.telemetry.sampler", "summarize"),
    "sampler stop (its command, its records read)": ("edgeprof.telemetry.sampler", "BoardTelemetry._stop"),
    "caffe log parse": ("edgeprof.parsers.caffe_time", "parse"),
    "storing the result": ("edgeprof.storage.base", "SQLStore.add"),
    "board commands (SSH exec, calling thread)": ("edgeprof.transport.ssh", "SSHTransport.run"),
    "lease renewals": ("edgeprof.power.lease", "Lease._renew_loop"),
}


def concurrency(windows: list[tuple[float, float]]) -> tuple[float, int]:
    """(mean boards measuring over the span of all windows, peak boards measuring at once)."""
    span = max(end for _, end in windows) - min(start for start, _ in windows)
    events = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    inside = peak = 0
    for _, step in events:
        inside += step
        peak = max(peak, inside)
    return sum(end - start for start, end in windows) / span, peak


def _profile_threads() -> list[cProfile.Profile]:
    """A profiler of CPU time (time.thread_time) for this thread and one for every thread started from now on
    (the board threads, paramiko's transport threads), each its own: a cProfile.Profile hooks only the thread
    that enables it. threading.setprofile's hook runs first in each new thread and puts its profiler in its
    place. Returns the list they are added to, this thread's first."""
    profilers = [cProfile.Profile(time.thread_time)]

    def start_profiling(*_):
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()
    threading.setprofile(start_profiling)
    profilers[0].enable()
    return profilers


def _timed(function, part: str, totals: dict[str, float], lock: threading.Lock, inside: threading.local):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        if getattr(inside, part, False):
            return function(*args, **kwargs)
        setattr(inside, part, True)
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            setattr(inside, part, False)
            with lock:
                totals[part] += spent
    return timed


def _time_parts() -> dict[str, float]:
    """Wrap every PARTS function; returns the seconds spent in each so far (run_once reads and resets them)."""
    totals = dict.fromkeys(PARTS, 0.0)
    lock, inside = threading.Lock(), threading.local()
    for part, (module, path) in PARTS.items():
        owner = importlib.import_module(module)
        *classes, name = path.split(".")
        for cls in classes:
            owner = getattr(owner, cls)
        setattr(owner, name, _timed(getattr(owner, name), part, totals, lock, inside))
    return totals


def run_once(plan: Plan, db: str, wait_s: float = 0, parts: dict[str, float] | None = None) -> dict:
    """One run of the plan into a fresh database: its figures, measured in this process (with `parts`, the
    _time_parts totals, each part's seconds in this run)."""
    if parts is not None:
        parts.update(dict.fromkeys(parts, 0.0))
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    run = Lab(db=db).run(plan, wait_s=wait_s)
    wall = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    ok = [r for r in run.results if r.status == "ok"]
    planned = sum(board.total for board in run.boards.values())
    windows = [(r.timed_window["start_s"], r.timed_window["end_s"]) for r in ok if r.timed_window]
    mean, peak = concurrency(windows) if windows else (0.0, 0)
    user, system = cpu_after.ru_utime - cpu_before.ru_utime, cpu_after.ru_stime - cpu_before.ru_stime
    cpu = user + system
    board_seconds = sum(end - start for start, end in windows)
    return {"boards": len(run.boards), "items": planned, "ok": len(ok), "lost": planned - len(ok),
            "failures": [f"{what}: {why}" for what, why in run.failures], "wall_s": round(wall, 1),
            "measuring_mean": round(mean, 1), "measuring_peak": peak, "host_cpu_s": round(cpu, 2),
            # The kernel's share (system calls, the network stack of the boards' veth links) apart.
            "host_cpu_user_s": round(user, 2), "host_cpu_system_s": round(system, 2),
            "host_cpu_ms_per_item": round(cpu / max(len(ok), 1) * 1e3, 1),
            "board_seconds": round(board_seconds, 1),
            "host_cpu_ms_per_board_second": round(cpu / board_seconds * 1e3, 2) if board_seconds else None,
            # ru_maxrss is the process's peak so far: after several runs, the peak of them all.
            "host_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            **({"parts_s": {part: round(spent, 3) for part, spent in parts.items()}} if parts is not None else {})}


def fixed_and_marginal(runs: list[dict], cpu_s=lambda run: run["host_cpu_s"]) -> tuple[float, float]:
    """Least squares, without intercept, of host CPU (ms) = A x items ok + B x board-seconds over the runs:
    (A, B); cpu_s picks a run's CPU seconds (default: the whole process's). Needs runs of at least two window
    lengths (else the two columns are proportional)."""
    x = [(r["ok"], r["board_seconds"]) for r in runs]
    y = [cpu_s(r) * 1e3 for r in runs]
    aa = sum(i * i for i, _ in x)
    ab = sum(i * s for i, s in x)
    bb = sum(s * s for _, s in x)
    ay = sum(i * v for (i, _), v in zip(x, y))
    by = sum(s * v for (_, s), v in zip(x, y))
    det = aa * bb - ab * ab
    return (ay * bb - by * ab) / det, (by * aa - ay * ab) / det


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", action="append",
                   help="the boards: names, globs or tag:KEY=VALUE, repeatable (default: tag:copy, the lab's copies)")
    p.add_argument("--iterations", type=int, action="append",
                   help="caffe time iterations per item (default 1000: about 5-10 s windows with 16 boards on 2 "
                        "cores); repeat it to alternate the runs between counts and fit the cost per item and "
                        "per board-second apart")
    p.add_argument("--runs", type=int, default=1,
                   help="run the plan this many times (for each --iterations count), each into a fresh database")
    p.add_argument("--record", type=Path, help="also write the figures of every run here as JSON")
    p.add_argument("--wait", type=float, default=0, metavar="S",
                   help="wait up to S seconds for a board another run holds (the lab's first copies serve other "
                        "tests), instead of losing its items")
    p.add_argument("--profile", type=int, metavar="N",
                   help="profile the CPU time of all the host's threads and print the N most costly functions")
    p.add_argument("--parts", action="store_true",
                   help="also print the host CPU of each part of an item (PARTS) per item and per board-second")
    args = p.parse_args()
    profilers = _profile_threads() if args.profile else []
    parts = _time_parts() if args.parts else None
    counts = args.iterations or [1000]
    plans = {count: Plan(devices=args.devices or ["tag:copy"],
                         models=[str(MODELS / "lenet.prototxt"), str(MODELS / "cifar10_quick.prototxt")],
                         backends=["caffe"], iterations=count, name="lab-parallel-benchmark") for count in counts}
    runs = []
    started = time.strftime("%H:%M:%S UTC", time.gmtime())
    for index in range(args.runs * len(counts)):
        count = counts[index % len(counts)]
        with tempfile.TemporaryDirectory() as tmp:
            figures = {"iterations": count, **run_once(plans[count], f"{tmp}/results.sqlite", args.wait, parts)}
        runs.append(figures)
        print(f"run {index + 1}: {figures['boards']} boards x 2 models x caffe ({count} iterations), "
              f"{figures['ok']} of {figures['items']} items ok ({figures['lost']} lost), wall {figures['wall_s']} s")
        print(f"  boards measuring at once: mean {figures['measuring_mean']}, peak {figures['measuring_peak']}")
        print(f"  host CPU: {figures['host_cpu_ms_per_item']} ms per item (target < 20), "
              f"{figures['host_cpu_ms_per_board_second']} ms per board-second of measurement (target < 0.5); "
              f"{figures['host_cpu_s']} s ({figures['host_cpu_system_s']} s of it in the kernel) over "
              f"{figures['board_seconds']} board-seconds")
        print(f"  host peak RSS so far: {figures['host_peak_rss_mb']} MB (target < 300 at 128 boards)")
        for part, spent in figures.get("parts_s", {}).items():
            print(f"  {part}: {spent / max(figures['ok'], 1) * 1e3:.2f} ms per item, "
                  f"{spent / max(figures['board_seconds'], 1e-9) * 1e3:.3f} ms per board-second")
        for failure in figures["failures"]:
            print(f"  lost: {failure}")
    print(f"{sum(r['lost'] for r in runs)} items lost in {len(runs)} runs")
    if len(set(counts)) > 1:
        per_item, per_board_second = fixed_and_marginal(runs)
        print(f"fit over the {len(runs)} runs: host CPU = {per_item:.1f} ms x items + {per_board_second:.3f} ms x "
              f"board-seconds (fixed per item; added by each board-second of measurement)")
        for part in PARTS if parts is not None else ():
            per_item, per_board_second = fixed_and_marginal(runs, lambda run, part=part: run["parts_s"][part])
            print(f"  {part}: {per_item:.2f} ms x items + {per_board_second:.3f} ms x board-seconds")
    if profilers:
        profilers[0].disable()
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.sort_stats("tottime").print_stats(args.profile)
    if args.record:
        args.record.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "iterations": counts,
                                           "devices": plans[counts[0]].devices, "wait_s": args.wait,
                                           "started": started, "finished": time.strftime("%H:%M:%S UTC", time.gmtime()),
                                           "runs": runs}, indent=1) + "\n")
    sys.exit(1 if any(r["lost"] for r in runs) else 0)


if __name__ == "__main__":
    main()
