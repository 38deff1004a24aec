"""edgeprof.parsers.nvpmodel against real ``nvpmodel -q`` output (see logs/nvpmodel/SOURCES.md)."""

from pathlib import Path

import pytest

from edgeprof.parsers.nvpmodel import PowerMode, invocations, parse

LOGS = Path(__file__).parent / "logs" / "nvpmodel"

EXPECTED = {
    "tx2_r32_1_verbose_root_mids_w251.txt": ("MAXP_CORE_ARM", 3),
    "nano_r32_nonroot_jetbot_issue49.txt": ("5W", 1),
    "nano_r32_root_jetbot_issue49.txt": ("5W", 1),
    "xavier_fan_mode_no_id_orne_box_issue16.txt": ("MAXN", None),
    "thor_jp7_jetpack_nixos_pr460.txt": ("MAXN", 0),
    "orin_nano_super_r39_2_1_unattributed_report.txt": ("25W", 1),
    "nano_jp4_prompt_query_set_query_jetson_nano_notes.txt": ("MAXN", 0),
    "nano_annotated_comment_prompt_envg_notes.txt": ("MAXN", 0),  # "MAXN # <the poster's note>"
    "xavier_nx_15w_6core_prompts_compound_command_whisper_notes.txt": ("MODE_15W_6CORE", 2),
    "xavier_30w_then_set_mode_reboot_prompt_readme.txt": ("MODE_30W", 2),
    "xavier_jp451_query_set_query_comments_readme.txt": ("MAXN", 0),
    # Added for issue 16's "8 new real samples" (logs/nvpmodel/SOURCES.md, last table).
    "orin_nano_8gb_15w_snap_query_canonical_tegra_snap_samples.txt": ("15W", 0),
    "agx_thor_jp7_120w_default_wang_junjian_blog.txt": ("120W", 1),
    "orin_nano_super_r36_4_3_verbose_exit_status_line_preflight_report.txt": ("25W", 1),
    "orin_nano_4gb_set_mode_errors_no_mode_meta_tegra_pr1268.txt": (None, None),  # "nvpmodel -m" failing
    "agx_xavier_30w_4core_fan_mode_html_pre_prompt_system_notes.txt": ("MODE_30W_4CORE", 5),
}

REPORTS = {  # (first line, last line, mode name) of every report in the paste
    "xavier_nx_15w_6core_prompts_compound_command_whisper_notes.txt": [(1, 3, "MODE_15W_6CORE"), (4, 6, "MODE_15W_6CORE")],
    "xavier_30w_then_set_mode_reboot_prompt_readme.txt": [(2, 4, "MODE_30W")],
    "xavier_jp451_query_set_query_comments_readme.txt": [(2, 4, "MODE_30W"), (10, 12, "MAXN")],
}


def test_every_fixture_has_an_expectation():
    assert {path.name for path in LOGS.glob("*.txt")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    mode = parse((LOGS / name).read_text())
    assert isinstance(mode, PowerMode)
    assert mode.to_dict() == dict(zip(("mode_name", "mode_id"), EXPECTED[name]))


def test_no_mode_line():
    assert parse("NVPM ERROR: optMask is 1, no request for power mode\n").to_dict() == {
        "mode_name": None, "mode_id": None}


def test_query_set_query_paste_is_two_reports_each_with_its_command():
    found = list(invocations((LOGS / "nano_jp4_prompt_query_set_query_jetson_nano_notes.txt").read_text()))
    # "$ sudo nvpmodel -m 0" printed no mode: it is no report of its own.
    assert [(i.number, i.first_line, i.last_line, i.command) for i in found] == [
        (1, 1, 4, "$ sudo nvpmodel -q"), (2, 10, 13, "$ sudo nvpmodel -q")]
    assert all(i.format == "nvpmodel -q, with the fan mode (Xavier, Nano)" for i in found)


def test_verbose_output_says_so():
    [found] = invocations((LOGS / "tx2_r32_1_verbose_root_mids_w251.txt").read_text())
    assert found.format == "nvpmodel -q --verbose"


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_one_report_per_query_in_a_paste(name):
    found = [(i.first_line, i.last_line, i.record.mode_name) for i in invocations((LOGS / name).read_text())]
    assert found == REPORTS[name]


def test_commands_of_the_snap_a_script_report_and_an_html_copy():
    [snap] = invocations((LOGS / "orin_nano_8gb_15w_snap_query_canonical_tegra_snap_samples.txt").read_text())
    assert (snap.command, snap.first_line, snap.last_line) == ("$ sudo snap run nvpmodel.nvpmodel --query", 1, 3)
    [verbose] = invocations((LOGS / "orin_nano_super_r36_4_3_verbose_exit_status_line_preflight_report.txt").read_text())
    # "exit=0" (the report script's) and 36 "NVPM VERB: PARAM" lines around the mode and its id.
    assert (verbose.command, verbose.first_line, verbose.last_line) == ("$ sudo -n nvpmodel -q --verbose", 1, 6)
    assert verbose.format == "nvpmodel -q --verbose"
    [html] = invocations((LOGS / "agx_xavier_30w_4core_fan_mode_html_pre_prompt_system_notes.txt").read_text())
    assert html.command.endswith("</font>$ sudo nvpmodel -q")
    assert html.format == "nvpmodel -q, with the fan mode (Xavier, Nano)"


def test_failed_mode_change_is_no_report():
    assert list(invocations((LOGS / "orin_nano_4gb_set_mode_errors_no_mode_meta_tegra_pr1268.txt").read_text())) == []
