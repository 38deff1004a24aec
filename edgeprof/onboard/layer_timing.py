"""Per-layer times of a Caffe net's PyTorch build: torch_runner.py --per-layer. Runs ON the board (Python 3.6+,
the standard library and torch).

How: after the runner's timed loop, so that its latency figures are untouched, ITERATIONS more forwards of the
eager net, each step of the CaffeNet (one Caffe layer's module) wrapped by a forward pre-hook and a forward hook
that mark its start and its end: CUDA events recorded on the current stream (read once the iteration is over and
synchronized), time.perf_counter on the CPU. A layer's figure is the median, over the iterations, of its end
minus its start; the pass's forward_ms is the median of the whole forward, hooks included. A BatchNorm folded
with the Scale after it (caffe_layers._foldable) is one module: its figure covers both layers ("covers").

What a figure spans, and why the pass's total is not the latency: on the CPU a layer's figure is the host time of
its module call, and the hooks add two timer calls per layer. On CUDA it is the GPU time between the two events:
the layer's kernels, plus any time the GPU waited for the host to launch them. The events do not synchronize per
layer (caffe time's timers do); every iteration ends in one synchronize, as the timed loop's do. The hooks' host
work (two calls and two event records per layer) delays each launch, so where the net is launch-bound the pass's
total exceeds the normal latency. Compare layers by their share of the sum, and the net by the latency. The CUDA
path has not been run on a GPU by edgeprof's tests (the lab has none).
"""
import time

import torch

if __package__:
    from .timing import percentile
else:
    from timing import percentile

ITERATIONS = 20


def time_layers(net, inputs, device, iterations=ITERATIONS):
    """{"timer", "iterations", "statistic", "forward_ms", "layers": [{"name", "covers", "ms"}]} of `net` (a
    caffe_layers.CaffeNet, eager) on `inputs` (already on `device`), in the net's order of steps. The caller
    turns autograd off."""
    cuda = device.type == "cuda"

    def mark():
        if not cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_ms(start, end):
        return start.elapsed_time(end) if cuda else (end - start) * 1e3

    modules = [step[0] for step in net.steps]
    marks = {}
    handles = []
    for module in modules:
        handles.append(module.register_forward_pre_hook(lambda m, args: marks.__setitem__(id(m), [mark()])))
        handles.append(module.register_forward_hook(lambda m, args, out: marks[id(m)].append(mark())))
    per_layer = [[] for _ in modules]
    forwards = []
    try:
        for index in range(iterations + 1):
            marks.clear()
            begin = mark()
            net(*inputs)
            end = mark()
            if cuda:
                torch.cuda.synchronize(device)
            if index == 0:
                continue  # a warm-up of the hooks and events, not kept
            forwards.append(elapsed_ms(begin, end))
            for times, module in zip(per_layer, modules):
                times.append(elapsed_ms(*marks[id(module)]))
    finally:
        for handle in handles:
            handle.remove()
    return {
        "timer": "cuda_event" if cuda else "perf_counter", "iterations": iterations,
        "statistic": "median over the iterations of a separate pass after the timed loop, with hooks",
        "forward_ms": percentile(sorted(forwards), 50),
        "layers": [{"name": module.caffe_name,
                    "covers": [module.caffe_name] + [m.caffe_name for m in getattr(module, "folded", [])],
                    "ms": percentile(sorted(times), 50)} for module, times in zip(modules, per_layer)]}
