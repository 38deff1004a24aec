#!/usr/bin/env python3
"""edgeprof's LibTorch runner, its Python half: builds the C++ runner (libtorch_runner.cpp, CMakeLists.txt)
against the libtorch inside the board's torch wheel, writes the TorchScript it times, and drives it under
timing.py's loop, so that the warm-up, the adaptive stop and the statistics are the other runners' (one rule,
in Python) while the timed work runs without Python. Runs ON the board (Python 3.6+, standard library; export
also torch), in three steps:

    python3 libtorch_runner.py build --source DIR --build-dir DIR --prefix PREFIX --cmake CMAKE --cxx CXX
        Builds the runner from DIR's sources into DIR (the host names it after the torch version and the
        sources' hash), unless it is there already. PREFIX is torch.utils.cmake_prefix_path. Prints
        {"binary", "cached", "build_s"}.
    python3 libtorch_runner.py export --output FILE.pt -- TORCH_RUNNER_ARGUMENTS
        Builds the net as torch_runner.py does with the same arguments (torch_models.py: the netspec's
        CaffeNet with its seeded weights, or torchvision), traces it in eval mode at that batch with
        torch.jit.trace and saves it. The trace is checked on a second random input (seed + 4): outputs
        further from the net's than 1e-4 relative + 1e-5 absolute mean a forward whose path depends on its
        input, which a trace cannot hold, and are refused. Prints {"input_shape", "export_s",
        "trace_max_abs_diff"}.
    python3 libtorch_runner.py time --binary B --model FILE.pt --device cpu|cuda --batch N
            [--input-shape C,H,W] [--threads T] [timing options] --json
        Starts the C++ runner, which loads the module and keeps it, and times it: each of timing.measure()'s
        steps asks the runner for one inference over a pipe and gets the milliseconds the runner's own clock
        read around it (libtorch_runner.cpp says what is inside). The first inference is the first step,
        reported apart. The timed window (time.time() here, the board's epoch clock) and so throughput_ips
        also hold one pipe round trip per iteration, reported as pipe_round_trip_ms (median of 20), which
        the latencies do not hold.

Memory is the C++ process's: its resident set and peak (proc(5)), and on CUDA its caching allocator's in-use,
peak and peak reserved bytes; nvidia-smi's per-process view is not read (null).

Output and errors: harness.py's (one JSON object, or {"error", "kind"} and a non-zero exit status).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

if __package__:
    from . import harness, timing
else:
    import harness
    import timing

BINARY = "libtorch_runner"
PINGS = 20
# The trace check's tolerance: float32 reductions in another order (a traced graph may fuse or reorder)
# differ by a few ulps of the outputs' magnitude.
TRACE_RTOL, TRACE_ATOL = 1e-4, 1e-5


# --- build ---------------------------------------------------------------------------------------------

def check_private(path):
    """Refuse a folder another user could write or replace: `path` and every folder above it, up to the
    login user's home (or /), owned by this user or root and writable by neither group nor others, the
    rule OpenSSH's StrictModes applies to ~/.ssh (safe_path() in misc.c,
    https://github.com/openssh/openssh-portable/blob/master/misc.c). The runner built there is executed."""
    home = os.path.realpath(os.path.expanduser("~"))
    current = os.path.realpath(path)
    while True:
        found = os.stat(current)
        if found.st_uid not in (os.getuid(), 0) or found.st_mode & 0o022:
            raise harness.RunnerError(
                "unavailable", "%s is owned by uid %d with mode %o: another user could write there, so edgeprof "
                "will not build or run its LibTorch runner in it; set XDG_CACHE_HOME to a folder only you can write"
                % (current, found.st_uid, found.st_mode & 0o7777))
        if current in (home, os.path.dirname(current)):
            return
        current = os.path.dirname(current)


def _run_tool(argv, cwd, what):
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    sys.stderr.write(done.stdout)
    if done.returncode != 0:
        raise harness.RunnerError("build", "%s failed with status %d building the LibTorch runner: %s"
                          % (what, done.returncode, done.stdout.strip()[-1500:]))


