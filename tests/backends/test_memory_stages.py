"""The cold-start memory each board runner reports (harness.stage_memory): after the load and after the first
inference, in the process as the board runs it; and how compare turns them, the load and the first inference
into columns (reporting.metrics)."""
import pytest

pytest.importorskip("onnxruntime")

from edgeprof.reporting.compare import compare  # noqa: E402
from edgeprof.result import Result  # noqa: E402

from .test_onnxruntime_runner import PYTORCH_RUNNER, QUICK, RUNNER, run_runner, small, spec_file  # noqa: E402,F401


def test_both_runners_report_memory_after_load_and_after_the_first_inference(small, tmp_path):  # noqa: F811
    ort, _ = run_runner(RUNNER, "--model", small[1].path, *QUICK)
    torch, _ = run_runner(PYTORCH_RUNNER, "--spec", spec_file(small[0], tmp_path), *QUICK)
    for out in (ort, torch):
        stages = out["memory_stages"]
        assert set(stages) == {"loaded", "first_inference"}
        loaded, first = stages["loaded"], stages["first_inference"]
        # A Python process with its framework imported holds tens of MB; the peak never falls.
        assert loaded["rss_bytes"] > 10e6 and loaded["rss_peak_bytes"] >= loaded["rss_bytes"]
        assert first["rss_peak_bytes"] >= loaded["rss_peak_bytes"]
        assert out["memory"]["process_rss_peak_bytes"] >= first["rss_peak_bytes"]
        assert loaded["allocator_bytes"] is None       # on the CPU neither framework has allocator figures
        assert out["load_s"] > 0 and out["first_inference_ms"] > 0


def result(backend, load_s, first_ms, rss_loaded, rss_first, allocator=None, rid=1):
    r = Result(device="d", model="m", backend=backend, batch=1, run_id="r", span="compute", id=rid)
    r.latency_ms["median"] = 10.0
    r.figures = {"load_s": load_s, "first_inference_ms": first_ms, "memory_stages": {
        "loaded": {"rss_bytes": rss_loaded, "rss_peak_bytes": rss_loaded, "allocator_bytes": allocator,
                   "allocator_peak_bytes": allocator},
        "first_inference": {"rss_bytes": rss_first, "rss_peak_bytes": rss_first, "allocator_bytes": allocator,
                            "allocator_peak_bytes": allocator}}}
    return r


def test_cold_start_columns_with_factors():
    torch = result("pytorch", 4.1, 300.0, 400 * 2**20, 500 * 2**20, allocator=160 * 2**20)
    ort = result("onnxruntime", 1.7, 60.0, 300 * 2**20, 450 * 2**20, rid=2)
    caffe = result("caffe", None, None, None, None, rid=3)
    caffe.figures = {}
    comparison = compare([torch, ort, caffe], metrics=("load", "first", "load-memory"))
    [row] = comparison.rows
    load, first, memory = (row.figures[name] for name in ("load", "first", "load-memory"))
    assert load["d onnxruntime"].factor == pytest.approx(1.7 / 4.1) and "d caffe" not in load
    assert first["d onnxruntime"].factor == pytest.approx(0.2)
    # The allocator figure only torch has: the row falls back to what both have, the resident set.
    assert memory["d pytorch"].what == "process RSS" and memory["d onnxruntime"].factor == 0.75
    texts = {heading: text(row) for heading, _, text in comparison.layout(" | ")}
    # One kind in the whole table: said once in the notes, not in every cell.
    assert texts["load s | d pytorch (baseline)"] == "4.1" and texts["MiB after load | d onnxruntime"] == "300"
    assert texts["first factor | d onnxruntime"] == "x0.200" and texts["load factor | d caffe"] == "-"
    assert "load s: every figure is the load in a fresh process" in comparison.notes()
    # Without latency among the metrics, no latency legend and no "ran N times faster" sentences under it.
    lines = comparison.lines()
    assert lines[0].startswith("!: validity flags") and comparison.sentences()
    assert not set(comparison.sentences()) & set(lines)
    assert "load s: the runner's load in its fresh process" in comparison.legend()


def test_build_is_a_column_of_its_own_kind():
    built = result("tensorrt", 0.2, 3.0, None, None, rid=1)
    built.figures["build_s"] = 120.0
    cached = result("tensorrt", 0.2, 3.0, None, None, rid=2)
    cached.figures.update(build_s=None, engine_build={"build_s": 90.0, "built_at": "2026-12-06T10:00:00Z"})
    cached.device = "e"
    compiled = result("pytorch", 4.0, 300.0, None, None, rid=3)
    compiled.figures["compile_s"] = 30.0
    comparison = compare([built, cached, compiled], metrics=("build",))
    [row] = comparison.rows
    build = row.figures["build"]
    assert build["d tensorrt"].what == "TensorRT engine build, this run" and build["d tensorrt"].value == 120.0
    assert build["e tensorrt"].what == "TensorRT engine build, cached (when it was built)"
    # Builds of different kinds get no factor: a TensorRT engine build is not a torch.compile.
    assert build["d pytorch"].factor is None and build["e tensorrt"].factor is None
    assert build["d pytorch"].note == "n/a: torch.compile, first call vs the baseline's TensorRT engine build, this run"
