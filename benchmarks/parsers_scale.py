#!/usr/bin/env python3
"""Time and peak memory of every log parser on large inputs, to show they stay linear and bounded (issue 12).

    .venv/bin/python benchmarks/parsers_scale.py [--sizes 20,50,100,200] [--line-mb 50] [--dir /var/tmp]

Writes GENERATED inputs (fixed seed; nothing here is a real log): `caffe time` logs of each size in MB, made of
complete runs of a generated GoogLeNet-sized net as BVLC Caffe prints them (net dump, layer setup, 50 iteration
lines, per-layer averages, summary), and one single line of --line-mb MB (such a log with its line ends lost).
Then, for each input and each parser, one child process reads the file the way `edgeprof parse KIND FILE --json`
does (streaming through edgeprof.parsers.decode; rows are serialized and dropped as they come) and reports:
wall time and CPU time of the parse, the CPU time's ratio to the size (s/GB: flat from 20 to 200 MB means
linear), and the child's peak RSS (ru_maxrss from wait4; Python and the imports included) next to its RSS
before parsing.
Targets (issue 12): under 5 s and under 2x the file size at 200 MB. The files are removed at the end.
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

KINDS = ("caffe-time", "trtexec", "tegrastats", "nvidia-smi", "jetson-clocks", "nvpmodel")
SEED = 20261207
MB = 1 << 20


# --- generated input ------------------------------------------------------------------------------------

def net_layers(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(name, type, bottom, top) of a generated net shaped like GoogLeNet: a stem, 9 inception blocks, a head."""
    layers = [("data", "Input", "", "data")]
    previous = "data"
    for name, kind in [("conv1/7x7_s2", "Convolution"), ("conv1/relu_7x7", "ReLU"), ("pool1/3x3_s2", "Pooling"),
                       ("pool1/norm1", "LRN"), ("conv2/3x3_reduce", "Convolution"), ("conv2/3x3", "Convolution"),
                       ("conv2/norm2", "LRN"), ("pool2/3x3_s2", "Pooling")]:
        layers.append((name, kind, previous, name))
        previous = name
    for block in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]:
        branches = []
        for branch in ["1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool", "pool_proj"]:
            name = f"inception_{block}/{branch}"
            layers.append((name, "Convolution" if "pool" != branch else "Pooling", previous, name))
            layers.append((f"inception_{block}/relu_{branch}", "ReLU", name, name))
            branches.append(name)
        layers.append((f"inception_{block}/output", "Concat", ",".join(branches), f"inception_{block}/output"))
        previous = f"inception_{block}/output"
    for name, kind in [("pool5/7x7_s1", "Pooling"), ("pool5/drop_7x7_s1", "Dropout"),
                       ("loss3/classifier", "InnerProduct"), ("prob", "Softmax")]:
        layers.append((name, kind, previous, name))
        previous = name
    rng.shuffle(layers[9:-4])  # vary the order between generated nets a little
    return layers