def build(args):
    parent = os.path.dirname(args.build_dir)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    check_private(parent)
    binary = os.path.join(args.build_dir, BINARY)
    if os.path.isfile(binary):
        check_private(args.build_dir)
        return {"binary": binary, "cached": True, "build_s": None}
    work = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        t0 = time.perf_counter()
        tree = os.path.join(work, "cmake")
        os.mkdir(tree)
        # `cmake SOURCE` from the build folder and `--build . -- -jN`: what cmake 3.10 (Ubuntu 18.04) has.
        _run_tool([args.cmake, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + args.prefix,
                   "-DCMAKE_CXX_COMPILER=" + args.cxx, args.source], tree, "cmake (configure)")
        _run_tool([args.cmake, "--build", ".", "--", "-j%d" % (os.cpu_count() or 1)], tree, "cmake --build")
        done = os.path.join(work, "done")
        os.mkdir(done, 0o700)
        os.rename(os.path.join(tree, BINARY), os.path.join(done, BINARY))
        try:
            os.rename(done, args.build_dir)
        except OSError:
            if not os.path.isfile(binary):
                raise
            # Another job built the same sources against the same torch first: its binary is this one.
        return {"binary": binary, "cached": False, "build_s": time.perf_counter() - t0}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_build(argv):
    p = harness.JsonUsageParser(description="Build the LibTorch runner, unless built already.")
    for name in ("--source", "--build-dir", "--prefix", "--cmake", "--cxx"):
        p.add_argument(name, required=True)
    p.set_defaults(json=True)
    return p.parse_args(argv)


# --- export --------------------------------------------------------------------------------------------

def export(args):
    import torch
    if __package__:
        from . import torch_models, torch_runner
    else:
        import torch_models
        import torch_runner
    net_args = torch_runner.parse_args(args.net)
    t0 = time.perf_counter()
    model = torch_models.load_model(net_args)
    if model.detector is not None:
        # torchvision's detectors script (torchvision_models.Detector) but do not trace, and their TorchScript calls
        # torchvision's C++ operators, which live in torchvision's own library, not in libtorch.
        raise harness.RunnerError(
            "unsupported", "%s is a torchvision detector: its box counts depend on the input, which torch.jit.trace "
            "cannot hold, and its scripted form calls torchvision's C++ operators (torchvision::nms, "
            "torchvision::roi_align), which the LibTorch runner, plain libtorch, does not load: measure it with "
            "--backend pytorch" % model.name)
    if len(model.inputs) != 1:
        raise harness.RunnerError("unsupported", "the LibTorch runner feeds one input; %s declares %d (%s)" % (
            model.name, len(model.inputs), ", ".join(d["name"] for d in model.inputs)))
    batch = torch_models.batch_of(model.inputs, net_args)
    inputs = tuple(torch_models.inputs(model.inputs, net_args, batch))
    net = model.net.eval()
    with torch.no_grad():
        traced = torch.jit.trace(net, inputs, check_trace=False)
        # Another input than the traced one: a path that depends on the input shows here.
        other = tuple(torch_models.random_inputs(model.inputs, batch, net_args.seed + 4))
        diff = 0.0
        for want, got in zip(net(*other), traced(*other)):
            if not torch.allclose(got, want, rtol=TRACE_RTOL, atol=TRACE_ATOL):
                raise harness.RunnerError(
                    "unsupported", "the trace of %s computes other outputs than the net on another input (max abs "
                    "diff %g): its forward takes a path that depends on the input, which torch.jit.trace cannot "
                    "hold" % (model.name, (got - want).abs().max()))
            diff = max(diff, float((got - want).abs().max()) if want.numel() else 0.0)
    traced.save(args.output)
    return {"input_shape": list(inputs[0].shape[1:]), "batch": batch, "export_s": time.perf_counter() - t0,
            "trace_max_abs_diff": diff, "torch_version": torch.__version__, "net": model.name}


def parse_export(argv):
    p = harness.JsonUsageParser(description="Trace the net torch_runner.py builds from the same arguments.")
    p.add_argument("--output", required=True, help="the TorchScript file to write")
    p.add_argument("net", nargs="+", metavar="-- TORCH_RUNNER_ARGUMENTS")
    p.set_defaults(json=True)
    return p.parse_args(argv)


