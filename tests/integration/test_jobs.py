"""--jobs and --gpus on the lab (edgeprof.concurrency): concurrent runner processes on sim-desktop's CPU, each
stored, plus one aggregate; --gpus on a board without GPUs is refused before anything runs."""
import pytest

from ..conftest import json_lines


def test_jobs_2_on_the_cpu_stores_both_jobs_and_an_aggregate_of_their_throughput(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--iterations",
                        "20", "--jobs", "2", "--wait", "600", "--json", check=None)
    *jobs, total = json_lines(proc.stdout)
    assert [r["jobs"]["index"] for r in jobs] == [1, 2] and all(r["status"] == "ok" for r in jobs), proc.stderr
    assert total["status"] == "ok" and total["jobs"]["aggregate"] is True and total["jobs"]["jobs"] == 2
    assert total["jobs"]["result_ids"] == [r["id"] for r in jobs] and total["settings"]["jobs"] == 2
    assert total["throughput_ips"] == pytest.approx(sum(r["throughput_ips"] for r in jobs))
    assert total["latency_ms"]["median"] == max(r["latency_ms"]["median"] for r in jobs)
    assert total["iterations"] == 40
    # Two processes, each its own folder and timed window, running at the same time.
    windows = [r["timed_window"] for r in jobs]
    assert max(w["start_s"] for w in windows) < min(w["end_s"] for w in windows)
    assert 0 < total["pytorch"]["overlap"] <= 1
    stored = json_lines(edgeprof_cli("results", "list", "--json", check=0).stdout)
    assert sorted(r["id"] for r in stored) == sorted(r["id"] for r in jobs + [total])
    shown = edgeprof_cli("compare", "--metric", "latency,throughput", check=0).stdout
    assert "sim-desktop pytorch (fp32, cpu, 2 jobs)" in shown and "job 1 of 2" not in shown


def test_gpus_all_on_a_board_without_gpus_is_a_clear_error(edgeprof_cli):
    proc = edgeprof_cli("measure", "--device", "sim-desktop", "--backend", "pytorch", "alexnet", "--gpus", "all",
                        "--wait", "600")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ("error: --gpus all: sim-desktop has no GPU that nvidia-smi lists; measure its CPU with --jobs K and "
            "without --gpus") in proc.stderr
    assert json_lines(edgeprof_cli("results", "list", "--json", check=0).stdout) == []
