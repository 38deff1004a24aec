"""edgeprof.reporting.compare and `edgeprof compare`: cells, ratios with bootstrap intervals whose truth is
known (per-iteration times drawn around chosen medians), the n.s. mark, the honest "no interval" of a
mean-only backend, repeated runs, flags, exports."""
import csv
import io
import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from edgeprof.reporting.compare import (MIN_SAMPLES, NOT_SIGNIFICANT, bootstrap_medians, compare, percentile,
                                        percentile_interval)
from edgeprof.storage import ResultStore

from .samples import caffe_result, lab_sweep, pytorch_result


def only_row(comparison):
    [row] = comparison.rows
    return row


def test_known_ratio_lies_in_its_interval_and_is_significant():
    baseline = pytorch_result("resnet50", 10.0, seed=1, result_id=1)
    faster = pytorch_result("resnet50", 8.0, variant="fp16", seed=2, result_id=2)
    comparison = compare([baseline, faster])
    ratio = only_row(comparison).ratios["sim-tx2 pytorch (fp16, cuda:0)"]
    assert ratio.statistic == "median / median"
    assert ratio.value == pytest.approx(0.8, abs=0.01)
    assert ratio.ci[0] < 0.8 < ratio.ci[1] and ratio.ci[1] < 1.0
    assert ratio.significant is True
    assert ratio.ci[0] <= ratio.value <= ratio.ci[1]
    assert NOT_SIGNIFICANT not in comparison.ratio_text(ratio)
    [sentence] = comparison.sentences()
    assert sentence.startswith("resnet50 batch 1: sim-tx2 pytorch (fp16, cuda:0) ran 1.2") and "times faster than " \
        "sim-tx2 pytorch (fp32, cuda:0) (95% CI" in sentence


def test_no_difference_is_marked_not_significant():
    a = pytorch_result("alexnet", 10.0, seed=3, result_id=1)
    b = pytorch_result("alexnet", 10.0, variant="fp16", seed=4, result_id=2)
    comparison = compare([a, b])
    row = only_row(comparison)
    ratio = row.ratios["sim-tx2 pytorch (fp16, cuda:0)"]
    assert ratio.ci[0] < 1.0 < ratio.ci[1] and ratio.significant is False
    assert comparison.cell_lines(row, "sim-tx2 pytorch (fp16, cuda:0)")[-1].endswith(" n.s.")
    assert "do not differ significantly" in comparison.sentences()[0]
    [csv_row] = [r for r in csv.DictReader(io.StringIO(comparison.export("csv"))) if r["baseline"] == "False"]
    assert csv_row["significant"] == "False"
    assert "n.s." in comparison.export("md")


def test_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    # True population medians 10 and 9 ms (log-normal: the median is e^mu exactly): true ratio 0.9.
    covered = 0
    trials = 120
    for trial in range(trials):
        base = pytorch_result("m", 10.0, n=60, seed=1000 + trial, sigma=0.1, result_id=1)
        other = pytorch_result("m", 9.0, n=60, seed=5000 + trial, sigma=0.1, variant="fp16", result_id=2)
        ratio = only_row(compare([base, other], resamples=1000)).ratios["sim-tx2 pytorch (fp16, cuda:0)"]
        covered += ratio.ci[0] <= 0.9 <= ratio.ci[1]
    assert 0.87 <= covered / trials <= 1.0


@pytest.mark.parametrize("n", [10, 11])
def test_order_statistic_bootstrap_is_the_textbook_bootstrap(n):
    """The resample medians drawn through Beta order statistics have the distribution of medians of n draws
    with replacement (module docstring of reporting.compare)."""
    rng = random.Random(7)
    data = sorted(rng.lognormvariate(0, 0.5) for _ in range(n))
    draws = 20000
    fast = bootstrap_medians(data, draws, random.Random(1))
    brute_rng = random.Random(2)
    brute = [percentile(sorted(brute_rng.choices(data, k=n)), 50) for _ in range(draws)]
    for p in (2.5, 25, 50, 75, 97.5):
        assert percentile(sorted(fast), p) == pytest.approx(percentile(sorted(brute), p), rel=0.02)
    fast_counts, brute_counts = Counter(round(v, 12) for v in fast), Counter(round(v, 12) for v in brute)
    total_variation = sum(abs(fast_counts[k] - brute_counts[k]) for k in fast_counts | brute_counts) / 2 / draws
    assert total_variation < 0.03


