"""edgeprof.parsers.nvpmodel against real ``nvpmodel -q`` output (see logs/nvpmodel/SOURCES.md)."""

from pathlib import Path

import pytest

from edgeprof.parsers.nvpmodel import PowerMode, parse

LOGS = Path(__file__).parent / "logs" / "nvpmodel"

EXPECTED = {
    "tx2_r32_1_verbose_root_mids_w251.txt": ("MAXP_CORE_ARM", 3),
    "nano_r32_nonroot_jetbot_issue49.txt": ("5W", 1),
    "nano_r32_root_jetbot_issue49.txt": ("5W", 1),
    "xavier_fan_mode_no_id_orne_box_issue16.txt": ("MAXN", None),
    "thor_jp7_jetpack_nixos_pr460.txt": ("MAXN", 0),
    "orin_nano_super_r39_2_1_unattributed_report.txt": ("25W", 1),
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
