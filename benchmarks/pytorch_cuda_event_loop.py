#!/usr/bin/env python3
"""edgeprof's PyTorch median next to a plain CUDA-event loop over the same module, in the same run; then --best.

    python benchmarks/pytorch_cuda_event_loop.py [--model resnet50] [--batch 1,256] [--no-best]

On a machine with an NVIDIA GPU and torch with CUDA (the `local` device; clocks are left alone: --clocks leave).
For each batch:
1. `measure("local", model, backends=["pytorch"], options=Options(processor="gpu"))`, eager fp32, span compute;
2. in this process, the module the runner builds (torch_models.load_model with the same arguments: same
   netspec, seed, BatchNorm calibration, cuDNN autotuning on, TF32 off), timed by the loop a careful person
   writes by hand: 50 warm-up forwards, then 300 forwards each between two CUDA events, median;
3. the ratio edgeprof / plain loop (issue 4: within 0.97-1.03);
then, unless --no-best, every variant `--best` tries, with median, throughput and compile time.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import torch

from edgeprof.backends import Options
import edgeprof.onboard
from edgeprof.models.netspec import netspec
from edgeprof.models import parse, resolve, set_batch
from edgeprof.session import measure
from edgeprof.storage import ResultStore

# The runner's own modules, imported as the board imports them (from beside each other, not as a package).
sys.path.insert(0, os.path.dirname(edgeprof.onboard.__file__))
import torch_models  # noqa: E402
import torch_runner as br  # noqa: E402


def plain_event_loop(model_name: str, batch: int, tmp: str) -> float:
    source = resolve(model_name)
    spec_path = f"{tmp}/{model_name}-b{batch}.json"
    with open(spec_path, "w") as f:
        json.dump(netspec(parse(set_batch(source.text, batch, source.path), source.path)), f)
    args = br.parse_args(["--spec", spec_path, "--device", "cuda", "--batch", str(batch)])
    device = br._setup_device(args)
    model = torch_models.load_model(args)
    net = model.net.to(device).eval()
    inputs = [x.to(device) for x in torch_models.inputs(model.inputs, args, batch)]
    times = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.inference_mode():
        for _ in range(50):
            net(*inputs)
        torch.cuda.synchronize()
        for _ in range(300):
            start.record()
            net(*inputs)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    del net, inputs
    torch.cuda.empty_cache()
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", default="1,256")
    p.add_argument("--no-best", dest="best", action="store_false")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs torch with a CUDA device")
    batches = [int(b) for b in args.batch.split(",")]
    print(f"{args.model} on {torch.cuda.get_device_name(0)}, torch {torch.__version__}; clocks left as they are")
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(f"{tmp}/results.sqlite")
        print(f"{'batch':>5}  {'edgeprof median ms':>18}  {'iters':>6}  {'CI rel':>7}  {'plain loop ms':>13}  {'ratio':>6}"
              f"  {'img/s (edgeprof)':>16}")
        for batch in batches:
            ours = measure("local", [args.model], backends=["pytorch"], batches=[batch], store=store,
                           clocks="leave", options=Options(processor="gpu"))[0]
            if ours.status != "ok":
                sys.exit(f"edgeprof failed: {ours.error}")
            plain = plain_event_loop(args.model, batch, tmp)
            median = ours.latency_ms["median"]
            print(f"{batch:>5}  {median:>18.3f}  {ours.iterations:>6}  {ours.figures['ci_rel']:>7.2%}  {plain:>13.3f}  "
                  f"{median / plain:>6.3f}  {ours.throughput_ips:>16,.0f}")
        if args.best:
            print("\n--best (each variant a result; compile time apart from latency)")
            print(f"{'batch':>5}  {'variant':<36}  {'median ms':>9}  {'p99 ms':>8}  {'img/s':>9}  {'compile s':>9}"
                  f"  {'first ms':>9}")
            for batch in batches:
                results = measure("local", [args.model], backends=["pytorch"], batches=[batch], store=store,
                                  clocks="leave", options=Options(processor="gpu", best=True))
                for r in results:
                    if r.status != "ok":
                        print(f"{batch:>5}  {r.settings.get('precision', '?'):<36}  failed: {r.error[:120]}")
                        continue
                    compile_s = r.figures.get("compile_s")
                    compile_s = f"{compile_s:.1f}" if compile_s is not None else "-"
                    print(f"{batch:>5}  {r.figures['variant']:<36}  {r.latency_ms['median']:>9.3f}  "
                          f"{r.latency_ms['p99']:>8.3f}  {r.throughput_ips:>9,.0f}  "
                          f"{compile_s:>9}  {r.figures['first_inference_ms']:>9.1f}")
        store.close()


if __name__ == "__main__":
    main()