def test_caffe_mean_gets_a_ratio_but_no_invented_interval():
    caffe = caffe_result("alexnet", 12.9, result_id=1)
    torch = pytorch_result("alexnet", 10.32, seed=5, result_id=2)
    comparison = compare([caffe, torch])
    row = only_row(comparison)
    assert comparison.baseline.label == "sim-tx2 caffe"         # measured first
    ratio = row.ratios["sim-tx2 pytorch (fp32, cuda:0)"]
    assert ratio.value == pytest.approx(torch.latency_ms["median"] / 12.9)
    assert ratio.statistic == "median / mean"
    assert ratio.ci is None and ratio.significant is None
    assert ratio.note == "n/a: caffe reports only a mean"
    assert row.cells["sim-tx2 caffe"].median_ci_ms is None and row.cells["sim-tx2 caffe"].iqr_ms is None
    assert "n/a: caffe reports only a mean" in comparison.cell_lines(row, "sim-tx2 pytorch (fp32, cuda:0)")[-1]
    [sentence] = comparison.sentences()
    assert "sim-tx2 pytorch (fp32, cuda:0) ran 1.25 times faster than sim-tx2 caffe (mean / median; n/a: caffe " \
           "reports only a mean)" in sentence
    doc = json.loads(comparison.export("json"))
    cell = doc["rows"][0]["cells"][1]
    assert cell["ratio"]["ci"] is None and cell["ratio"]["note"] == "n/a: caffe reports only a mean"
    # Caffe's span is not PyTorch's: said under the table.
    assert any("span compute, the baseline's is caffe_forward" in note for note in comparison.notes())


def test_results_without_per_iteration_times_say_why_there_is_no_interval():
    old = pytorch_result("alexnet", 10.0, seed=1, result_id=1, with_times=False)
    few = pytorch_result("alexnet", 8.0, seed=2, result_id=2, variant="fp16", n=MIN_SAMPLES - 1)
    row = only_row(compare([old, few], baseline="fp16"))
    ratio = row.ratios["sim-tx2 pytorch (fp32, cuda:0)"]
    assert ratio.ci is None and ratio.note == "n/a: result 1 has no per-iteration times stored"
    # The older result still shows the runner's own interval of its median.
    assert row.cells["sim-tx2 pytorch (fp32, cuda:0)"].median_ci_method == "order statistics, from the runner"
    few_cell = row.cells["sim-tx2 pytorch (fp16, cuda:0)"]
    assert few_cell.bootstrap is None and few_cell.iqr_ms is not None


def test_repeated_runs_use_the_latest_and_name_the_older():
    first = pytorch_result("alexnet", 10.0, seed=1, result_id=3, run_id="morning")
    again = pytorch_result("alexnet", 11.0, seed=2, result_id=7, run_id="evening")
    other = caffe_result("alexnet", 12.9, result_id=5)
    comparison = compare([again, other, first])      # as the store returns them: newest first
    row = only_row(comparison)
    cell = row.cells["sim-tx2 pytorch (fp32, cuda:0)"]
    assert cell.result.id == 7 and cell.older_ids == [3]
    assert comparison.baseline.label == "sim-tx2 pytorch (fp32, cuda:0)"    # lowest id: measured first
    assert any("latest result (7) is used; older 3 not pooled" in note for note in comparison.notes())


