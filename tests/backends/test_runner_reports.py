"""A board runner's report that is malformed or hostile (missing keys, wrong types, NaN, deep nesting, an
error without its kind) becomes RunnerFailed with a clear reason, which the sweep stores as a failed result
(edgeprof.backends.base.run_board_runner). The "runner" here is printf on the local transport: the real
command path, with the report as a board would print it."""
import json

import pytest

from edgeprof.backends.base import RunnerFailed, run_board_runner
from edgeprof.board import Board
from edgeprof.devices import get_device
from edgeprof.models import resolve
from edgeprof.transport.local import LocalTransport

GOOD = {"span": "compute", "device": "cpu", "timer": "perf_counter", "python_version": "3.6.9", "iterations": 3,
        "warmup_iterations": 3, "settings": {"iterations": None, "warmup": 3, "warmup_s": 1.0, "min_iterations": 20,
                                             "min_time_s": 1.0, "max_time_s": 30.0, "target_ci": 0.01},
        "times_ms": [1.0, 1.1, 1.2], "latency_ms": {"median": 1.1, "p99": None}, "timed_window": {"start_s": 1.0,
                                                                                                "end_s": 2.0},
        "throughput_ips": 100.0, "first_inference_ms": 5.0, "stop_reason": "converged"}


def report_of(printed: str) -> dict:
    board = Board(get_device("local"), LocalTransport(), run_id="r")
    result = board.new_result(resolve("alexnet"), "pytorch", 1)
    return run_board_runner(board, ["printf", "%s\n", printed], result, 30, "the test runner")


def test_a_well_formed_report_passes():
    assert report_of(json.dumps(GOOD)) == GOOD


@pytest.mark.parametrize("change, reason", [
    ({"span": None}, "`span` is NoneType"),
    ({"iterations": True}, "`iterations` is bool"),
    ({"times_ms": [1.0, "x"]}, "`times_ms` holds something other than"),
    ({"times_ms": [1.0, float("nan")]}, "`times_ms` holds something other than"),
    ({"latency_ms": {"median": [1]}}, "`latency_ms` holds something other than numbers"),
    ({"timed_window": {"start_s": "now"}}, "`timed_window` lacks numeric start_s"),
    ({"settings": {"iterations": None}}, "`settings` lacks the timing policy"),
    ({"settings": "fast"}, "`settings` is str"),
])
def test_a_report_of_the_wrong_shape_is_refused_with_its_key(change, reason):
    with pytest.raises(RunnerFailed, match="the test runner gave a report edgeprof cannot use: " + reason[:20]):
        report_of(json.dumps({**GOOD, **change}))


def test_a_missing_key_is_named():
    without = dict(GOOD)
    del without["device"]
    with pytest.raises(RunnerFailed, match="`device` is missing"):
        report_of(json.dumps(without))


def test_deep_nesting_and_an_error_without_its_kind_are_clear_failures():
    with pytest.raises(RunnerFailed, match="without a result"):
        report_of("[" * 5000 + "]" * 5000)   # deeper than json.loads can go
    with pytest.raises(RunnerFailed, match="an error in a shape edgeprof does not know"):
        report_of(json.dumps({"error": {"nested": True}}))
