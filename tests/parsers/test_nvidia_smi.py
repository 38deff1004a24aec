"""edgeprof.parsers.nvidia_smi against real ``nvidia-smi --query-gpu`` CSV (see logs/nvidia_smi/SOURCES.md)."""

from pathlib import Path

import pytest

from edgeprof.parsers.nvidia_smi import NvidiaSmiRow, parse

LOGS = Path(__file__).parent / "logs" / "nvidia_smi"

# The query of the four h100_driver580_csv*.txt captures, in order.
H100_FIELDS = (
    "timestamp,index,name,uuid,pci.bus_id,driver_version,pstate,persistence_mode,compute_mode,utilization.gpu,"
    "utilization.memory,memory.total,memory.used,memory.free,temperature.gpu,temperature.memory,power.draw,"
    "power.limit,enforced.power.limit,clocks.current.graphics,clocks.current.sm,clocks.current.memory,"
    "clocks.max.graphics,fan.speed,clocks_event_reasons.active,clocks_event_reasons.hw_slowdown,ecc.mode.current"
).split(",")

# What every H100 capture says, apart from the per-capture timestamp, power and clocks.
H100_COMMON = {
    "index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-ada58f54-496f-cb57-fb42-cbaf320919ff",
    "pci.bus_id": "00000000:00:06.0", "driver_version": "580.159.04", "pstate": "P0", "persistence_mode": "Enabled",
    "compute_mode": "Default", "utilization.gpu": 0, "utilization.memory": 0, "memory.total": 81559,
    "memory.used": 0, "memory.free": 81079, "temperature.gpu": 34, "temperature.memory": 36, "power.limit": 700.0,
    "enforced.power.limit": 700.0, "clocks.current.memory": 2619, "clocks.max.graphics": 1980, "fan.speed": None,
    "clocks_event_reasons.active": "0x0000000000000001", "clocks_event_reasons.hw_slowdown": "Not Active",
    "ecc.mode.current": "Enabled",
}
H100 = {
    "h100_driver580_csv.txt": ("2026/11/23 19:38:55.222", 104.19, 375),
    "h100_driver580_csv_nounits.txt": ("2026/11/23 19:38:55.265", 100.92, 345),
    "h100_driver580_csv_noheader.txt": ("2026/11/23 19:38:55.305", 99.43, 345),
    "h100_driver580_csv_noheader_nounits.txt": ("2026/11/23 19:38:55.346", 97.55, 345),
}


@pytest.mark.parametrize("name", sorted(H100))
def test_h100_captures(name):
    fields = H100_FIELDS if "noheader" in name else None
    rows = parse((LOGS / name).read_text(), fields)
    assert len(rows) == 1 and isinstance(rows[0], NvidiaSmiRow)
    timestamp, power, clock = H100[name]
    expected = dict(H100_COMMON, timestamp=timestamp, **{
        "power.draw": power, "clocks.current.graphics": clock, "clocks.current.sm": clock})
    row = rows[0].to_dict()
    assert list(row) == H100_FIELDS
    assert row == expected
    # Exact types: counts are int, figures printed with decimals are float.
    assert type(row["memory.total"]) is int and type(row["power.limit"]) is float


def test_fields_given_for_output_with_header_skip_it():
    rows = parse((LOGS / "h100_driver580_csv.txt").read_text(), H100_FIELDS)
    assert len(rows) == 1 and rows[0].to_dict()["power.draw"] == 104.19


def test_loop_capture_six_rows_with_canonical_header_names():
    rows = [row.to_dict() for row in parse((LOGS / "h100_driver580_csv_lms.txt").read_text())]
    # Queried as "clocks.sm"; nvidia-smi writes the canonical name into the header.
    assert list(rows[0]) == ["timestamp", "utilization.gpu", "memory.used", "power.draw", "clocks.current.sm",
                             "temperature.gpu", "clocks_event_reasons.active"]
    assert [row["power.draw"] for row in rows] == [95.68, 75.60, 73.30, 73.31, 73.32, 73.30]
    assert rows[0] == {"timestamp": "2026/11/23 19:38:55.388", "utilization.gpu": 0, "memory.used": 0,
                       "power.draw": 95.68, "clocks.current.sm": 345, "temperature.gpu": 34,
                       "clocks_event_reasons.active": "0x0000000000000001"}


def test_not_supported_is_none():
    fields = ["gpu_name", "utilization.gpu", "utilization.memory", "temperature.gpu", "power.draw", "power.limit",
              "fan.speed", "pstate", "clocks.current.graphics", "clocks.current.memory", "power.max_limit",
              "power.default_limit"]
    rows = parse((LOGS / "gtx770_noheader_megaminer_issue235.txt").read_text(), fields)
    assert [row.to_dict() for row in rows] == [{
        "gpu_name": "GeForce GTX 770", "utilization.gpu": None, "utilization.memory": None, "temperature.gpu": 52,
        "power.draw": None, "power.limit": None, "fan.speed": 52, "pstate": "P0", "clocks.current.graphics": None,
        "clocks.current.memory": None, "power.max_limit": None, "power.default_limit": None,
    }]


def test_three_gpus_one_field():
    rows = parse((LOGS / "three_gpus_power_draw_noheader_nounits_ricks_lab_issue83.txt").read_text(), ["power.draw"])
    assert [row.to_dict() for row in rows] == [{"power.draw": 133.91}, {"power.draw": 189.84}, {"power.draw": 104.34}]


def test_wrong_field_count_is_an_error():
    with pytest.raises(ValueError):
        parse((LOGS / "h100_driver580_csv_noheader.txt").read_text(), ["timestamp", "index"])


def test_every_fixture_is_used():
    used = set(H100) | {"h100_driver580_csv_lms.txt", "gtx770_noheader_megaminer_issue235.txt",
                        "three_gpus_power_draw_noheader_nounits_ricks_lab_issue83.txt"}
    assert {path.name for path in LOGS.glob("*.txt")} == used
