"""Run `caffe time` on a board and turn its log into a Result.

What the figure means: `caffe time` runs one forward and one backward pass as its own warm-up, then N
iterations of forward + backward, timing each layer with a timer that synchronizes the GPU. edgeprof
reports the "Average Forward pass" (span `caffe_forward`): the mean over N of the summed per-layer forward
times. Caffe prints no per-iteration forward times, so median and percentiles are unknown (None), and the
per-layer synchronization inflates GPU figures (caffe time times each layer's Forward between Timer Start and
Stop, which synchronize the device: https://github.com/BVLC/caffe/blob/master/tools/caffe.cpp): compare Caffe
with Caffe, or read the PyTorch and TensorRT backends' compute latency for absolute numbers.
"""
from __future__ import annotations

import re

from ...models import ModelSource, parse
from ...models.stats import caffe_lacks_fork_layers
from ...parsers import caffe_time
from ...result import Result
from ...transport import CommandTimeout
from ..base import Backend, BackendUnavailable, Options, find_tool

DEFAULT_ITERATIONS = 50
_DATE_MARK = "edgeprof-board-date "
# caffe's log goes to a file and comes back in one piece: glog writes every line on its own, and over SSH
# each would be a packet of its own (a 300-iteration run: about 400), most of the host's CPU per item in a
# lab of many boards. The file survives an abort, so an F-line and its stack trace still arrive. Then the
# board's date, for the glog times (timed_window).
_CAPTURE = f'''log=$1; shift
"$@" 2>"$log"; status=$?
cat "$log" >&2
echo "{_DATE_MARK}$(date '+%Y %z %s')"
exit $status'''


def timed_window(log: str, board_date: str) -> dict | None:
    """The benchmark's window in board epoch seconds, from caffe's glog times and `date +"%Y %z %s"`."""
    begins, ends = caffe_time.benchmark_stamps(log)
    found = re.fullmatch(r"(\d{4}) ([+-])(\d\d)(\d\d) (\d+)", board_date.strip())
    if begins is None or ends is None or not found:
        return None
    year, sign, hours, minutes, now = found.groups()
    offset = (1 if sign == "+" else -1) * (int(hours) * 3600 + int(minutes) * 60)
    return {key: caffe_time.glog_epoch(stamp, year=int(year), utc_offset_s=offset, near_s=int(now))
            for key, stamp in (("start_s", begins), ("end_s", ends))}


class CaffeBackend(Backend):
    name = "caffe"
    tool = "caffe time"
    timing_loop = False
    model_kinds = ("prototxt",)
    spans = ()  # always "caffe_forward": the mean of its per-layer forward timers
    gpu_by_argument = True  # -gpu N (tools/caffe.cpp); CUDA_VISIBLE_DEVICES as well would renumber the GPUs

    def prepare(self, board) -> dict:
        candidates = board.device.profile.caffe
        found = find_tool(board, candidates, "caffe", ask="--version")
        if found is None:
            raise BackendUnavailable(
                f"caffe not found on {board.device.name} (looked for {', '.join(candidates)}). Install it "
                f"(Debian/Ubuntu: apt-get install caffe-cpu, or build BVLC/NVIDIA Caffe), or set "
                f"caffe = \"/path/to/caffe\" in the device's inventory entry.")
        return {"path": found.path, "version": found.answer.strip().removeprefix("caffe version ") or None,
                "gpu": bool(board.facts.get("gpu"))}

    def measure_impl(self, board, tool: dict, model: ModelSource, batch: int, options: Options,
                     result: Result) -> Result:
        iterations = options.iterations or DEFAULT_ITERATIONS
        result.span = "caffe_forward"
        result.method = {
            "timer": "caffe's per-layer timers (GPU: synchronizing CUDA events; CPU: wall clock)",
            "warmup": "1 forward + 1 backward (caffe time's own)",
            "statistic": "mean of per-iteration summed layer forward times; no percentiles available",
            "iterations_policy": f"fixed ({iterations})",
            "phase": "TEST",
            "timed_window": "glog times of caffe's '*** Benchmark begins ***' and '*** Benchmark ends ***' lines: "
                            "the N forward+backward iterations, without the warm-up",
        }
        result.settings = {"iterations": iterations, "gpu": tool["gpu"], "phase": "TEST"}
        result.state["versions"] = {"caffe": tool["version"]}

        remote = self.upload_model(board, model, batch, result)

        caffe = [tool["path"], "time", "-model", remote, "-iterations", str(iterations), "-phase", "TEST"]
        if tool["gpu"]:
            caffe += ["-gpu", str(options.gpu or 0)]
        argv = ["sh", "-c", _CAPTURE, "caffe-time", remote[:-len(".prototxt")] + ".log", *caffe]
        try:
            run = board.run(argv, env={"GLOG_logtostderr": "1"}, timeout=options.timeout_s, record_in=result)
        except CommandTimeout as e:
            return result.fail(f"{e}. Lower --iterations or raise the timeout.")
        stdout, _, clock = run.stdout.rpartition(_DATE_MARK)
        result.raw_log = run.stderr + stdout
        # glog stamps lines with the local time and no year: the board's year and UTC offset, read right
        # after the run, place them on the epoch clock telemetry uses; its epoch seconds pick the year
        # across New Year.
        result.timed_window = timed_window(result.raw_log, clock)
        report = caffe_time.parse(result.raw_log)
        result.figures = report.to_dict()
        result.iterations = report.iterations
        if not run.ok or report.error:
            return result.fail(caffe_lacks_fork_layers(parse(model.text, model.path), result.raw_log)
                               or self._failure(run.exit_status, report.error))
        if report.forward_ms is None:
            return result.fail("caffe time finished without an 'Average Forward pass' line; see the raw log "
                               "(edgeprof results show ID)")
        result.latency_ms["mean"] = report.forward_ms
        result.throughput_ips = batch * 1000.0 / report.forward_ms if report.forward_ms > 0 else None
        return result

    @staticmethod
    def _failure(status: int, error: str | None) -> str:
        how = {134: "aborted (SIGABRT)", 137: "was killed (SIGKILL; out of memory?)",
               139: "crashed (SIGSEGV)"}.get(status, f"exited with status {status}")
        return f"caffe {how}: {error or 'no error message in the log'}"
