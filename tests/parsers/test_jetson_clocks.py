"""edgeprof.parsers.jetson_clocks against real ``jetson_clocks --show`` output (logs/jetson_clocks/SOURCES.md)."""

from pathlib import Path

import pytest

from edgeprof.parsers.jetson_clocks import ClocksReport, parse

LOGS = Path(__file__).parent / "logs" / "jetson_clocks"

REPORT_KEYS = {"power_mode", "gpu", "emc", "cpus"}
RANGE_KEYS = {"min_hz", "max_hz", "cur_hz"}
CPU_KEYS = {"name", "online", "min_hz", "max_hz", "cur_hz"}


def cpu(name, online, min_khz, max_khz, cur_khz):
    """A CPU as printed (kHz) -> as returned (Hz)."""
    return {"name": name, "online": online, "min_hz": min_khz * 1000, "max_hz": max_khz * 1000, "cur_hz": cur_khz * 1000}


def hz(min_hz, max_hz, cur_hz):
    return {"min_hz": min_hz, "max_hz": max_hz, "cur_hz": cur_hz}


EXPECTED = {
    "nano_jp42_jfey_smallthings.txt": {
        "power_mode": "MAXN",
        "gpu": hz(76800000, 921600000, 153600000),
        "emc": hz(204000000, 1600000000, 1600000000),
        "cpus": [cpu("cpu%d" % n, True, 102000, 1428000, 1428000) for n in range(4)],
    },
    "agx_orin_jp51_catid_blog.txt": {
        "power_mode": "MAXN",
        "gpu": hz(306000000, 1300500000, 306000000),
        "emc": hz(204000000, 3199000000, 2133000000),
        "cpus": [cpu(name, True, 729600, 2201600, cur) for name, cur in [
            ("cpu0", 2201600), ("cpu1", 2201600), ("cpu10", 1113600), ("cpu11", 1113600), ("cpu2", 2201600),
            ("cpu3", 1190400), ("cpu4", 2201600), ("cpu5", 2201600), ("cpu6", 2188800), ("cpu7", 2112000),
            ("cpu8", 2201600), ("cpu9", 1190400)]],
    },
    "xavier_nx_jp451_partial_jetson_stats_issue328.txt": {
        "power_mode": None,
        "gpu": None,
        "emc": None,
        "cpus": [cpu("cpu%d" % n, True, 1190400, 1420800, 1190400) for n in range(4)],
    },
    "orin_jp50_predp_partial_jetson_stats_issue381.txt": {
        "power_mode": None,
        "gpu": None,
        "emc": None,
        "cpus": [cpu(name, True, 115200, 2201600, cur) for name, cur in [
            ("cpu0", 2112000), ("cpu1", 2201600), ("cpu10", 2201600), ("cpu11", 1190400), ("cpu2", 2112000),
            ("cpu3", 2201600), ("cpu4", 1344000), ("cpu5", 1344000), ("cpu6", 1804800)]],
    },
    "orin_nano_super_r39_2_1_unattributed_report.txt": {
        "power_mode": "25W",
        "gpu": hz(306000000, 918000000, 306000000),
        "emc": hz(204000000, 3199000000, 665600000),
        # No "Online=" on R39: online comes from "Online CPUs: 0-5, Offline CPUs: ".
        "cpus": [cpu("cpu%d" % n, True, 729600, 1344000, cur)
                 for n, cur in enumerate([960000, 960000, 1344000, 1344000, 1344000, 1267200])],
    },
}


def test_every_fixture_has_an_expectation():
    assert {path.name for path in LOGS.glob("*.txt")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_exact(name):
    report = parse((LOGS / name).read_text())
    assert isinstance(report, ClocksReport)
    result = report.to_dict()
    assert set(result) == REPORT_KEYS
    for part in ("gpu", "emc"):
        assert result[part] is None or set(result[part]) == RANGE_KEYS
    assert all(set(entry) == CPU_KEYS for entry in result["cpus"])
    assert result == EXPECTED[name]


def test_cpu_figures_are_converted_from_khz():
    report = parse((LOGS / "nano_jp42_jfey_smallthings.txt").read_text())
    # "MinFreq=102000" in the file is 102 MHz: 102000 kHz.
    assert report.cpus[0].min_hz == 102_000_000


def test_online_flags_and_lists():
    text = (
        "Online CPUs: 0,3-5\n"
        "cpu1: Online=0 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2 IdleStates: C1=1\n"
        "cpu7:  Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2 IdleStates: WFI=1\n"
    )
    report = parse(text)
    # An explicit Online= wins; a CPU in neither list is unknown.
    assert [c.online for c in report.cpus] == [False, None]


def test_empty_output_is_all_none():
    assert parse("").to_dict() == {"power_mode": None, "gpu": None, "emc": None, "cpus": None}
