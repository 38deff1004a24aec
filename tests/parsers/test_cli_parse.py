"""`edgeprof parse`: the file is streamed, the last invocation is the record, --invocations prints each.

The real logs come from tests/parsers/logs (SOURCES.md there); the CRLF/BOM copy, the over-long line and the
undecodable byte are GENERATED here.
"""
import json
from pathlib import Path

from click.testing import CliRunner

from edgeprof.cli import main

LOGS = Path(__file__).parent / "logs"


def run(*args):
    return CliRunner().invoke(main, ["parse", *map(str, args)])


def test_before_and_after_paste_reports_the_after_state_and_invocations_tells_them_apart():
    log = LOGS / "jetson_clocks" / "agx_orin_jp5_30w_before_after_comment_lines_finn_notes.txt"
    record = json.loads(run("jetson-clocks", log, "--json").stdout)
    assert record["gpu"]["cur_hz"] == 612_000_000 and len(record["cpus"]) == 12
    lines = [json.loads(line) for line in run("jetson-clocks", log, "--invocations").stdout.splitlines()]
    assert [(i["invocation"], i["lines"], i["command"]) for i in lines] == [
        (1, [2, 27], "sudo jetson_clocks --show"),
        (2, [30, 55], "hanna@ceg-391:~/git/finn-transformers$ sudo jetson_clocks --show")]
    assert lines[0]["format"] == "jetson_clocks --show, L4T R32 to R36"
    assert lines[0]["record"]["gpu"]["cur_hz"] == 306_000_000


def test_rows_of_every_invocation_stream_as_one_json_array():
    log = LOGS / "nvidia_smi" / "table_384_90_2xp100_processes_docstring.txt"
    rows = json.loads(run("nvidia-smi", log, "--json").stdout)
    assert [row["index"] for row in rows] == [0, 1] and len(rows[1]["processes"]) == 4
    each = [json.loads(line) for line in run("nvidia-smi", log, "--invocations").stdout.splitlines()]
    assert [(i["invocation"], i["lines"]) for i in each] == [(1, [7, 8]), (1, [10, 11])]


def test_several_runs_of_rows_get_a_note(tmp_path):
    paste = tmp_path / "two_runs.txt"
    paste.write_text("".join((LOGS / "tegrastats" / name).read_text() for name in (
        "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_ae7da25.txt",
        "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_a5a5cc7.txt")))
    result = run("tegrastats", paste, "--json")
    assert len(json.loads(result.stdout)) == 4
    assert "rows of 2 invocations; --invocations tells them apart" in result.stderr


def test_crlf_and_byte_order_mark_read_the_same(tmp_path):
    log = LOGS / "caffe_time" / "bullseye_cpu_small224.log"
    copy = tmp_path / "windows.log"
    copy.write_bytes(b"\xef\xbb\xbf" + log.read_bytes().replace(b"\n", b"\r\n"))
    assert json.loads(run("caffe-time", copy, "--json").stdout) == json.loads(run("caffe-time", log, "--json").stdout)


def test_an_over_long_line_is_skipped_and_said(tmp_path):
    log = tmp_path / "long.log"
    log.write_text("x" * 100_000 + "\n" + (LOGS / "nvpmodel" / "nano_r32_root_jetbot_issue49.txt").read_text())
    result = run("nvpmodel", log, "--json")
    assert json.loads(result.stdout) == {"mode_name": "5W", "mode_id": 1}
    assert "1 line(s) longer than 64 KiB skipped" in result.stderr


def test_undecodable_byte_far_into_the_file_names_its_line(tmp_path):
    log = tmp_path / "bad.log"
    log.write_bytes(b"I1123 ok\n" * 300_000 + b"\xff\n")
    result = run("caffe-time", log)
    assert result.exit_code == 2 and "bad.log:300001: not UTF-8 text (byte 0xff)" in result.stderr


def test_nothing_recognizable_with_invocations_exits_2():
    result = run("trtexec", LOGS / "nvpmodel" / "nano_r32_root_jetbot_issue49.txt", "--invocations")
    assert result.exit_code == 2 and "nothing recognizable" in result.stderr and result.stdout == ""
