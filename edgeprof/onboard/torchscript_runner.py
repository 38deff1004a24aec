#!/usr/bin/env python3
"""edgeprof's frozen-TorchScript runner: a TorchScript file after torch.jit.freeze and
torch.jit.optimize_for_inference (torch 1.10+, the deployment path torch documents for TorchScript:
https://pytorch.org/docs/stable/generated/torch.jit.optimize_for_inference.html), timed on the CPU with
timing.py's loop. One input, [--batch] + --input-shape, standard normal from --seed + 1. Runs ON the board;
output and errors are harness.py's.
"""
import os
import sys
import time

import torch

if __package__:
    from . import harness, timing
else:
    import harness
    import timing


def run(args):
    if not hasattr(torch.jit, "optimize_for_inference"):
        raise harness.RunnerError("unsupported", "torch %s has no torch.jit.optimize_for_inference (it came with "
                                  "torch 1.10)" % torch.__version__)
    t0 = time.perf_counter()
    module = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(args.model, map_location="cpu").eval()))
    load_s = time.perf_counter() - t0
    stages = {"loaded": harness.stage_memory()}
    x = torch.randn([args.batch] + args.input_shape, generator=torch.Generator().manual_seed(args.seed + 1))

    def step():
        start = time.perf_counter()
        module(x)
        return (time.perf_counter() - start) * 1e3, None

    with torch.no_grad():
        first_ms = step()[0]
        stages["first_inference"] = harness.stage_memory()
        timed = timing.measure(step, args)
    return harness.report(args, timed, args.batch, (first_ms, "perf_counter"), harness.memory_report(),
                          {"input_shape": args.input_shape}, load_s=load_s, memory_stages=stages,
                          torch_version=torch.__version__,
                          device="cpu", device_name=timing.cpu_name(), threads=torch.get_num_threads(),
                          timer="perf_counter", net=os.path.basename(args.model))


def parse_args(argv):
    p = harness.JsonUsageParser(description="Time a frozen TorchScript module on the CPU.")
    p.add_argument("--model", required=True, help="a TorchScript file (torch.jit.save)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--input-shape", type=lambda text: [int(d) for d in text.split(",")], default=[3, 224, 224])
    harness.add_common_arguments(p, "random input: seed + 1")
    return harness.check_arguments(p, p.parse_args(argv), positive=("batch",))


if __name__ == "__main__":
    sys.exit(harness.main(parse_args, run, lambda found: ["%s batch %d, frozen TorchScript on %s"
                                                          % (found["net"], found["batch"], found["device_name"])],
                          {"torch_version": torch.__version__}))