# --- time ----------------------------------------------------------------------------------------------

class Server(object):
    """The C++ runner, started once with the module loaded, answering one JSON line per command."""

    def __init__(self, argv):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        universal_newlines=True, bufsize=1)
        self.ready = self.ask(None)

    def ask(self, command):
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise harness.RunnerError("runtime", "the LibTorch runner exited with status %s without answering %s (its "
                              "output is above)" % (self.process.wait(), command or "its start"))
        reply = json.loads(line)
        if isinstance(reply, dict) and "error" in reply:
            kind = "oom" if harness.is_oom(RuntimeError(reply["error"])) else reply.get("kind", "runtime")
            raise harness.RunnerError(kind, reply["error"])
        return reply

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def _round_trip_ms(server):
    times = []
    for _ in range(PINGS):
        t0 = time.perf_counter()
        server.ask("ping")
        times.append((time.perf_counter() - t0) * 1e3)
    return timing.percentile(sorted(times), 50)


def _stage(memory):
    return {key: memory[key] for key in ("rss_bytes", "rss_peak_bytes", "allocator_bytes", "allocator_peak_bytes")}


def time_module(args):
    argv = [args.binary, "--model", args.model, "--device", args.device, "--batch", str(args.batch),
            "--input-shape", ",".join(str(d) for d in args.input_shape), "--seed", str(args.seed),
            "--span", args.span]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    server = Server(argv)
    try:
        stages = {"loaded": _stage(server.ask("memory"))}
        first_ms = server.ask("step")
        stages["first_inference"] = _stage(server.ask("memory"))
        round_trip_ms = _round_trip_ms(server)
        timed = timing.measure(lambda: (server.ask("step"), None), args)
        memory = server.ask("memory")
    finally:
        server.close()
    ready = server.ready
    on_cuda = args.device == "cuda"
    timer = "steady_clock+synchronize" if on_cuda else "steady_clock"
    return harness.report(
        args, timed, args.batch, (first_ms, timer),
        {"allocator_peak_bytes": memory["allocator_peak_bytes"],
         "allocator_reserved_bytes": memory["allocator_reserved_bytes"],
         "process_rss_peak_bytes": memory["rss_peak_bytes"], "nvml_process_bytes": None,
         "nvml_device_used_bytes": None},
        dict(threads=args.threads, precision="fp32", input_shape=args.input_shape, source="torchscript",
             grad_mode=ready["grad_mode"], cudnn_benchmark=True if on_cuda else None,
             tf32=False if on_cuda else None),
        load_s=ready["load_s"], memory_stages=stages, libtorch_version=ready["libtorch_version"],
        device=args.device, device_name=ready["device_name"] or timing.cpu_name(), threads=ready["threads"],
        timer=timer, net=os.path.basename(args.model), pipe_round_trip_ms=round_trip_ms)


def parse_time(argv):
    p = harness.JsonUsageParser(description="Time a TorchScript module in the C++ LibTorch runner.")
    p.add_argument("--binary", required=True, help="the built runner (libtorch_runner.py build)")
    p.add_argument("--model", required=True, help="a TorchScript file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--input-shape", type=lambda text: [int(d) for d in text.split(",")], default=[3, 224, 224])
    p.add_argument("--threads", type=int, help="at::set_num_threads")
    harness.add_common_arguments(p, "random input: seed + 1")
    return harness.check_arguments(p, p.parse_args(argv), positive=("batch", "threads"))


def _summary_lines(obj):
    return ["%s batch %d, LibTorch %s (C++) on %s, span %s, timer %s, pipe round trip %.3f ms"
            % (obj["net"], obj["batch"], obj["libtorch_version"], obj["device_name"], obj["span"], obj["timer"],
               obj["pipe_round_trip_ms"])]


COMMANDS = {"build": (parse_build, build), "export": (parse_export, export), "time": (parse_time, time_module)}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print(json.dumps({"error": "the first argument is one of %s" % ", ".join(sorted(COMMANDS)), "kind": "usage"}))
        return 2
    parse, run = COMMANDS[argv[0]]
    return harness.main(parse, run, _summary_lines, {}, argv=argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
