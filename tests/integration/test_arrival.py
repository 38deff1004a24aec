"""--arrival on the lab: queries issued at a camera's rate on sim-desktop (PyTorch, CPU), timed from their
arrival, with the idle gaps really spent idle; caffe time, which runs its own back-to-back loop, refuses it."""
from ..conftest import json_lines


def test_fixed_rate_queries_are_timed_from_their_arrival(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "-n", "12",
                        "--arrival", "fixed-rate=4", "--wait", "600", "--json", check=None)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "ok", result["error"]
    arrival = result["pytorch"]["arrival"]
    assert (arrival["scenario"], arrival["rate_hz"], arrival["queries"]) == ("fixed-rate", 4.0, 12)
    # 250 ms between frames for a net of tens of ms: the run lasts the 11 gaps, and no frame is late.
    window = result["timed_window"]
    assert window["end_s"] - window["start_s"] >= 11 * 0.25
    assert arrival["missed_deadlines"] == 0 and "deadline_missed" not in [f["code"] for f in result["flags"]]
    assert result["latency_ms"]["median"] >= arrival["service_ms"]["median"]
    assert result["method"]["iterations_policy"].startswith("fixed-rate arrivals at 4 Hz, 12 queries")
    assert result["settings"]["arrival"] == "fixed-rate=4"


def test_caffe_time_refuses_arrivals(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-tx2", "alexnet", "--arrival", "poisson=30", "--wait", "600",
                        "--json", check=None)
    [result] = json_lines(proc.stdout)
    assert result["status"] == "failed"
    assert result["error"].startswith("--arrival: caffe time runs its own fixed number of back-to-back iterations")
