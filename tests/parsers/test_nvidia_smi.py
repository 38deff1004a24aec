"""edgeprof.parsers.nvidia_smi against real ``nvidia-smi --query-gpu`` CSV (see logs/nvidia_smi/SOURCES.md)."""

from pathlib import Path

import pytest

from edgeprof.parsers.nvidia_smi import NvidiaSmiRow, invocations, parse

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


# The default table: (driver, CUDA, date line, GPU count, the first GPU's figures, processes per GPU index).
TABLES = {
    "table_384_111_gtx1080_prompt_ros_docker_blog.txt": ("384.111", None, None, 1, dict(
        index=0, name="GeForce GTX 108...", persistence_mode="Off", display_active="On", fan_speed=None, temperature=57,
        pstate="P0", power_draw=39, power_limit=None, memory_used=335, memory_total=8105, utilization=1), {0: 1}),
    "table_384_125_v100_root_prompt_ngc1803_readme.txt": ("384.125", None, "Mon Apr 23 09:01:07 2018", 1, dict(
        index=0, name="Tesla V100-DGXS...", persistence_mode="On", display_active="Off", fan_speed=None,
        temperature=40, pstate="P0", power_draw=38, power_limit=300, memory_used=10, memory_total=16149,
        utilization=0), {}),
    "table_384_130_930m_date_na_power.txt": ("384.130", None, "Wed May 15 13:02:20 2019", 1, dict(
        index=0, name="GeForce 930M", persistence_mode="Off", display_active="Off", fan_speed=None, temperature=48,
        pstate="P8", power_draw=None, power_limit=None, memory_used=91, memory_total=2002, utilization=13), {0: 2}),
    "table_384_59_4xtitanx_indented_singularity_readme.txt": ("384.59", None, None, 4, dict(
        index=0, name="TITAN X (Pascal)", persistence_mode="On", display_active="Off", fan_speed=39, temperature=67,
        pstate="P2", power_draw=113, power_limit=250, memory_used=11636, memory_total=12189, utilization=35), {}),
    "table_384_90_2xp100_processes_docstring.txt": ("384.90", None, None, 2, dict(
        index=0, name="Tesla P100-PCIE...", persistence_mode="Off", display_active="Off", fan_speed=None,
        temperature=73, pstate="P0", power_draw=164, power_limit=250, memory_used=4514, memory_total=16276,
        utilization=94), {0: 2, 1: 4}),
    "table_440_8xp100_prompt_processes_neuropoly.txt": ("440.33.01", "10.2", "Fri Jun  4 01:26:14 2021", 8, dict(
        index=0, name="Tesla P100-SXM2...", persistence_mode="On", display_active="Off", fan_speed=None, temperature=25,
        pstate="P0", power_draw=33, power_limit=300, memory_used=10, memory_total=16280, utilization=0),
        {4: 1, 5: 1, 6: 1, 7: 2}),
    "table_510_4xa6000_xtrace_prompt_neuropoly.txt": ("510.73.05", "11.6", "Wed May 18 06:29:10 2022", 4, dict(
        index=0, name="NVIDIA RTX A6000", persistence_mode="Off", display_active="Off", fan_speed=30, temperature=22,
        pstate="P8", power_draw=16, power_limit=300, memory_used=1, memory_total=49140, utilization=0), {}),
    "table_580_00_thor_prompt_not_supported_processes.txt": ("580.00", "13.0", "Fri Nov 14 14:06:18 2025", 1, dict(
        index=0, name="NVIDIA Thor", persistence_mode="Off", display_active="Off", fan_speed=None, temperature=None,
        pstate=None, power_draw=None, power_limit=None, memory_used=None, memory_total=None, utilization=0), {0: 6}),
    "table_580_82_gtx960_time_prompt_patfinder_cuda1.txt": ("580.82.09", "13.0", "Sun Sep 21 21:56:02 2025", 1, dict(
        index=0, name="NVIDIA GeForce GTX 960", persistence_mode="Off", display_active="Off", fan_speed=0,
        temperature=45, pstate="P8", power_draw=14, power_limit=160, memory_used=0, memory_total=2048, utilization=0),
        {}),
}
# Query names of the figures above.
TABLE_KEYS = {"fan_speed": "fan.speed", "temperature": "temperature.gpu", "power_draw": "power.draw",
              "power_limit": "power.limit", "memory_used": "memory.used", "memory_total": "memory.total",
              "utilization": "utilization.gpu"}
