"""`edgeprof compare --metric`: throughput, memory and energy beside latency as column groups with factor
columns, one kind of memory per row, train-step rows beside inference, --jobs aggregates as cells."""
import csv
import io
import json

import pytest

from edgeprof.reporting.compare import compare
from edgeprof.reporting.metrics import FIGURES, MIB, row_figures

from .samples import caffe_result, pytorch_result

MEMORY = FIGURES["memory"]


def with_memory(result, **figures):
    result.figures["memory"] = {"allocator_peak_bytes": None, "allocator_reserved_bytes": None,
                                "process_rss_peak_bytes": None, "nvml_process_bytes": None,
                                "nvml_device_used_bytes": None, **figures}
    return result


def test_a_row_compares_the_first_memory_figure_every_cell_has():
    base = with_memory(pytorch_result("m", 10.0), allocator_peak_bytes=700 * MIB, process_rss_peak_bytes=2000 * MIB)
    other = with_memory(pytorch_result("m", 10.0, variant="fp16"), process_rss_peak_bytes=1500 * MIB)
    figures = row_figures(MEMORY, {"a": base, "b": other}, "a")
    assert (figures["a"].what, figures["a"].value, figures["a"].note) == ("process peak RSS", 2000 * MIB, "baseline")
    assert figures["b"].factor == 0.75 and figures["b"].note is None
    # Without the ORT-like cell, the allocator's peak (the more specific figure) is the row's.
    assert row_figures(MEMORY, {"a": base}, "a")["a"].what == "allocator peak"


def test_different_kinds_of_memory_get_no_factor():
    base = with_memory(pytorch_result("m", 10.0), allocator_peak_bytes=700 * MIB)
    other = with_memory(pytorch_result("m", 10.0), nvml_process_bytes=900 * MIB)
    none = pytorch_result("m", 10.0)
    figures = row_figures(MEMORY, {"a": base, "b": other, "c": none}, "a")
    assert figures["b"].factor is None and "c" not in figures
    assert figures["b"].note == "n/a: nvidia-smi, this process vs the baseline's allocator peak"
    assert row_figures(MEMORY, {"a": none, "b": other}, "a")["b"].note == "n/a: no memory figure for the baseline"


def sweep():
    """Seed 001's shape: two toolkits, batches 1 and 2, inference and a training step."""
    results = []
    for batch in (1, 2):
        results.append(with_memory(pytorch_result("resnet50", 7.0 * batch, batch=batch, seed=batch,
                                                  result_id=len(results) + 1),
                                   process_rss_peak_bytes=(700 + 20 * batch) * MIB))
        ort = with_memory(pytorch_result("resnet50", 10.0 * batch, batch=batch, seed=10 + batch,
                                         result_id=len(results) + 1), process_rss_peak_bytes=(600 + 60 * batch) * MIB)
        ort.backend = "onnxruntime"
        ort.figures.pop("variant")
        results.append(ort)
    train = with_memory(pytorch_result("resnet50", 40.0, seed=7, result_id=len(results) + 1),
                        process_rss_peak_bytes=990 * MIB)
    train.settings["mode"] = "train-step"
    train.figures["variant"] = "fp32+train_step"      # as the PyTorch runner labels it
    return results + [train]


def test_memory_and_time_groups_with_factor_columns():
    comparison = compare(sweep(), metrics=("latency", "memory"))
    assert [(row.model, row.batch, row.mode) for row in comparison.rows] == [
        ("resnet50", 1, "inference"), ("resnet50", 2, "inference"), ("resnet50", 1, "train-step")]
    headings = [heading for heading, _, _ in comparison.layout(" | ")]
    torch, ort = "sim-tx2 pytorch (fp32, cuda:0)", "sim-tx2 onnxruntime (cuda:0)"
    assert headings == ["model", "batch", "mode", f"latency ms | {torch} (baseline)", f"latency ms | {ort}",
                        f"latency factor | {ort}", f"memory MiB | {torch} (baseline)", f"memory MiB | {ort}",
                        f"memory factor | {ort}"]
    texts = [[text(row) for _, _, text in comparison.layout(" ")] for row in comparison.rows]
    assert texts[1][6] == "740" and texts[1][7] == "720"
    assert "memory MiB: every figure is the process peak RSS" in comparison.notes()
    assert texts[1][8] == "x0.973"
    assert texts[0][5].startswith("x1.4") and "[" in texts[0][5]    # the latency ratio keeps its interval
    assert texts[2][2] == "train-step" and texts[2][4] == "-" and texts[2][8] == "-"
    md = comparison.export("md")
    assert md.startswith("| model | batch | mode | latency ms sim-tx2 pytorch (fp32, cuda:0) (baseline) |")
    assert "memory MiB: the first of allocator peak" in comparison.legend()
    assert comparison.sentences()[0].startswith("resnet50 batch 1: sim-tx2 pytorch (fp32, cuda:0) ran 1.4")


