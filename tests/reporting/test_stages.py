"""reporting/stages.py: an end-to-end result's stages as rows (shares of the total, the stages inside the total
with and without prefetch), the table and the summary line, with board text kept as data."""
import io

import pytest
from rich.console import Console

from edgeprof.reporting.stages import describe_stages, end_to_end, stage_rows, stages_sum_ms, stages_table
from edgeprof.result import Result


def _stats(median):
    return {"median": median, "p90": median * 1.2, "p99": median * 1.5, "mean": median, "count": 10}


def _result(prefetch=0, decoder="pillow"):
    stages = ["decode", "resize", "normalize", "copy", "forward", "post"]
    medians = {"decode": 4.0, "resize": 1.0, "normalize": 2.0, "copy": 1.0, "forward": 30.0, "post": 2.0}
    if prefetch:
        stages.insert(2, "queue_wait")
        medians["queue_wait"] = 0.5
    in_total = [s for s in stages if not (prefetch and s in ("decode", "resize"))]
    figures = {"end_to_end": {
        "span": "end-to-end", "stages": stages, "in_total": in_total,
        "stage_ms": {s: _stats(medians[s]) for s in stages}, "total_ms": _stats(40.0 if not prefetch else 35.0),
        "per": "iteration of 1 image(s)", "prefetch": prefetch, "decoder": {"name": decoder, "version": "8.1.2"},
        "normalization": {"source": "torchvision defaults (ImageNet mean and std)"}}}
    return Result("sim-desktop", "alexnet", "pytorch", 1, "run", figures=figures, id=1, iterations=10,
                  throughput_ips=25.0, span="end-to-end")


def test_rows_in_order_with_shares_and_the_total_last():
    rows = stage_rows(_result())
    assert [r.name for r in rows] == ["decode", "resize", "normalize", "copy", "forward", "post", "total"]
    assert rows[4].share == pytest.approx(0.75) and rows[-1].share == 1.0 and all(r.in_total for r in rows)
    assert stages_sum_ms(rows) == 40.0


def test_with_prefetch_decode_and_resize_are_outside_the_total():
    rows = stage_rows(_result(prefetch=4))
    outside = [r.name for r in rows if not r.in_total]
    assert outside == ["decode", "resize"]
    assert stages_sum_ms(rows) == 35.5
    assert "prefetch 4: queue wait median 0.500 ms" in describe_stages(_result(prefetch=4))


def test_summary_line_and_table():
    line = describe_stages(_result())
    assert line.startswith("#1 alexnet pytorch batch 1: total median 40.000 ms, stages' medians sum to 40.000 ms "
                           "(+0.0%)"), line
    assert "25 images/s" in line and "decoded with pillow 8.1.2" in line
    out = io.StringIO()
    Console(file=out, width=200).print(stages_table(_result(prefetch=2)))
    assert "queue_wait" in out.getvalue() and "prefetch thread, outside the total" in out.getvalue()


def test_board_text_is_not_markup():
    out = io.StringIO()
    Console(file=out, width=300).print(describe_stages(_result(decoder="[bold red]x[/]")), highlight=False)
    assert "[bold red]x[/]" in out.getvalue()


def test_a_result_without_stages_or_with_a_bad_shape_has_none():
    plain = Result("local", "alexnet", "pytorch", 1, "run", figures={}, id=2)
    bad = Result("local", "alexnet", "pytorch", 1, "run", figures={"end_to_end": {"stages": "decode"}}, id=3)
    assert end_to_end(plain) is None and end_to_end(bad) is None and stage_rows(bad) == []


def test_a_hostile_board_s_figures_give_dashes_not_a_crash():
    figures = {"end_to_end": {"stages": ["decode", 7], "stage_ms": {"decode": ["x"], "7": {"median": "slow",
                                                                                        "count": "many"}},
                              "total_ms": {"median": 3.0, "count": -1}, "in_total": "decode",
                              "decoder": "pillow", "normalization": None}}
    result = Result("local", "alexnet", "pytorch", 1, "run", figures=figures, id=4)
    rows = stage_rows(result)
    assert [(r.name, r.median_ms, r.count) for r in rows] == [("decode", None, 0), ("7", None, 0), ("total", 3.0, 0)]
    assert "decoded with ?" in describe_stages(result)