class Glog:
    """glog lines with an advancing clock, as `caffe time` writes them to stderr."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.micros = rng.randrange(86_400_000_000)
        self.pid = rng.randrange(1000, 32768)

    def line(self, source: str, message: str, severity: str = "I") -> str:
        self.micros += self.rng.randrange(1, 4000)
        seconds, micros = divmod(self.micros % 86_400_000_000, 1_000_000)
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micros:06d}"
        return f"{severity}1123 {clock} {self.pid:5d} {source}] {message}\n"


def caffe_run(rng: random.Random, layers: list[tuple[str, str, str, str]], iterations: int = 50) -> str:
    """One generated `caffe time -phase TEST -iterations 50` run."""
    log = Glog(rng)
    out = [log.line("caffe.cpp:343", "Use CPU." if rng.random() < 0.5 else "Use GPU with device ID 0"),
           log.line("net.cpp:53", "Initializing net from parameters: "), 'name: "GoogleNet"\n',
           "state {\n  phase: TEST\n  level: 0\n  stage: \"\"\n}\n"]
    for name, kind, bottom, top in layers:
        out.append(f'layer {{\n  name: "{name}"\n  type: "{kind}"\n')
        out.extend(f'  bottom: "{b}"\n' for b in bottom.split(",") if b)
        out.append(f'  top: "{top}"\n}}\n')
    memory = 0
    for name, kind, bottom, top in layers:
        out.append(log.line("layer_factory.hpp:77", f"Creating layer {name}"))
        out.append(log.line("net.cpp:86", f"Creating Layer {name}"))
        out.extend(log.line("net.cpp:408", f"{name} <- {b}") for b in bottom.split(",") if b)
        out.append(log.line("net.cpp:382", f"{name} -> {top}"))
        out.append(log.line("net.cpp:124", f"Setting up {name}"))
        shape = f"1 {rng.choice([64, 128, 192, 256, 480, 512, 832, 1024])} {rng.choice([7, 14, 28, 56])} 28"
        out.append(log.line("net.cpp:131", f"Top shape: {shape} ({rng.randrange(1, 10**6)})"))
        memory += rng.randrange(1000, 10**6)
        out.append(log.line("net.cpp:139", f"Memory required for data: {memory}"))
    out.extend(log.line("net.cpp:202", f"{name} does not need backward computation.") for name, *_ in layers[::-1])
    out += [log.line("net.cpp:244", "This network produces output prob"),
            log.line("net.cpp:257", "Network initialization done."),
            log.line("caffe.cpp:351", "Performing Forward"), log.line("caffe.cpp:356", "Initial loss: 0"),
            log.line("caffe.cpp:357", "Performing Backward"), log.line("caffe.cpp:365", "*** Benchmark begins ***"),
            log.line("caffe.cpp:366", f"Testing for {iterations} iterations.")]
    total = 0
    for i in range(1, iterations + 1):
        ms = rng.randrange(40, 90)
        total += ms
        out.append(log.line("caffe.cpp:394", f"Iteration: {i} forward-backward time: {ms} ms."))
    out.append(log.line("caffe.cpp:397", "Average time per layer: "))
    forward = backward = 0.0
    for name, *_ in layers:
        f, b = rng.uniform(0.001, 3), rng.uniform(0.001, 4)
        forward, backward = forward + f, backward + b
        out.append(log.line("caffe.cpp:400", f"{name:>10}\tforward: {f:.6g} ms."))
        out.append(log.line("caffe.cpp:403", f"{name:>10}\tbackward: {b:.6g} ms."))
    out += [log.line("caffe.cpp:408", f"Average Forward pass: {forward:.6g} ms."),
            log.line("caffe.cpp:410", f"Average Backward pass: {backward:.6g} ms."),
            log.line("caffe.cpp:412", f"Average Forward-Backward: {total / iterations:.6g} ms."),
            log.line("caffe.cpp:414", f"Total Time: {total} ms."),
            log.line("caffe.cpp:415", "*** Benchmark ends ***")]
    return "".join(out)


def write_caffe_log(path: str, size: int, rng: random.Random, one_line: bool = False) -> None:
    """Whole generated runs up to `size` bytes; with `one_line`, their line ends become spaces (a copy that lost
    them) and the last run is cut to fill `size` exactly."""
    layers = net_layers(rng)
    written = 0
    with open(path, "w") as out:
        while written < size:
            text = caffe_run(rng, layers)
            if one_line:
                text = text.replace("\n", " ")[:size - written]
            elif written + len(text) > size:
                break
            out.write(text)
            written += len(text)
        if one_line:
            out.write("\n")


# --- measuring -------------------------------------------------------------------------------------------

def child(kind: str, path: str) -> None:
    """Parse `path` as `edgeprof parse KIND PATH --json` does and print what it took, as JSON."""
    from edgeprof.parsers import ROW_KINDS, NothingFound, decode, invocations, parse_text

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu_started = time.perf_counter(), time.process_time()
    found = 0
    with open(path, "rb") as log:
        source = decode(log, path)
        try:
            if kind in ROW_KINDS:
                for row in invocations(kind, source):
                    json.dumps(row.record.to_dict())
                    found += 1
            else:
                json.dumps(parse_text(kind, source))
                found = 1
        except NothingFound:
            pass
    print(json.dumps({"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu_started,
                      "rss_before_kb": before, "found": found, "skipped_lines": source.skipped}))


def measure(kind: str, path: str) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, path], stdout=subprocess.PIPE)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{kind} on {path}: child exited {proc.returncode}")
    return {**json.loads(output), "peak_rss_kb": usage.ru_maxrss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,50,100,200", help="sizes of the generated logs, MB")
    parser.add_argument("--line-mb", type=int, default=50, help="size of the generated single line, MB")
    parser.add_argument("--dir", default=None, help="where to write the generated inputs (default: a temp dir)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        inputs = []
        for size in [int(s) for s in args.sizes.split(",")]:
            path = os.path.join(folder, f"generated_caffe_time_{size}mb.log")
            write_caffe_log(path, size * MB, rng)
            inputs.append((f"caffe log {size} MB", path))
        path = os.path.join(folder, f"generated_one_line_{args.line_mb}mb.log")
        write_caffe_log(path, args.line_mb * MB, rng, one_line=True)
        inputs.append((f"one line {args.line_mb} MB", path))

        print(f"load average before: {os.getloadavg()[0]:.2f} (this machine has {os.cpu_count()} CPUs; other "
              f"processes running stretch the wall times, the CPU times much less)")
        print(f"{'input (generated)':<20} {'parser':<14} {'wall s':>7} {'cpu s':>6} {'cpu s/GB':>8} "
              f"{'peak RSS MB':>11} {'RSS before':>10} {'peak/size':>9} {'found':>5} {'skipped':>7}")
        for label, path in inputs:
            size = os.path.getsize(path)
            for kind in KINDS:
                m = measure(kind, path)
                peak = m["peak_rss_kb"] * 1024
                print(f"{label:<20} {kind:<14} {m['wall_s']:7.2f} {m['cpu_s']:6.2f} {m['cpu_s'] / size * 2**30:8.1f} "
                      f"{peak / MB:11.1f} {m['rss_before_kb'] / 1024:10.1f} {peak / size:9.2f} {m['found']:>5} "
                      f"{m['skipped_lines']:>7}", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
