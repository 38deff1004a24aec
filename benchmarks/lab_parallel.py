#!/usr/bin/env python3
"""Are the boards of a lab truly measured in parallel, and what does the host pay per item?

    tests/lab/lab up --copies 16
    EDGEPROF_INVENTORY=... .venv/bin/python benchmarks/lab_parallel.py [--devices tag:copy] [--iterations 1000]

Runs a plan of every selected board x 2 small models (tests/lab/models: LeNet, CIFAR-10 quick) x caffe in this
process (edgeprof.lab.Lab) and prints:
- concurrency: the mean number of boards inside a measurement, = the sum of the stored timed windows (caffe's
  own "Benchmark begins/ends" on the board clock) / the time from the first window's start to the last one's
  end; also the peak. Target (issue 7): at least 12 of 16.
- host CPU per item: this process's user + system CPU time during the run / items (modules imported
  beforehand: a one-time cost). Target: under 50 ms.
- host peak RSS of this process. Target: under 300 MB.
Our machines have 2 cores and the 16 boards share them, so wall time says little; these three do.
"""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from edgeprof.lab import Lab, Plan
# Imported before the measurement: their one-time import (about 0.4 s of CPU) is not a cost per item.
import edgeprof.backends.caffe.runner  # noqa: E402,F401
import edgeprof.transport.ssh  # noqa: E402,F401  (paramiko)

MODELS = Path(__file__).resolve().parent.parent / "tests" / "lab" / "models"


def concurrency(windows: list[tuple[float, float]]) -> tuple[float, int]:
    """(mean boards measuring over the span of all windows, peak boards measuring at once)."""
    span = max(end for _, end in windows) - min(start for start, _ in windows)
    events = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    inside = peak = 0
    for _, step in events:
        inside += step
        peak = max(peak, inside)
    return sum(end - start for start, end in windows) / span, peak


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", default="tag:copy", help="the boards (names, globs, tags); default: the lab's copies")
    p.add_argument("--iterations", type=int, default=1000,
                   help="caffe time iterations per item (about 5-10 s windows with 16 boards on 2 cores)")
    args = p.parse_args()
    plan = Plan(devices=[args.devices], models=[str(MODELS / "lenet.prototxt"), str(MODELS / "cifar10_quick.prototxt")],
                backends=["caffe"], iterations=args.iterations, name="lab-parallel-benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        run = Lab(db=f"{tmp}/results.sqlite").run(plan)
        wall = time.monotonic() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    failed = [r for r in run.results if r.status != "ok"]
    if failed or any(b.error for b in run.boards.values()):
        sys.exit(f"the plan did not finish cleanly: {run.failures}")
    windows = [(r.timed_window["start_s"], r.timed_window["end_s"]) for r in run.results]
    mean, peak = concurrency(windows)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    items = len(run.results)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"plan: {len(run.boards)} boards x 2 models x caffe ({args.iterations} iterations), {items} items, "
          f"wall {wall:.1f} s")
    print(f"boards measuring at once: mean {mean:.1f}, peak {peak} (target: mean >= 12 of 16)")
    print(f"host CPU per item: {cpu / items * 1e3:.1f} ms ({cpu:.2f} s for {items} items; target < 50 ms)")
    print(f"host peak RSS: {rss_mb:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main()
