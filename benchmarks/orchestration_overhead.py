#!/usr/bin/env python3
"""How much time edgeprof itself adds around `caffe time`: process start, imports, SSH connect, probe,
uploads, parsing, storing.

    EDGEPROF_INVENTORY=... .venv/bin/python benchmarks/orchestration_overhead.py [--device sim-tx2] [--repeat 3]

For a 10-iteration alexnet run it prints
- first contact: wall time of a whole `edgeprof measure` process minus the caffe command's duration
  (host-timed: one SSH round trip is included in the caffe figure, so it is not counted as overhead);
- each further model on the same connection: (overhead of a 4-model run - overhead of a 1-model run) / 3.
Targets (issue 2): under 1.5 s and under 0.5 s. Medians over --repeat runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run_measure(device: str, models: list[str], db: str) -> tuple[float, float]:
    """Wall time of one `edgeprof measure` process and the summed durations of the caffe commands it ran."""
    env = {**os.environ, "EDGEPROF_DB": db}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgeprof.cli", "measure", "--device", device, *models,
                           "--iterations", "10", "--json"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"edgeprof measure failed:\n{proc.stderr}")
    caffe = 0.0
    for line in proc.stdout.splitlines():
        result_id = json.loads(line)["id"]
        shown = subprocess.run([sys.executable, "-m", "edgeprof.cli", "results", "show", str(result_id), "--json"],
                               capture_output=True, text=True, env=env, check=True)
        caffe += sum(c["duration_s"] for c in json.loads(shown.stdout)["commands"] if " time -model " in c["command"])
    return wall, caffe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="sim-tx2")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    first, further = [], []
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.sqlite")
        for _ in range(args.repeat):
            wall1, caffe1 = run_measure(args.device, ["alexnet"], db)
            wall4, caffe4 = run_measure(args.device, ["alexnet"] * 4, db)
            first.append(wall1 - caffe1)
            further.append(((wall4 - caffe4) - (wall1 - caffe1)) / 3)
    print(f"device {args.device}, alexnet, 10 iterations, median of {args.repeat}")
    print(f"first contact overhead:          {statistics.median(first):.3f} s  (target < 1.5 s; runs: "
          + ", ".join(f"{x:.3f}" for x in first) + ")")
    print(f"each further model, same conn.:  {statistics.median(further):.3f} s  (target < 0.5 s; runs: "
          + ", ".join(f"{x:.3f}" for x in further) + ")")


if __name__ == "__main__":
    main()
