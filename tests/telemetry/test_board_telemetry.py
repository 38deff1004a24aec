"""BoardTelemetry (the host side) on the built-in `local` device: start, stop, collect, attach; and stop on
an exception in the measured block. No lab needed: the local transport runs the same shell scripts."""
import json
import time
from pathlib import Path

import pytest

from edgeprof.result import Result
from edgeprof.telemetry import BoardTelemetry
from edgeprof.telemetry.sampler import Recording


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_samples_inside_the_window_and_the_summary(board):
    telemetry = BoardTelemetry(board, interval_ms=50)
    assert telemetry.source == "proc"
    with telemetry.sampling() as recording:
        start = time.time()
        time.sleep(0.6)
        end = time.time()
    result = Result(device="local", model="m", backend="b", batch=2, run_id="test", iterations=30,
                    timed_window={"start_s": start, "end_s": end})
    recording.attach(result)
    telemetry_doc = result.telemetry
    assert telemetry_doc["source"] == "proc" and telemetry_doc["errors"] == []
    kinds = [r["kind"] for r in telemetry_doc["samples"]]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("proc") >= 10
    assert telemetry_doc["samples_in_window"] >= 8
    assert telemetry_doc["ram_peak_mb"] > 0 and telemetry_doc["cpu_load_pct"]["max"] >= 0
    assert telemetry_doc["power_total"]["mean_w"] is None and telemetry_doc["energy"]["per_inference_j"] is None
    assert result.flags == []
    # Its start and stop are recorded apart from the backend's own commands.
    start, stop = telemetry_doc["commands"]
    assert "board_sampler.pyz" in start["command"] and "edgeprof-sampler-stop" in stop["command"]
    assert result.commands == []
    assert json.dumps(result.to_dict())   # stored as JSON


def test_lines_that_are_not_sampler_records_are_errors(board):
    """What the host reads back is data: a line that is not JSON, not an object, or not of a record's types
    is left out and named (the result gets telemetry_incomplete), and the summary still comes."""
    telemetry = BoardTelemetry(board, interval_ms=50)
    recording = Recording(telemetry.source, 50, None)
    telemetry._start(recording)
    start = time.time()
    time.sleep(0.3)
    end = time.time()
    Path(recording.out + ".stop").touch()
    deadline = time.monotonic() + 5
    while not Path(recording.out).exists():
        assert time.monotonic() < deadline, "the sampler did not stop"
        time.sleep(0.02)
    bad = ['[1, 2]', '{"kind": "error"}', '{"kind": "tegrastats", "t": 1, "line": 5}', '{"kind": "proc"}', 'not json']
    with open(recording.out, "a") as out:
        out.write("\n".join(bad) + "\n")
    telemetry._stop(recording)
    assert recording.errors == [f"unreadable sampler record: {line}" for line in bad]
    result = Result(device="local", model="m", backend="b", batch=1, run_id="test", iterations=10,
                    timed_window={"start_s": start, "end_s": end})
    recording.attach(result)
    assert result.telemetry["samples_in_window"] >= 3
    assert [f["code"] for f in result.flags] == ["telemetry_incomplete"]


def test_the_sampler_stops_when_the_block_raises(board):
    telemetry = BoardTelemetry(board, interval_ms=50)
    with pytest.raises(KeyboardInterrupt):
        with telemetry.sampling() as recording:
            pid = recording.pid
            assert pid and not gone(pid)
            raise KeyboardInterrupt
    # The finished file is the sampler's last act; its exit follows within moments.
    deadline = time.monotonic() + 5
    while not gone(pid):
        assert time.monotonic() < deadline, "the sampler still runs"
        time.sleep(0.02)
    assert recording.records[-1]["kind"] == "end" and recording.errors == []


def test_a_sampler_that_cannot_start_is_an_error_not_a_failure(board):
    telemetry = BoardTelemetry(board)
    telemetry.python = "/nonexistent/python3"
    with telemetry.sampling() as recording:
        pass
    result = Result(device="local", model="m", backend="b", batch=1, run_id="test", iterations=1,
                    timed_window={"start_s": 0.0, "end_s": 1.0})
    recording.attach(result)
    assert result.status == "ok"
    assert [f["code"] for f in result.flags] == ["telemetry_incomplete", "few_samples"]
    assert "the sampler did not start (exit 3)" in result.flags[0]["detail"]