def test_flags_are_marked_in_the_cell_and_listed():
    flagged = pytorch_result("alexnet", 10.0, seed=1, result_id=1)
    flagged.flags = [{"code": "thermal_throttle", "detail": "BCPU at 96.5 C, trip point 101 C"}]
    legacy = pytorch_result("alexnet", 9.0, seed=2, result_id=2, variant="fp16")
    legacy.flags = ["clocks_moved"]
    comparison = compare([flagged, legacy])
    row = only_row(comparison)
    assert comparison.cell_lines(row, "sim-tx2 pytorch (fp32, cuda:0)")[0].endswith(" !")
    notes = comparison.notes()
    assert "! alexnet batch 1, sim-tx2 pytorch (fp32, cuda:0) (result 1): thermal_throttle: BCPU at 96.5 C, trip " \
           "point 101 C" in notes
    assert "! alexnet batch 1, sim-tx2 pytorch (fp16, cuda:0) (result 2): clocks_moved" in notes
    assert next(r for r in csv.DictReader(io.StringIO(comparison.export("csv"))) if r["result_id"] == "1")["flags"] \
        == "thermal_throttle"


def test_unflagged_cells_have_no_mark():
    comparison = compare([pytorch_result("alexnet", 10.0, result_id=1)])
    assert not comparison.cell_lines(only_row(comparison), "sim-tx2 pytorch (fp32, cuda:0)")[0].endswith("!")


def test_columns_baseline_choice_and_rows():
    results = lab_sweep()
    comparison = compare(results, baseline="fp16")
    assert [c.label for c in comparison.columns] == [
        "sim-tx2 caffe", "sim-tx2 pytorch (fp32, cuda:0)", "sim-tx2 pytorch (fp16+channels_last, cuda:0)"]
    assert comparison.baseline.label == "sim-tx2 pytorch (fp16+channels_last, cuda:0)"
    assert [(r.model, r.batch) for r in comparison.rows] == [("alexnet", 1), ("alexnet", 8), ("googlenet", 1),
                                                             ("googlenet", 8)]
    # googlenet batch 8: fp16 was made no faster than fp32 (true ratio 1); alexnet batch 1: fp32 is 0.8/0.55.
    rows = {(r.model, r.batch): r for r in comparison.rows}
    assert rows[("googlenet", 8)].ratios["sim-tx2 pytorch (fp32, cuda:0)"].significant is False
    ratio = rows[("alexnet", 1)].ratios["sim-tx2 pytorch (fp32, cuda:0)"]
    assert ratio.ci[0] < 0.8 / 0.55 < ratio.ci[1] and ratio.significant
    with pytest.raises(ValueError, match="matches several columns"):
        compare(results, baseline="pytorch")
    with pytest.raises(ValueError, match="matches no column"):
        compare(results, baseline="tensorrt")


def test_a_row_without_the_baseline_gets_no_ratio():
    comparison = compare([caffe_result("alexnet", 12.9, result_id=1),
                          pytorch_result("vgg16", 80.0, result_id=2)])
    vgg16 = comparison.rows[1]
    assert comparison.cell_lines(vgg16, "sim-tx2 caffe") == ["-"]
    assert comparison.cell_lines(vgg16, "sim-tx2 pytorch (fp32, cuda:0)")[-1] == \
        "n/a: no baseline result for this model and batch"
    assert comparison.sentences() == []


def test_the_same_results_give_the_same_intervals_whatever_else_is_compared():
    results = lab_sweep()
    one = compare(results[:3]).rows[0].ratios["sim-tx2 pytorch (fp16+channels_last, cuda:0)"]
    again = compare(results[:3]).rows[0].ratios["sim-tx2 pytorch (fp16+channels_last, cuda:0)"]
    assert one.ci == again.ci
    fp32 = compare(results[1:3]).rows[0].cells["sim-tx2 pytorch (fp32, cuda:0)"]
    with_more = compare(results).rows[0].cells["sim-tx2 pytorch (fp32, cuda:0)"]
    assert fp32.median_ci_ms == with_more.median_ci_ms


