"""The runner's window log (edgeprof/onboard/timing.py log_window) and the host's side of it
(edgeprof.telemetry.window_log): the lines a --duration run appends, their parser, the feed that follows the
file on a board, and the result of the windows done when a run is stopped (flagged interrupted)."""
import json
import time

import pytest

from edgeprof import validity
from edgeprof.backends import Options
from edgeprof.onboard import timing as bt
from edgeprof.result import Result
from edgeprof.telemetry import timeline
from edgeprof.telemetry.window_log import WindowFeed, fill_from_windows, hottest, parse_windows

from ..backends.test_board_timing import sleeping_step, timing_args


def window(index, times, start=1000.0, width=2.0):
    return {"index": index, "start_s": start + index * width, "end_s": start + (index + 1) * width,
            "iterations": len(times), "times_ms": times}


def test_the_runner_appends_each_window_as_it_ends(tmp_path):
    log = tmp_path / "windows.jsonl"
    times, span, _, _ = bt.measure(sleeping_step(10.0), timing_args("--warmup", "1", "--warmup-s", "0",
                                                                    "--duration-s", "0.5", "--window-s", "0.2",
                                                                    "--window-log", str(log)))
    windows, used = parse_windows(log.read_text())
    assert used == len(log.read_text())
    # The same windows as the report's, with their own iterations' times, in order.
    assert [{k: w[k] for k in ("start_s", "end_s", "iterations")} for w in windows] == span["windows"]
    assert [w["index"] for w in windows] == [0, 1, 2]
    assert [t for w in windows for t in w["times_ms"]] == [round(t, 6) for t in times]


def test_only_complete_window_lines_count():
    first, second = json.dumps(window(0, [5.0, 6.0])), json.dumps(window(1, [7.0]))
    text = first + "\n" + "not json\n" + json.dumps({"index": 2}) + "\n" + second + "\n" + second[:20]
    windows, used = parse_windows(text)
    assert [w["index"] for w in windows] == [0, 1]
    assert text[used:] == second[:20]      # the line still being written: read again next time
    # times_ms that do not match the iteration count is not a window.
    assert parse_windows(json.dumps(dict(window(0, [5.0]), iterations=2)) + "\n")[0] == []


def proc(t, temps):
    return {"kind": "proc", "t": t, "cpu_load_pct": [50.0], "cpu_freq_mhz": [2035], "ram_used_mb": 900,
            "temps_c": temps}


def test_the_feed_hands_on_each_new_window_once(board):
    path = f"{board.workdir}/windows.jsonl"
    seen = []
    feed = WindowFeed(board, path, seen.append)
    assert feed.read() == []                                    # no file yet: the runner is loading
    with open(path, "w") as log:
        log.write(json.dumps(window(0, [5.0, 6.0])) + "\n" + json.dumps(window(1, [7.0]))[:30])
    assert [w["index"] for w in feed.read()] == [0]
    with open(path, "a") as log:
        log.write(json.dumps(window(1, [7.0]))[30:] + "\n")
    assert [w["index"] for w in feed.read()] == [1]
    assert feed.read() == [] and [w["index"] for w in seen] == [0, 1]
    # Without the sampler's file, no temperature to show.
    assert [dict(w, temp_max_c=None) for w in feed.windows] == seen


def test_each_window_handed_on_carries_the_latest_hottest_sensor(board):
    path, samples = f"{board.workdir}/windows.jsonl", f"{board.workdir}/telemetry-1.jsonl.part"
    records = [{"kind": "start", "t": 1.0}, proc(2.0, {"CPU": 41.0, "GPU": 44.5}), {"kind": "others", "t": 2.5},
               proc(3.0, {"CPU": 52.0, "GPU": 47.0})]
    with open(samples, "w") as out:
        out.write("".join(json.dumps(r) + "\n" for r in records) + '{"kind": "pro')
    with open(path, "w") as log:
        log.write(json.dumps(window(0, [5.0])) + "\n")
    seen = []
    WindowFeed(board, path, seen.append, samples=samples).read()
    assert seen[0]["temp_max_c"] == 52.0 and hottest("") is None


def test_the_feed_follows_the_file_in_its_own_thread(board):
    path = f"{board.workdir}/windows.jsonl"
    seen = []
    with WindowFeed(board, path, seen.append, poll_s=0.05):
        with open(path, "w") as log:
            log.write(json.dumps(window(0, [5.0])) + "\n")
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [w["index"] for w in seen] == [0]


def test_a_stopped_run_keeps_its_windows_flagged_interrupted():
    windows = [window(0, [30.0] * 6), window(1, [20.0] * 8), window(2, [20.0] * 8), window(3, [20.0] * 8)]
    result = Result(device="sim-tx2", model="alexnet", backend="pytorch", batch=2, run_id="r")
    options = Options(duration_s=30.0, window_s=2.0)
    fill_from_windows(result, windows, options)
    validity.assess(result)
    flag = validity.interrupted_flag(windows, options.duration_s)
    assert flag["figures"] == {"windows": 4, "seconds_done": 8.0, "seconds_asked": 30.0}
    assert flag["detail"].startswith("stopped (Ctrl-C) after 4 finished window(s), 8.0 s of the 30 s asked")
    assert result.iterations == 30 and result.latency_ms["median"] == 20.0
    assert result.throughput_ips == pytest.approx(2 * 30 / 8.0)
    assert result.timed_window == {"start_s": 1000.0, "end_s": 1008.0}
    assert result.figures["stop_reason"] == "interrupted" and result.settings["duration_s"] == 30.0
    assert result.method["iterations_policy"].endswith("stopped (Ctrl-C) after 4 windows")
    # Its timeline, as any --duration result's: the steady state is the last three windows.
    assert timeline.analyse(result, [], None) == []
    assert result.timeline["steady"]["windows"] == [1, 3] and result.timeline["first"]["median_ms"] == 30.0


def test_only_a_duration_run_asks_its_runner_for_a_window_log():
    assert Options(duration_s=6.0, window_s=2.0, window_log="/w/windows-1.jsonl").timing_argv() == [
        "--duration-s", "6.0", "--window-s", "2.0", "--window-log", "/w/windows-1.jsonl"]
    assert Options(duration_s=6.0, window_s=2.0).timing_argv() == ["--duration-s", "6.0", "--window-s", "2.0"]
    assert Options(iterations=10, window_log="/w/windows-1.jsonl").timing_argv() == ["--iterations", "10"]