PROMPTED_CSV = {
    # No header: the field names come from the pasted command's --query-gpu.
    "csv_noheader_fields_from_prompt_command_2xrtx8000_bobber_readme.txt": [{"gpu_name": "Quadro RTX 8000"}] * 2,
    # The header's row, then another nvidia-smi command whose output is no GPU row.
    "csv_prompt_na_then_mig_command_rtx4070_incus_doc.txt": [
        {"index": 0, "name": "NVIDIA GeForce RTX 4070 Laptop GPU", "mig.mode.current": None,
         "mig.mode.pending": None}],
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_default_table(name):
    driver, cuda, date, count, first, processes = TABLES[name]
    rows = [row.to_dict() for row in parse((LOGS / name).read_text())]
    assert len(rows) == count and [row["index"] for row in rows] == list(range(count))
    assert all((row["driver_version"], row["cuda_version"], row["timestamp"]) == (driver, cuda, date) for row in rows)
    assert {key: rows[0][TABLE_KEYS.get(key, key)] for key in first} == first
    assert {row["index"]: len(row["processes"]) for row in rows if row["processes"]} == processes
    assert ("mig.mode.current" in rows[0]) == (int(driver.split(".")[0]) >= 450)


def test_process_rows_of_both_layouts():
    old = parse((LOGS / "table_384_90_2xp100_processes_docstring.txt").read_text())[1].values["processes"]
    assert old[0] == {"pid": 118261, "type": "C", "process_name": "python3", "used_memory": 1253}
    new = parse((LOGS / "table_580_00_thor_prompt_not_supported_processes.txt").read_text())[0].values["processes"]
    assert new[3] == {"pid": 4217, "type": "G", "process_name": "...exec/xdg-desktop-portal-gnome", "used_memory": 0}
    # A name that runs into the memory column, as the 440 driver printed it.
    packed = parse((LOGS / "table_440_8xp100_prompt_processes_neuropoly.txt").read_text())[7].values["processes"]
    assert packed[1] == {"pid": 35147, "type": "C", "process_name": "...L.CA/u12345/venv-ivadomed/bin/python3.6",
                         "used_memory": 3439}


@pytest.mark.parametrize("name", sorted(PROMPTED_CSV))
def test_pasted_csv_sessions(name):
    assert [row.to_dict() for row in parse((LOGS / name).read_text())] == PROMPTED_CSV[name]


def test_invocations_say_which_run_and_format():
    found = list(invocations((LOGS / "table_510_4xa6000_xtrace_prompt_neuropoly.txt").read_text()))
    assert {(i.number, i.command, i.format) for i in found} == {
        (1, "+ nvidia-smi", "nvidia-smi table, driver 510.73.05, three rows per GPU (MIG M.)")}
    assert [(i.first_line, i.last_line) for i in found] == [(10, 12), (14, 16), (18, 20), (22, 24)]
    [row] = invocations((LOGS / "h100_driver580_csv.txt").read_text())
    assert row.format == "nvidia-smi --query-gpu CSV with header"


def test_two_tables_and_a_csv_query_pasted_together_are_three_invocations():
    text = "".join((LOGS / name).read_text() for name in (
        "table_580_82_gtx960_time_prompt_patfinder_cuda1.txt", "table_384_130_930m_date_na_power.txt",
        "csv_noheader_fields_from_prompt_command_2xrtx8000_bobber_readme.txt"))
    assert [(i.number, i.record.values.get("name", i.record.values.get("gpu_name"))) for i in invocations(text)] == [
        (1, "NVIDIA GeForce GTX 960"), (2, "GeForce 930M"), (3, "Quadro RTX 8000"), (3, "Quadro RTX 8000")]


def test_header_lost_from_the_paste_uses_the_command_fields():
    text = "$ nvidia-smi --query-gpu=name,power.draw --format=csv\n" + (LOGS / "h100_driver580_csv_noheader.txt").read_text()
    assert parse(text) == []  # 27 values are not the command's 2 fields: no row
    rows = parse("$ nvidia-smi --query-gpu=index,power.draw --format=csv\n0, 97.55 W\n")
    assert [row.to_dict() for row in rows] == [{"index": 0, "power.draw": 97.55}]


def test_every_fixture_is_used():
    used = set(H100) | set(TABLES) | set(PROMPTED_CSV) | {
        "h100_driver580_csv_lms.txt", "gtx770_noheader_megaminer_issue235.txt",
        "three_gpus_power_draw_noheader_nounits_ricks_lab_issue83.txt"}
    assert {path.name for path in LOGS.glob("*.txt")} == used
