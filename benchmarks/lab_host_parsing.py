#!/usr/bin/env python3
"""The host's CPU per line of what a board prints while it measures: the part of a lab item that grows with its
board-seconds (issue 18).

    .venv/bin/python benchmarks/lab_host_parsing.py [--iterations 3000] [--samples 3000] [--repeat 5]

Prints, as the median over --repeat rounds:
- `caffe time`'s log: microseconds a line for `caffe_time.parse` of the text (what the caffe backend does: the
  middle of a stretch of iteration lines is skipped) and of the same log as a list of lines (every line read).
  The log is a real one (tests/parsers/logs/caffe_time/bullseye_cpu_small224.log, Debian's caffe on the lab)
  whose 10 iteration lines are replaced by --iterations GENERATED ones of the same form;
- tegrastats: microseconds a sample for `telemetry.summary.summarize` over a window of --samples sampler records
  made of the real TX2 lines in tests/parsers/logs/tegrastats (round robin), 100 ms apart: with a block record
  after every 10 lines, as the board's sampler writes them (the window's first and last lines fall inside
  blocks that cross its edges, as in a lab), and without blocks (every line parsed).
A lab board prints ten tegrastats samples a board-second, and one caffe line per iteration (LeNet on the lab's
copies about 65 a board-second, AlexNet on a TX2 about 10). CPU time of this process (time.process_time).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeprof.onboard.window_stats import Blocks  # noqa: E402
from edgeprof.parsers import caffe_time  # noqa: E402
from edgeprof.telemetry.summary import summarize  # noqa: E402

BLOCK_LINES = 10     # board_sampler.py's default --block

LOGS = ROOT / "tests" / "parsers" / "logs"


def caffe_log(iterations: int) -> str:
    lines = (LOGS / "caffe_time" / "bullseye_cpu_small224.log").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if "] Iteration: 1 " in line)
    last = max(i for i, line in enumerate(lines) if "] Iteration: " in line)
    head = lines[first].split("] Iteration: ")[0]
    generated = [f"{head}] Iteration: {n} forward-backward time: 9 ms." for n in range(1, iterations + 1)]
    return "\n".join(lines[:first] + generated + lines[last + 1:]) + "\n"


def tegrastats_records(count: int) -> list[dict]:
    real = [line for path in sorted((LOGS / "tegrastats").glob("tx2_*.txt"))
            for line in path.read_text().splitlines() if line.startswith("RAM ")]
    start = 1_800_000_000.0
    return ([{"kind": "start", "t": start, "utc_offset_s": 0, "trip_points_c": {}}]
            + [{"kind": "tegrastats", "t": start + 0.1 * (i + 1), "line": real[i % len(real)]} for i in range(count)])


def with_blocks(records: list[dict], power_total: str) -> list[dict]:
    """The records with a block record after every BLOCK_LINES tegrastats lines, as the board's sampler writes
    them (window_stats.Blocks)."""
    out, blocks = [], Blocks(BLOCK_LINES, power_total)
    for record in records:
        out.append(record)
        block = blocks.add(record["line"]) if record["kind"] == "tegrastats" else None
        if block:
            out.append({"kind": "block", "t": record["t"], **block})
    return out


def per_unit_us(work, units: int, repeat: int) -> float:
    rounds = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        rounds.append((time.process_time() - started) / units * 1e6)
    return statistics.median(rounds)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    text = caffe_log(args.iterations)
    lines = text.splitlines()
    assert caffe_time.parse(text) == caffe_time.parse(lines)
    print(f"caffe time log, {len(lines)} lines ({args.iterations} iterations):")
    print(f"  as text:  {per_unit_us(lambda: caffe_time.parse(text), len(lines), args.repeat):.2f} us a line")
    print(f"  as lines: {per_unit_us(lambda: caffe_time.parse(lines), len(lines), args.repeat):.2f} us a line")
    records = tegrastats_records(args.samples)
    # The window starts and ends inside a block, as a measurement's does.
    window = {"start_s": records[6]["t"], "end_s": records[-5]["t"]}
    inside = args.samples - 9
    blocked = with_blocks(records, "VDD_IN")
    for label, given in (("with the sampler's blocks", blocked), ("without blocks (every line parsed)", records)):
        def work():
            return summarize(given, window, inferences=args.samples, power_total="VDD_IN", state={}, interval_ms=100,
                             errors=[])
        assert work()[0]["samples_in_window"] == inside
        cost = per_unit_us(work, inside, args.repeat)
        print(f"tegrastats, {inside} samples of the real TX2 lines, {label}: {cost:.1f} us a sample in summarize "
              f"({cost * 10 / 1000:.3f} ms a board-second at ten samples a second)")


if __name__ == "__main__":
    main()