def test_failed_results_are_listed_not_compared():
    failed = caffe_result("vgg16", 1.0, result_id=2).fail("out of memory at batch 8")
    comparison = compare([caffe_result("alexnet", 12.9, result_id=1), failed])
    assert [(r.model, r.batch) for r in comparison.rows] == [("alexnet", 1)]
    assert "not compared: result 2 (sim-tx2 caffe vgg16 batch 1) failed: out of memory at batch 8" in comparison.notes()
    with pytest.raises(ValueError, match="no successful results"):
        compare([failed])


def test_exports_carry_every_cell_with_its_labels():
    comparison = compare(lab_sweep())
    doc = json.loads(comparison.export("json"))
    assert doc["baseline"] == "sim-tx2 caffe" and len(doc["rows"]) == 4
    assert "ratio of medians" in doc["method"]["interval"] and doc["method"]["resamples"] == 2000
    cell = doc["rows"][0]["cells"][2]
    assert cell["statistic"] == "median" and cell["span"] == "compute" and cell["samples"] == 200
    assert cell["median_ci_ms"][0] < cell["latency_ms"] < cell["median_ci_ms"][1]
    rows = list(csv.DictReader(io.StringIO(comparison.export("csv"))))
    assert len(rows) == 12 and {r["statistic"] for r in rows} == {"mean", "median"}
    md = comparison.export("md")
    assert md.startswith("| model | batch | sim-tx2 caffe (baseline) | sim-tx2 pytorch (fp32, cuda:0) |")
    assert "12.9 ms mean, caffe_forward<br>baseline" in md
    assert "- Cell: the latest result's headline latency in ms" in md
    assert percentile_interval([1.0, 2.0, 3.0], 0.5) == (1.5, 2.5)


# --- the command ---------------------------------------------------------------------------------------

