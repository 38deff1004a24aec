"""edgeprof.parsers.jetson_clocks against real ``jetson_clocks --show`` output (logs/jetson_clocks/SOURCES.md)."""

import dataclasses
from pathlib import Path

import pytest

from edgeprof.parsers.jetson_clocks import ClocksReport, invocations, parse

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
    # L4T R28.1 jetson_clocks.sh: "Gonvernor=", no Online= per CPU (the list says 0-3), indented by the copy.
    "tx1_r28_1_jetson_clocks_sh_indented_prompt_hordiales_scripts.txt": {
        "power_mode": None,
        "gpu": hz(998400000, 998400000, 998400000),
        "emc": hz(12750000, 1600000000, 1600000000),
        "cpus": [cpu("cpu%d" % n, True, 1734000, 1734000, 1734000) for n in range(4)],
    },
    # Pastes of "--show", "jetson_clocks", "--show" again: the second (after) output is the record.
    "nano_jp4_before_after_prompts_markdown_jetson_nano_notes.txt": {
        "power_mode": "MAXN",
        "gpu": hz(921600000, 921600000, 921600000),
        "emc": hz(204000000, 1600000000, 1600000000),
        "cpus": [cpu("cpu%d" % n, True, 1479000, 1479000, 1479000) for n in range(4)],
    },
    "agx_orin_jp5_30w_before_after_comment_lines_finn_notes.txt": {
        "power_mode": "MODE_30W",
        "gpu": hz(612000000, 612000000, 612000000),
        "emc": hz(204000000, 3199000000, 3199000000),
        "cpus": [cpu("cpu%d" % n, True, 1728000, 1728000, 1728000) for n in range(8)]
        + [cpu("cpu%d" % n, False, 729600, 2201600, 729600) for n in range(8, 12)],
    },
    # Each CPU line wrapped before "IdleStates" (an ideographic space starts the continuation).
    "nano_5w_wrapped_idle_states_review_book.txt": {
        "power_mode": "5W",
        "gpu": hz(614400000, 614400000, 614400000),
        "emc": hz(204000000, 1600000000, 1600000000),
        "cpus": [cpu("cpu%d" % n, n < 2, 921600, 921600, 921600) for n in range(4)],
    },
    # The poster's "# ..." notes: a line of its own, and after the mode name.
    "nano_annotated_comments_prompt_envg_notes.txt": {
        "power_mode": "MAXN",
        "gpu": hz(921600000, 921600000, 921600000),
        "emc": hz(204000000, 1600000000, 1600000000),
        "cpus": [cpu("cpu%d" % n, True, 1479000, 1479000, 1479000) for n in range(4)],
    },
    # Added for issue 16's "8 new real samples" (logs/jetson_clocks/SOURCES.md, last table).
    # Canonical's snap: no "NV Power Mode" line (the snap's confinement), "Failed to retrieve unit state" lines.
    "orin_nano_8gb_15w_snap_failed_unit_lines_canonical_tegra_snap_samples.txt": {
        "power_mode": None,
        "gpu": hz(306000000, 624750000, 306000000),
        "emc": hz(204000000, 2133000000, 665600000),
        "cpus": [cpu("cpu%d" % n, True, 729600, 1510400, cur)
                 for n, cur in enumerate([960000, 729600, 729600, 960000, 729600, 729600])],
    },
    # Thor, L4T R38.2: the GPU line is "gpu-gpc-0 MinFreq=...", beside "gpu-nvd-0"; 14 CPUs without Online=.
    "agx_thor_jp7_gpu_gpc_nvd_lines_no_online_wang_junjian_blog.txt": {
        "power_mode": "MAXN",
        "gpu": hz(1575000000, 1575000000, 1575000000),
        "emc": hz(665600000, 4266000000, 4266000000),
        "cpus": [cpu("cpu%d" % n, True, 2601000, 2601000, 2601000) for n in range(14)],
    },
    # "exit=0" printed by the report's script between the command and the output.
    "orin_nano_super_r36_4_3_exit_status_line_preflight_report.txt": {
        "power_mode": "25W",
        "gpu": hz(306000000, 918000000, 306000000),
        "emc": hz(204000000, 3199000000, 2133000000),
        "cpus": [cpu("cpu%d" % n, True, 729600, 1344000, cur)
                 for n, cur in enumerate([729600, 729600, 1190400, 729600, 1190400, 1190400])],
    },
    # The poster elided cpu1-cpu5 ("...   (all 6 cores identical)"): one CPU is what the copy holds.
    "orin_nano_super_r36_5_2_elided_cores_learnjetson_runbook.txt": {
        "power_mode": "MAXN_SUPER",
        "gpu": hz(1020000000, 1020000000, 1020000000),
        "emc": hz(204000000, 3199000000, 3199000000),
        "cpus": [cpu("cpu0", True, 1728000, 1728000, 1728000)],
    },
}

