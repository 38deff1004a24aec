"""What every board runner shares: its error, the common part of its command line, the keys every report has,
and main(), which turns a run into one JSON object (or an error into {"error", "kind"}) and an exit status.
Runs ON the board, uploaded with the rest of edgeprof/onboard/ into the private work folder (Python 3.6+,
standard library only: no dataclasses, no f-strings with `=`).

A runner is its framework's part alone: parse_args(argv) (harness.parser() and add_common_arguments()
give the shared options), run(args) -> report (harness.report() fills the shared keys), summary_lines(report)
for a person, and kind_of(error, args) for the framework's own exceptions. Then
`sys.exit(harness.main(...))`.

Output: one JSON object on stdout with --json, else a short summary. Exit status: 0 a report; 1 an error
object (kind: "input", "usage" where the arguments were fine for argparse but not for the run, "unsupported",
"unavailable", "spec", "weights", "build", "runtime"); 2 a usage error from the command line ({"error",
"kind": "usage"}); 3 out of memory (kind "oom"), which the host turns into "try a smaller --batch".
"""
import argparse
import json
import platform
import sys
import traceback

if __package__:
    from . import timing
else:
    import timing

# What the frameworks' out-of-memory errors say: torch ("CUDA out of memory", "can't allocate memory" on the
# CPU), ONNX Runtime ("Failed to allocate memory", std::bad_alloc), the CUDA runtime under TensorRT.
_OOM_MARKERS = ("out of memory", "can't allocate memory", "failed to allocate memory", "bad_alloc",
                "cudaerrormemoryallocation")


class RunnerError(Exception):
    """An error the runner reports as {"error", "kind"} (kinds: see the module docstring)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class JsonUsageParser(argparse.ArgumentParser):
    """Usage errors come back as one JSON object {"error", "kind": "usage"} on stdout and exit status 2, so
    the host parses one format whatever went wrong."""

    def error(self, message):
        print(json.dumps({"error": message, "kind": "usage"}))
        sys.stdout.flush()
        sys.exit(2)


def add_common_arguments(parser, seed_help, spans=("compute", "host")):
    """--span (one of `spans`), the timing options, --seed and --json: what every runner takes."""
    parser.add_argument("--span", choices=spans, default="compute")
    timing.add_timing_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def check_arguments(parser, args, positive=()):
    """The timing options' ranges, and each of `positive` (option names) at least 1 where given."""
    for name in positive:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name.replace("_", "-"))
    timing.check_timing_arguments(parser, args)
    return args


def is_oom(error):
    text = str(error).lower()
    return isinstance(error, MemoryError) or any(marker in text for marker in _OOM_MARKERS)


def memory_report(allocator_peak=None, allocator_reserved=None, nvml=(None, None)):
    """The memory figures every runner reports, null where its framework cannot tell: the allocator's peak
    and reserved bytes, the process's peak RSS, nvidia-smi's (this process, the whole device)."""
    return {"allocator_peak_bytes": allocator_peak, "allocator_reserved_bytes": allocator_reserved,
            "process_rss_peak_bytes": timing.rss_peak_bytes(), "nvml_process_bytes": nvml[0],
            "nvml_device_used_bytes": nvml[1]}


def stage_memory(allocator=None, allocator_peak=None):
    """Memory at one stage of a run (after the load, after the first inference), for the cold-start figures:
    the process's resident set now and its peak so far, and the framework allocator's bytes in use now and
    its peak so far where it has one (null otherwise). The end of the run is memory_report()'s."""
    return {"rss_bytes": timing.rss_bytes(), "rss_peak_bytes": timing.rss_peak_bytes(),
            "allocator_bytes": allocator, "allocator_peak_bytes": allocator_peak}


def report(args, timed, batch, first_inference, memory, settings, **own):
    """A runner's report: the keys every runner gives, then its `own`. `timed` is timing.measure()'s
    answer, `first_inference` (ms, timer name), `settings` what the runner adds to the shared settings."""
    found = {"first_inference_ms": first_inference[0], "first_inference_timer": first_inference[1]}
    times, window, reason, warmup = timed
    found.update(timing.timing_report(times, window, reason, warmup, batch))
    found.update(memory=memory, python_version=platform.python_version(), span=args.span, batch=batch)
    found.update(own)
    found["settings"] = dict(timing.timing_settings(args), batch=batch, seed=args.seed, span=args.span)
    found["settings"].update(settings)
    return found


def emit(obj, as_json, summary_lines):
    """A runner's output: one JSON object on stdout (--json), or a short summary for a person:
    summary_lines(obj), then the timing line every runner shares."""
    if as_json:
        print(json.dumps(obj))
    elif "error" in obj:
        print("error (%s): %s" % (obj["kind"], obj["error"]))
    else:
        for line in summary_lines(obj):
            print(line)
        lat = obj["latency_ms"]
        if lat:
            print("median %.3f ms (95%% CI %s), p90 %.3f, p99 %.3f, %d iterations (%s), %.1f inferences/s"
                  % (lat["median"], obj["ci95_ms"], lat["p90"], lat["p99"], obj["iterations"],
                     obj["stop_reason"], obj["throughput_ips"]))
    sys.stdout.flush()


def main(parse_args, run, summary_lines, versions, kind_of=None, argv=None):
    """Parse, run, print; returns the exit status. `versions` (framework version keys) go into every error
    object; kind_of(error, args) -> (kind, message or None) names a framework exception's kind (default:
    "oom" or "runtime"), its traceback going to stderr, which the host keeps as the raw log."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except RunnerError as e:
        emit(dict(versions, error=str(e), kind=e.kind), args.json, summary_lines)
        return 1
    except Exception as e:
        traceback.print_exc()
        kind, message = kind_of(e, args) if kind_of else (None, None)
        kind = kind or ("oom" if is_oom(e) else "runtime")
        emit(dict(versions, error=message or "%s: %s" % (type(e).__name__, str(e).strip()), kind=kind),
             args.json, summary_lines)
        return 3 if kind == "oom" else 1
    emit(result, args.json, summary_lines)
    return 0