def cli(*args, db):
    env = {**os.environ, "EDGEPROF_DB": str(db)}
    return subprocess.run([sys.executable, "-m", "edgeprof.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def stored(tmp_path):
    db = tmp_path / "results.sqlite"
    with ResultStore(db) as store:
        for result in lab_sweep():
            result.id = None
            store.add(result)
        store.add(pytorch_result("alexnet", 9.0, run_id="r2", seed=99))
    return db


def test_compare_command_formats_and_filters(stored):
    proc = cli("compare", "--run", "r1", "--baseline", "fp32", "--format", "json", db=stored)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["baseline"] == "sim-tx2 pytorch (fp32, cuda:0)" and len(doc["rows"]) == 4
    proc = cli("compare", "--model", "alexnet", "--backend", "pytorch", db=stored)
    assert proc.returncode == 0, proc.stderr
    # r2's alexnet batch 1 is newer than r1's: it is used, r1's is named.
    assert "latest result (13) is used; older 2 not pooled" in proc.stdout
    assert "compared with sim-tx2 pytorch (fp32, cuda:0)" in proc.stdout
    assert "alexnet batch 8: sim-tx2 pytorch (fp16+channels_last, cuda:0) ran 1.46 times faster" in proc.stdout
    md = cli("compare", "--run", "r1", "--format", "md", db=stored).stdout
    assert md.startswith("| model | batch |")


def test_compare_command_bad_input(stored, tmp_path):
    proc = cli("compare", "--baseline", "pytorch", db=stored)
    assert proc.returncode == 2 and "matches several columns" in proc.stderr
    proc = cli("compare", "--run", "nope", db=stored)
    assert proc.returncode == 2 and "no stored results match" in proc.stderr


@pytest.mark.lab
def test_compare_results_of_the_lab(edgeprof_cli):
    """Results the real lab measured on sim-tx2 (Debian's Caffe, torch 1.7 on its CPU) compare: Caffe, measured
    first, is the baseline; PyTorch gets its ratio and, against a mean, no interval."""
    # 6 iterations: the fewest whose median has a distribution-free interval (fewer leave it null).
    edgeprof_cli("measure", "--device", "sim-tx2", "--backend", "caffe,pytorch", "alexnet", "--iterations", "6",
                 "--clocks", "leave", "--wait", "600", "--json", timeout=900, check=0)
    doc = json.loads(edgeprof_cli("compare", "--format", "json", check=0).stdout)
    assert doc["baseline"] == "sim-tx2 caffe"
    [row] = doc["rows"]
    caffe, torch = row["cells"]
    assert caffe["statistic"] == "mean" and caffe["span"] == "caffe_forward"
    assert torch["column"].startswith("sim-tx2 pytorch (fp32") and torch["statistic"] == "median"
    assert torch["ratio"]["value"] == pytest.approx(torch["latency_ms"] / caffe["latency_ms"])
    assert torch["ratio"]["ci"] is None and torch["ratio"]["note"] == "n/a: caffe reports only a mean"


def test_a_repeat_summary_is_the_cell_its_runs_are_not_shown_and_its_ratio_uses_interval_ends():
    from edgeprof.result import Result

    def result(backend, median, interval, rid, repeat=None):
        r = Result(device="d", model="m", backend=backend, batch=1, run_id="r", span="compute", repeat=repeat)
        r.id = rid
        r.latency_ms["median"] = median
        r.latency_ci95_ms = {"median": list(interval)}
        return r

    runs = [result("pytorch", m, (m - 0.1, m + 0.1), i + 1, {"group": "g", "index": i + 1, "of": 3})
            for i, m in enumerate((10.0, 11.0, 10.5))]
    summary = result("pytorch", 10.5, (9.9, 11.1), 4, {"group": "g", "summary": True, "runs": 3})
    base = result("caffe", 20.0, (19.0, 21.0), 5, {"group": "h", "summary": True, "runs": 3})
    comparison = compare(runs + [summary, base], baseline="caffe")
    assert [c.label for c in comparison.columns] == ["d pytorch", "d caffe"]
    [row] = comparison.rows
    cell, ratio = row.cells["d pytorch"], row.ratios["d pytorch"]
    assert cell.result is summary and cell.median_ci_ms == (9.9, 11.1) and cell.repeat_runs == 3
    assert ratio.value == 10.5 / 20.0 and ratio.ci == (9.9 / 21.0, 11.1 / 19.0) and ratio.method == "interval ends"
    assert comparison.failed == []
    assert any("the summary of 3 runs in fresh processes (result 4)" in note for note in comparison.notes())


def timed_with(result, **effective):
    """A result that stored the timing settings it ran with, as the TensorRT backend stores them."""
    result.settings["effective"] = {"cuda_graph": False, "spin_wait": True, "data_transfers": True, **effective}
    return result


def test_results_timed_with_other_settings_are_a_span_mismatch():
    old = timed_with(pytorch_result("alexnet", 10.0, device="tx2-trt5", seed=1, result_id=1), data_transfers=False)
    new = timed_with(pytorch_result("alexnet", 9.0, device="tx2-trt8", seed=2, result_id=2))
    notes = compare([old, new]).notes()
    assert [n for n in notes if n.startswith("span_mismatch")] == [
        "span_mismatch: alexnet batch 1, tx2-trt8 pytorch (fp32, cuda:0): timed with data_transfers True, the "
        "baseline False: the ratio compares different spans, not like for like"]


def test_the_same_settings_or_none_stored_are_no_span_mismatch():
    same = [timed_with(pytorch_result("alexnet", 10.0 - i, device=f"d{i}", seed=i, result_id=i)) for i in (1, 2)]
    unknown = [pytorch_result("alexnet", 8.0, device="d3", seed=3, result_id=3)]
    assert not [n for n in compare(same + unknown).notes() if n.startswith("span_mismatch")]
