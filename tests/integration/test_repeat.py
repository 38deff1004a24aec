"""--repeat N on the lab: N runs in fresh processes (each its own runner process and load), stored, then one
summary whose interval includes the run-to-run spread (edgeprof.validity.summarize_repeats)."""
from ..conftest import json_lines


def test_repeat_3_stores_three_runs_and_a_summary_at_least_as_wide_as_any_run(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--iterations",
                        "30", "--repeat", "3", "--wait", "600", "--json", check=None)
    *runs, summary = json_lines(proc.stdout)
    assert [r["repeat"]["index"] for r in runs] == [1, 2, 3] and all(r["status"] == "ok" for r in runs), proc.stderr
    assert len({r["repeat"]["group"] for r in runs + [summary]}) == 1
    assert len({r["pytorch"]["load_s"] for r in runs}) == 3          # each run loaded the net itself
    assert summary["repeat"]["summary"] is True and summary["repeat"]["result_ids"] == [r["id"] for r in runs]
    low, high = summary["latency_ci95_ms"]["median"]
    widest = max(hi - lo for r in runs for lo, hi in [r["latency_ci95_ms"]["median"]])
    assert high - low >= widest and low <= summary["latency_ms"]["median"] <= high
    assert sorted(r["latency_ms"]["median"] for r in runs) == summary["repeat"]["run_figures_ms"]
    stored = json_lines(edgeprof_cli("results", "list", "--json", check=0).stdout)
    assert sorted(r["id"] for r in stored) == sorted(r["id"] for r in runs + [summary])
