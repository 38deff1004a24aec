#!/usr/bin/env python3
"""edgeprof's pycaffe runner: Caffe's own net, built and run through its Python interface (python3-caffe), for
what `caffe time` cannot tell: the cold start (building the net in a fresh process, the first forward, the
memory after each) and per-iteration times of the forward alone, without caffe time's per-layer timers and
backward passes (https://github.com/BVLC/caffe/blob/master/tools/caffe.cpp times each layer between
synchronizing timers). Runs ON the board; output and errors are harness.py's.

    load_s              caffe.Net(prototxt, caffe.TEST): parsing the net and allocating its blobs; the weights
                        are the prototxt's fillers (edgeprof times, it does not classify)
    span "pycaffe_forward"
                        net.forward() on inputs already in the input blobs (standard normal from --seed + 1,
                        set once): on a GPU the inputs are copied up once, before the first forward; each
                        forward's outputs come back to host memory, which waits for the device (pycaffe
                        returns the output blobs' .data, Blob::cpu_data, a synchronizing copy)
    first_inference_ms  the first net.forward() after the load, apart from the timed ones
    memory              the process's resident set (Caffe's SyncedMemory keeps no statistics)

--gpu N: caffe.set_mode_gpu() and caffe.set_device(N), as `caffe time -gpu N` does; CPU otherwise.
"""
import os
import sys
import time

import caffe
import numpy as np

if __package__:
    from . import harness, timing
else:
    import harness
    import timing

SPAN = "pycaffe_forward"


def run(args):
    if args.gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_mode_gpu()
        caffe.set_device(args.gpu)
    t0 = time.perf_counter()
    net = caffe.Net(args.model, caffe.TEST)
    load_s = time.perf_counter() - t0
    stages = {"loaded": harness.stage_memory()}
    rng = np.random.RandomState(args.seed + 1)
    for name in net.inputs:
        blob = net.blobs[name]
        blob.data[...] = rng.standard_normal(blob.data.shape).astype(np.float32)
    batch = int(net.blobs[net.inputs[0]].data.shape[0])

    def step():
        start = time.perf_counter()
        outputs = net.forward()
        return (time.perf_counter() - start) * 1e3, outputs

    first_ms = step()[0]
    stages["first_inference"] = harness.stage_memory()
    timed = timing.measure(step, args)
    args.span = SPAN
    return harness.report(args, timed, batch, (first_ms, "perf_counter"), harness.memory_report(),
                          {"gpu": args.gpu}, load_s=load_s, memory_stages=stages, caffe_version=caffe.__version__,
                          numpy_version=np.__version__, device="cpu" if args.gpu is None else "gpu:%d" % args.gpu,
                          device_name=timing.cpu_name() if args.gpu is None else None, timer="perf_counter",
                          net=os.path.basename(args.model), outputs=list(net.outputs))


def parse_args(argv):
    p = harness.JsonUsageParser(description="Build a Caffe net through pycaffe and time its forward.")
    p.add_argument("--model", required=True, help="a deploy prototxt at the batch to run")
    p.add_argument("--gpu", type=int, help="run on this GPU (caffe.set_device); CPU otherwise")
    harness.add_common_arguments(p, "random input: seed + 1")
    return harness.check_arguments(p, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(harness.main(parse_args, run, lambda found: ["%s batch %d, pycaffe on %s, load %.3f s, first %.3f ms"
                                                          % (found["net"], found["batch"], found["device"],
                                                             found["load_s"], found["first_inference_ms"])],
                          {"caffe_version": caffe.__version__}))