FORMATS = {
    "tx1_r28_1_jetson_clocks_sh_indented_prompt_hordiales_scripts.txt": "L4T R28 and older",
    "orin_nano_super_r39_2_1_unattributed_report.txt": "JetPack 7: L4T R38 and later",
    "agx_thor_jp7_gpu_gpc_nvd_lines_no_online_wang_junjian_blog.txt": "JetPack 7: L4T R38 and later",
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
    assert result == EXPECTED[name] == dataclasses.asdict(report)
    # Copies: the result's dict may be changed without changing the report.
    for part in [*result["cpus"], result["gpu"], result["emc"]]:
        if part:
            part["cur_hz"] = -1
    assert report.to_dict() == EXPECTED[name]


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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_output_says_which_script_printed_it(name):
    [form] = {invocation.format for invocation in invocations((LOGS / name).read_text())}
    assert FORMATS.get(name, "L4T R32 to R36") in form


def test_before_and_after_are_two_invocations_with_their_commands():
    found = list(invocations((LOGS / "agx_orin_jp5_30w_before_after_comment_lines_finn_notes.txt").read_text()))
    # The plain "sudo jetson_clocks" between them printed nothing: no invocation of its own.
    assert [(i.number, i.first_line, i.last_line, i.command) for i in found] == [
        (1, 2, 27, "sudo jetson_clocks --show"),
        (2, 30, 55, "hanna@ceg-391:~/git/finn-transformers$ sudo jetson_clocks --show")]
    before, after = (i.record for i in found)
    assert (before.gpu.cur_hz, after.gpu.cur_hz) == (306_000_000, 612_000_000)
    assert len(before.cpus) == len(after.cpus) == 12  # not 24: the two outputs are not merged


def test_two_outputs_without_prompts_are_still_two():
    text = "\n".join(line for line in (LOGS / "nano_jp4_before_after_prompts_markdown_jetson_nano_notes.txt")
                     .read_text().splitlines() if "$" not in line and "`" not in line)
    before, after = invocations(text)
    assert (before.record.gpu.cur_hz, after.record.gpu.cur_hz) == (76_800_000, 921_600_000)


def test_snap_and_script_report_commands_go_with_their_output():
    [snap] = invocations((LOGS / "orin_nano_8gb_15w_snap_failed_unit_lines_canonical_tegra_snap_samples.txt").read_text())
    assert (snap.command, snap.first_line) == ("$ sudo snap run nvpmodel.jetson-clocks-show", 1)
    [report] = invocations((LOGS / "orin_nano_super_r36_4_3_exit_status_line_preflight_report.txt").read_text())
    assert (report.command, report.first_line, report.last_line) == ("$ sudo -n jetson_clocks --show", 1, 15)


def test_thor_gpc_line_is_the_gpu_and_a_second_gpc_is_no_second_output():
    text = (LOGS / "agx_thor_jp7_gpu_gpc_nvd_lines_no_online_wang_junjian_blog.txt").read_text()
    # gpu-nvd-0 (1692 MHz) is not the graphics clock.
    assert parse(text).gpu.max_hz == 1_575_000_000
    two_gpcs = text.replace("gpu-nvd-0", "gpu-gpc-1")
    assert len(list(invocations(two_gpcs))) == 1 and parse(two_gpcs).gpu.max_hz == 1_575_000_000
