"""What a LabRun keeps in memory of each stored result (edgeprof.lab.runner.summary_only): the summary, not
the raw parts, so a large lab's host memory does not grow with every board-second measured; and how its board
threads take turns storing them."""
import threading
import time

from edgeprof.lab.runner import _WritesInTurn, summary_only
from edgeprof.result import Result


def test_a_lab_run_keeps_the_summary_and_leaves_the_raw_parts_to_the_store():
    result = Result(device="sim-tx2-01", model="lenet", backend="caffe", batch=1, run_id="r", id=7,
                    latency_ms={"median": 1.5}, timed_window={"start_s": 1.0, "end_s": 2.0},
                    figures={"times_ms": [1.5] * 1000, "total_ms": 1500.0}, raw_log="I0101 ..." * 1000,
                    commands=[{"command": "caffe time"}], prototxt_diff="-dim: 10\n+dim: 1\n",
                    telemetry={"source": "tegrastats", "samples": [{"kind": "tegrastats"}] * 500,
                               "commands": [{"command": "sampler"}], "power_total": {"mean_w": 5.0}},
                    flags=[{"code": "clocks_moved", "detail": "GPU"}])
    kept = summary_only(result)
    assert (kept.id, kept.latency_ms, kept.timed_window, kept.flags) == (7, {"median": 1.5}, result.timed_window,
                                                                         result.flags)
    assert kept.figures == {"total_ms": 1500.0} and kept.telemetry == {"source": "tegrastats",
                                                                       "power_total": {"mean_w": 5.0}}
    assert (kept.raw_log, kept.commands, kept.prototxt_diff) == ("", [], "")
    # The result handed to on_result callers and stored is untouched.
    assert len(result.figures["times_ms"]) == 1000 and len(result.telemetry["samples"]) == 500 and result.raw_log


def test_board_threads_store_their_results_one_at_a_time():
    # What lets 128 board threads share a SQLite file on a busy host: their adds queue on the lab's lock
    # instead of SQLite's 30 s busy wait (edgeprof.lab.runner._WritesInTurn). The store counts the adds inside
    # it at once, which a real SQLite file does not show.
    class Store:
        inside = most = 0

        def add(self, result):
            Store.inside += 1
            Store.most = max(Store.most, Store.inside)
            time.sleep(0.001)
            Store.inside -= 1
            return 1

        def plan_items_ok(self, plan_hash, device=None):
            return {f"{plan_hash} {device}"}

    turn = threading.Lock()
    stores = [_WritesInTurn(Store(), turn) for _ in range(16)]
    threads = [threading.Thread(target=lambda s=s: [s.add(None) for _ in range(5)]) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Store.most == 1
    assert stores[0].plan_items_ok("h", "sim-tx2-01") == {"h sim-tx2-01"}
