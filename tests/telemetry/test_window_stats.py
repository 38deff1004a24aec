"""The sampler's blocks (edgeprof.onboard.window_stats) stand for their lines: a summary over blocks and edge lines
equals the summary over every line, on real tegrastats lines (tests/parsers/logs/tegrastats/SOURCES.md); a block
that does not read back whole is not used; and with blocks only the window's edges are parsed."""
import json
import math
import random

import pytest

from edgeprof.onboard import tegrastats_line
from edgeprof.onboard.window_stats import Blocks, Stats
from edgeprof.telemetry import summary as summary_module
from edgeprof.telemetry.summary import readings, stats_of, summarize

from .test_summary import PINNED_TX2, T0, lines, start

# Lines of three layouts, each with a board total of rails they print (one rail, or a sum of several). The
# Orin's total is on the R36 lines only: the others have no power figure, and the summary's mean skips them.
TX2 = ("tx2_r32_datadog_agent.txt", "tx2_4gb_r32_sys_rails_zabbix_plugin_stats_test.txt",
       "tx2_r32_findhao_txutils_issue3.txt")
BOARDS = {
    "tx2": ([line for name in TX2 for line in lines(f"tegrastats/{name}")], "VDD_IN"),
    "agx_xavier": (lines("tegrastats/agx_xavier_r32_datadog_agent.txt"), "GPU+CPU+SOC+CV+VDDRQ+SYS5V"),
    "orin": (lines("tegrastats/orin_16gb_mw_units_datadog_agent.txt")
             + lines("tegrastats/agx_orin_r36_4_4_tegra_exporter.txt"), "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0"),
}
TRIPS = {"BCPU-therm": [["passive", 40.0]], "GPU-therm": [["passive", 36.0]], "cpu-thermal": [["hot", 49.0]]}


def records_of(line_list: list[str], count: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    return [{"kind": "tegrastats", "t": T0 + 0.1 * (i + 1), "line": rnd.choice(line_list)} for i in range(count)]


def with_blocks(records: list[dict], size: int, power_total: str) -> list[dict]:
    """The records with the block records the board's sampler writes after them (window_stats.Blocks; the
    sampler's own are checked in tests/telemetry/test_board_sampler.py)."""
    out, blocks = [], Blocks(size, power_total)
    for record in records:
        out.append(record)
        block = blocks.add(record["line"])
        if block:
            out.append({"kind": "block", "t": record["t"], **block})
    return out + [{"kind": "block", "t": records[-1]["t"], **blocks.end()}] if blocks.lines else out


def summary(records, window, power_total, trips=None):
    return summarize([start(trip_points_c=trips or {})] + records, window, inferences=100, power_total=power_total,
                     state=PINNED_TX2, interval_ms=100, errors=[])


def assert_same(got, expected):
    """Equal, but for the board's power sums, which blocks add up in another order (the last bits may differ)."""
    got_summary, got_flags = got
    summary_expected, flags_expected = expected
    assert got_flags == flags_expected
    for key in ("power_total", "energy"):
        for name, value in summary_expected[key].items():
            assert got_summary[key][name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value)
    assert ({k: v for k, v in got_summary.items() if k not in ("power_total", "energy")}
            == {k: v for k, v in summary_expected.items() if k not in ("power_total", "energy")})


@pytest.mark.parametrize("board", sorted(BOARDS))
@pytest.mark.parametrize("size", [1, 3, 10])
@pytest.mark.parametrize("trips", [None, TRIPS], ids=["no trip points", "trip points"])
def test_blocks_give_the_summary_of_every_line(board, size, trips):
    line_list, power_total = BOARDS[board]
    records = records_of(line_list, 95, seed=size)
    for start_s, end_s in ((0.05, 9.6), (0.25, 9.25), (1.0, 1.9), (3.33, 3.41), (0.0, 0.05)):
        window = {"start_s": T0 + start_s, "end_s": T0 + end_s}
        assert_same(summary(with_blocks(records, size, power_total), window, power_total, trips),
                    summary(records, window, power_total, trips))


def test_a_block_near_a_trip_point_is_read_line_by_line():
    """Its lines are what the thermal flag names, one reading each: TX2's GPU at 35-38 C, trip 36 C."""
    line_list, power_total = BOARDS["tx2"]
    records = records_of(line_list, 60, seed=7)
    window = {"start_s": T0, "end_s": T0 + 10}
    expected = summary(records, window, power_total, TRIPS)
    assert "thermal_throttle" in [f["code"] for f in expected[1]]
    assert_same(summary(with_blocks(records, 10, power_total), window, power_total, TRIPS), expected)


def corrupt(block: dict, how: str) -> dict:
    stats = json.loads(json.dumps(block["stats"]))
    if how == "lines":
        return dict(block, lines=block["lines"] + 1)
    if how == "missing":
        del stats["rails"]
    elif how == "extra":
        stats["more"] = 1
    elif how == "bool":
        stats["n"] = True
    elif how == "nan":
        stats["power"][0] = math.nan
    elif how == "huge":
        stats["rails"]["VDD_IN"][0] = 10 ** 400
    elif how == "text":
        stats["gpu_freq"] = ["624", "624"]
    elif how == "zero count":
        stats["rails"]["VDD_IN"][1] = 0
    elif how == "upside down":
        stats["gpu_freq"] = [stats["gpu_freq"][1] + 1, stats["gpu_freq"][0]]
    elif how == "cpu number":
        stats["cpu_freq"] = {"x": [1, 2]}
    elif how == "not a dict":
        stats = [stats]
    return dict(block, stats=stats)


@pytest.mark.parametrize("how", ["lines", "missing", "extra", "bool", "nan", "huge", "text", "zero count",
                                 "upside down", "cpu number", "not a dict"])
def test_a_block_that_does_not_read_back_is_not_used(how):
    line_list, power_total = BOARDS["tx2"]
    records = records_of(line_list, 40, seed=3)
    window = {"start_s": T0, "end_s": T0 + 10}
    blocks = with_blocks(records, 10, power_total)
    tampered = [corrupt(r, how) if r["kind"] == "block" and i < 30 else r for i, r in enumerate(blocks)]
    assert_same(summary(tampered, window, power_total), summary(records, window, power_total))


def test_with_blocks_only_the_edges_are_parsed(monkeypatch):
    line_list, power_total = BOARDS["tx2"]
    records = with_blocks(records_of(line_list, 300, seed=1), 10, power_total)   # a line every 0.1 s from 0.1 s
    parsed = []
    real = tegrastats_line.fields
    monkeypatch.setattr(summary_module.tegrastats_line, "fields", lambda line: parsed.append(line) or real(line))
    got = summary(records, {"start_s": T0 + 1.55, "end_s": T0 + 24.55}, power_total)
    assert got[0]["samples_in_window"] == 230
    # The blocks of 1.1-2.0 s and 24.1-25.0 s cross the window's edges: their lines from one interval (the
    # margin) before the window to one after it are parsed, 1.5-2.0 s and 24.1-24.6 s.
    assert len(parsed) == 12


def test_stats_read_back_and_merge_like_their_samples():
    line_list, power_total = BOARDS["agx_xavier"]
    samples = readings(records_of(line_list, 50, seed=2), power_total)
    whole = stats_of(samples)
    merged = Stats()
    for first in range(0, 50, 7):
        merged.merge(Stats.from_record(json.loads(json.dumps(stats_of(samples[first:first + 7]).to_record()))))
    expected = whole.to_record()
    got = merged.to_record()
    assert got.pop("power")[0] == pytest.approx(expected.pop("power")[0], rel=1e-12)
    assert got == expected
