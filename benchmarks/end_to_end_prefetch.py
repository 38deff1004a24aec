#!/usr/bin/env python3
"""Throughput end to end with and without --prefetch (seed 003's TODO: an input queue to raise utilization).

    EDGEPROF_INVENTORY=... .venv/bin/python benchmarks/end_to_end_prefetch.py [--device sim-desktop]
        [--backend pytorch] [--model alexnet] [--images 40] [--prefetch 0,4] [--rounds 3]

Makes eight camera-sized JPEGs (640x480, Pillow), then runs `edgeprof measure --input DIR --images N --prefetch P`
for each P in turn, --rounds times interleaved (so a slow minute of a shared machine falls on every P alike), and
prints per P the median over rounds of images/s, the queue wait's median and the decode and resize medians (with
--prefetch: the thread's, outside the total) next to forward's. Writes every run to --out as JSON.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

from PIL import Image


def make_images(folder: str, count: int = 8) -> None:
    for i in range(count):
        Image.effect_noise((640, 480), 30 + 5 * i).convert("RGB").save(os.path.join(folder, f"frame{i}.jpg"),
                                                                        quality=90)


def measure(args, folder: str, prefetch: int, db: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "edgeprof.cli", "measure", "--device", args.device, "--backend",
                           args.backend, args.model, "--input", folder, "--images", str(args.images), "--prefetch",
                           str(prefetch), "--wait", "600", "--json"], capture_output=True, text=True,
                          env={**os.environ, "EDGEPROF_DB": db})
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(lines) != 1 or lines[0]["status"] != "ok":
        sys.exit(f"edgeprof measure failed:\n{proc.stdout}\n{proc.stderr}")
    result = lines[0]
    stages = result[args.backend]["end_to_end"]["stage_ms"]
    return {"prefetch": prefetch, "images_per_s": result["throughput_ips"], "flags": [f["code"] for f in result["flags"]],
            **{f"{name}_median_ms": stats["median"] for name, stats in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="sim-desktop")
    parser.add_argument("--backend", default="pytorch")
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--prefetch", default="0,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=f"benchmarks/results/end-to-end-prefetch-{datetime.date.today()}.json")
    args = parser.parse_args()
    depths = [int(p) for p in args.prefetch.split(",")]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        make_images(tmp)
        for _ in range(args.rounds):
            for depth in depths:
                runs.append(measure(args, tmp, depth, os.path.join(tmp, "results.sqlite")))
    for depth in depths:
        mine = [r for r in runs if r["prefetch"] == depth]

        def median(key):
            found = [r[key] for r in mine if r.get(key) is not None]
            return statistics.median(found) if found else float("nan")
        print(f"--prefetch {depth}: {median('images_per_s'):.3g} images/s (median of {len(mine)}), queue wait "
              f"{median('queue_wait_median_ms'):.3g} ms, decode {median('decode_median_ms'):.3g} ms, resize "
              f"{median('resize_median_ms'):.3g} ms, forward {median('forward_median_ms'):.3g} ms")
    with open(args.out, "w") as f:
        json.dump({"device": args.device, "backend": args.backend, "model": args.model, "images": args.images,
                   "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