def test_exports_carry_every_metric_whatever_is_shown():
    comparison = compare(sweep())
    assert comparison.metrics == ("latency",)
    doc = json.loads(comparison.export("json"))
    cell = doc["rows"][1]["cells"][1]
    assert cell["figures"]["memory"] == {"value": 720 * MIB, "unit": "bytes", "what": "process peak RSS",
                                         "factor": 720 / 740, "factor_note": None}
    assert cell["figures"]["throughput"]["what"] == "batch x iterations / timed window"
    assert cell["figures"]["energy"] is None and doc["rows"][2]["mode"] == "train-step"
    rows = list(csv.DictReader(io.StringIO(comparison.export("csv"))))
    assert rows[3]["memory_factor"] == str(720 / 740) and rows[3]["energy_value"] == ""
    assert rows[-1]["mode"] == "train-step"


def test_energy_and_throughput_from_telemetry_and_caffe_say_what_they_are():
    caffe = caffe_result("alexnet", 20.0, result_id=1, telemetry=True)
    torch = pytorch_result("alexnet", 10.0, result_id=2, telemetry=True)
    comparison = compare([caffe, torch], metrics=("throughput", "energy"))
    [row] = comparison.rows
    energy, throughput = row.figures["energy"], row.figures["throughput"]
    # Each side's own figure, and different kinds: no factor between a forward+backward window and a forward one.
    assert energy["sim-tx2 caffe"].what == "forward + backward per image"
    assert energy["sim-tx2 pytorch (fp32, cuda:0)"].note.startswith("n/a: board energy per inference vs")
    assert throughput["sim-tx2 caffe"].what == "batch / mean forward pass" and throughput["sim-tx2 caffe"].value == 50.0
    # Kinds that differ within the table: each cell names its own.
    texts = {heading: text(row) for heading, _, text in comparison.layout(" | ")}
    assert texts["img/s | sim-tx2 caffe (baseline)"] == "50\nbatch / mean forward pass"


def test_unknown_metrics_are_refused():
    with pytest.raises(ValueError, match="unknown metric power; use one or more of latency, throughput"):
        compare(sweep(), metrics=("power",))


def test_a_jobs_aggregate_is_the_cell_and_its_jobs_are_not_shown():
    from edgeprof import concurrency
    jobs = [pytorch_result("m", 10.0, seed=i, result_id=i) for i in (1, 2)]
    for r in jobs:
        r.timed_window = {"start_s": 0.0, "end_s": 1.0}
    total = concurrency.aggregate(jobs, concurrency.label(jobs, [None, None]))
    total.id = 3
    single = pytorch_result("m", 9.0, seed=5, result_id=4)
    comparison = compare(jobs + [total, single], metrics=("throughput",))
    assert [c.label for c in comparison.columns] == ["sim-tx2 pytorch (fp32, cuda:0, 2 jobs)",
                                                     "sim-tx2 pytorch (fp32, cuda:0)"]
    [row] = comparison.rows
    assert row.cells["sim-tx2 pytorch (fp32, cuda:0, 2 jobs)"].result is total
    assert row.figures["throughput"]["sim-tx2 pytorch (fp32, cuda:0)"].factor == pytest.approx(
        single.throughput_ips / total.throughput_ips)
    assert any("2 concurrent jobs (result 3): throughput is their sum" in note for note in comparison.notes())


def test_the_report_draws_memory_vs_batch_beside_latency_vs_batch(tmp_path):
    pytest.importorskip("matplotlib")
    from edgeprof.reporting.html import write_report
    plots = write_report(sweep(), tmp_path / "report.html")
    latency = [(p.title, p.caption) for p in plots if p.section == "latency"]
    assert [title for title, _ in latency] == ["resnet50 latency vs batch", "resnet50 memory vs batch"]
    assert "the first every result of the batch has" in latency[1][1]
    # Results without memory figures get no memory plot.
    for r in (results := sweep()):
        r.figures.pop("memory")
    assert [p.title for p in write_report(results, tmp_path / "r2.html") if p.section == "latency"] == [
        "resnet50 latency vs batch"]
