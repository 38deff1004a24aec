#!/usr/bin/env python3
"""The same model measured on a quiet machine and on a disturbed one, interleaved, with the flags and
intervals each run got: what `contended`, `high_spread`, `not_converged` and the median's interval say when
another process competes for the CPU.

    .venv/bin/python benchmarks/quiet_vs_disturbed.py [--device local] [--model alexnet] [--pairs 5]
        [--out benchmarks/results/quiet-vs-disturbed-DATE.json]

Each pair is one quiet run then one run with a CPU burner (one `while :; do :; done` shell per CPU of this
machine, started before the measurement and killed after it), each a fresh `edgeprof measure --backend pytorch`
process with edgeprof's default adaptive stop rule; quiet and disturbed runs alternate so that the machine's
own drift hits both. It prints one line per run and writes every figure to --out. Run it on an otherwise idle
machine (nothing else measuring: on the lab host, `local` and sim-desktop share one lease).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile


def measure(device: str, model: str, db: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "edgeprof.cli", "measure", "--device", device, "--backend",
                           "pytorch", model, "--wait", "600", "--json"], capture_output=True, text=True,
                          env={**os.environ, "EDGEPROF_DB": db})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"edgeprof measure failed:\n{proc.stderr}")
    return json.loads(lines[-1])


def summary(result: dict, disturbed: bool) -> dict:
    telemetry = result.get("telemetry") or {}
    return {"disturbed": disturbed, "status": result["status"], "median_ms": result["latency_ms"]["median"],
            "ci95_ms": (result.get("latency_ci95_ms") or {}).get("median"),
            "ci_rel": result["pytorch"].get("ci_rel"), "stop_reason": result["pytorch"].get("stop_reason"),
            "iqr_rel": (result["latency_ms"]["iqr"] / result["latency_ms"]["median"]
                        if result["latency_ms"].get("iqr") is not None and result["latency_ms"]["median"] else None),
            "iterations": result["iterations"], "flags": [f["code"] for f in result["flags"]],
            "others_cpu_share": (telemetry.get("others") or {}).get("cpu_share")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="local")
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--pairs", type=int, default=5)
    today = datetime.date.today().isoformat()
    parser.add_argument("--out", default=f"benchmarks/results/quiet-vs-disturbed-{today}.json")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "results.sqlite")
        for pair in range(args.pairs):
            for disturbed in (False, True):
                burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count())] \
                    if disturbed else []
                try:
                    run = summary(measure(args.device, args.model, db), disturbed)
                finally:
                    for burner in burners:
                        burner.kill()
                        burner.wait()
                runs.append(run)
                ci = run["ci95_ms"]
                print(f"pair {pair + 1} {'disturbed' if disturbed else 'quiet    '}: median {run['median_ms']:.3f} ms, "
                      f"95 % CI {ci[0]:.3f}-{ci[1]:.3f} ms, ci_rel {run['ci_rel']:.3f}, IQR/median {run['iqr_rel']:.3f}, "
                      f"stop {run['stop_reason']}, "
                      f"{run['iterations']} it, others {run['others_cpu_share']} CPU, flags {run['flags'] or '-'}"
                      if ci else f"pair {pair + 1}: {run}", flush=True)
    for disturbed in (False, True):
        group = [r for r in runs if r["disturbed"] == disturbed]
        flagged = sum(bool(r["flags"]) for r in group)
        print(f"{'disturbed' if disturbed else 'quiet'}: {flagged} of {len(group)} flagged; contended in "
              f"{sum('contended' in r['flags'] for r in group)}")
    with open(args.out, "w") as f:
        json.dump({"date": today, "machine": os.uname().nodename, "cpus": os.cpu_count(), "device": args.device,
                   "model": args.model, "command": " ".join(sys.argv), "runs": runs}, f, indent=1)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
