#!/usr/bin/env python3
"""Does edgeprof's PyTorch median agree with torch.utils.benchmark on the same board, model and run?

    EDGEPROF_INVENTORY=... .venv/bin/python benchmarks/pytorch_timer_agreement.py [--device sim-desktop]
        [--model resnet50] [--batch 1,8] [--processor auto] [--clocks leave] [--repeat 3]

For each batch, --repeat times: `edgeprof measure --backend pytorch` (the library call), then, on the same
board right after, torch.utils.benchmark.Timer(...).blocked_autorange() on the same module: the same
torch_runner.py builds it from the same netspec with the same seed, in the same grad mode, with the same
thread count (Timer defaults to one thread; edgeprof runs with torch's default). Prints both medians and
their ratio per pair, and the median ratio per batch; the issue's target is a ratio within 5 % of 1.
"""
import argparse
import json
import statistics
import sys
import tempfile

from edgeprof.backends import Options
from edgeprof.models.netspec import netspec
from edgeprof.devices import connect, get_device
from edgeprof.onboard import bundle
from edgeprof.models import parse, resolve, set_batch
from edgeprof.session import measure
from edgeprof.storage import ResultStore
from edgeprof.transport import make_temp_dir, remove_tree

# Runs on the board next to torch_runner.py: the module the runner would time, timed by torch's own tool.
TIMER_SCRIPT = r'''
import json, sys, time
import torch
import torch.utils.benchmark as benchmark
sys.path.insert(0, sys.argv[1])
import torch_models
import torch_runner as br

# The module and input the runner builds from the same arguments (seed 0, calibrated BatchNorm).
args = br.parse_args(["--spec", sys.argv[2], "--batch", sys.argv[3], "--device", sys.argv[4]])
threads = int(sys.argv[5])
torch.set_num_threads(threads)
device = br._setup_device(args)
model = torch_models.load_model(args)
net = model.net.to(device).eval()
inputs = [x.to(device) for x in torch_models.inputs(model.inputs, args, args.batch)]
with br._grad_off():
    # The same warm-up edgeprof's runner does (at least 3 forwards and 1 s): oneDNN builds its primitives on
    # the first forwards, which blocked_autorange would otherwise count.
    started = time.perf_counter()
    for _ in range(3):
        net(*inputs)
    while time.perf_counter() - started < 1.0:
        net(*inputs)
    timer = benchmark.Timer(stmt="net(*inputs)", globals={"net": net, "inputs": inputs}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=10)
print(json.dumps({"median_ms": m.median * 1e3, "iqr_ms": m.iqr * 1e3, "runs": len(m.times),
                  "number_per_run": m.number_per_run, "torch": torch.__version__}))
'''


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="sim-desktop")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", default="1,8")
    p.add_argument("--processor", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--clocks", default="leave")
    p.add_argument("--repeat", type=int, default=3,
                   help="pairs per batch, interleaved, so that a slow spell of a shared machine shows as spread")
    args = p.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    device = get_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(f"{tmp}/results.sqlite")
        for batch in batches:
            for _ in range(args.repeat):
                result = measure(device, [args.model], backends=["pytorch"], batches=[batch], store=store,
                                 clocks=args.clocks, options=Options(processor=args.processor))[0]
                if result.status != "ok":
                    sys.exit(f"edgeprof failed: {result.error}")
                timer = time_with_torch_benchmark(device, args.model, batch, result)
                rows.append((batch, result, timer))
        store.close()
    first = rows[0][1]
    print(f"{args.model} on {args.device} ({first.settings['processor']}, {first.figures['device_name']}, "
          f"torch {rows[0][2]['torch']}, {first.figures['threads']} threads)")
    print(f"{'batch':>5}  {'edgeprof median ms':>18}  {'(iters, CI rel)':>16}  {'Timer median ms':>15}  "
          f"{'(runs x number)':>15}  {'ratio':>6}")
    for batch, result, timer in rows:
        ours = result.latency_ms["median"]
        iterations = f"({result.iterations}, {result.figures['ci_rel']:.2%})"
        runs = f"({timer['runs']} x {timer['number_per_run']})"
        print(f"{batch:>5}  {ours:>18.3f}  {iterations:>16}  {timer['median_ms']:>15.3f}  {runs:>15}  "
              f"{ours / timer['median_ms']:>6.3f}")
    for batch in batches:
        ratios = sorted(r.latency_ms["median"] / t["median_ms"] for b, r, t in rows if b == batch)
        print(f"batch {batch}: median ratio {statistics.median(ratios):.3f} over {len(ratios)} pairs "
              f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target within 0.95-1.05)")


def time_with_torch_benchmark(device, model, batch, result) -> dict:
    source = resolve(model)
    spec = netspec(parse(set_batch(source.text, batch, source.path), source.path))
    transport = connect(device)
    try:
        work = make_temp_dir(transport)
        try:
            for name, text in bundle().items():
                transport.put_text(f"{work}/{name}", text)
            transport.put_text(f"{work}/net.json", json.dumps(spec))
            transport.put_text(f"{work}/timer.py", TIMER_SCRIPT)
            run = transport.run([device.profile.python, f"{work}/timer.py", work, f"{work}/net.json", str(batch),
                                 result.settings["processor"], str(result.figures["threads"])], timeout=600)
            if not run.ok:
                sys.exit(f"torch.utils.benchmark run failed: {run.stderr[-2000:]}")
            return json.loads(run.stdout.strip().splitlines()[-1])
        finally:
            remove_tree(transport, work)
    finally:
        transport.close()


if __name__ == "__main__":
    main()
