"""What a paste does to a real log must not change what is read from it (issue 16, property tests).

Every real fixture of every parser (tests/parsers/logs/*/SOURCES.md) is parsed as stored and again after a
GENERATED change: a shell prompt line before it (bare, and with the tool's own command), CRLF line ends, tabs
expanded, a UTF-8 byte-order mark, a trailing partial line (the next prompt without its line end; the start of
another copy of the last line), and all of these at once. The record (for tegrastats and nvidia-smi, the rows) must be the
same; a cut last line of a row-per-line log may only add a row after the others.
"""
from pathlib import Path

import pytest

from edgeprof.parsers import caffe_time, jetson_clocks, nvidia_smi, nvpmodel, tegrastats, trtexec

LOGS = Path(__file__).parent / "logs"

PARSERS = {
    "caffe_time": (caffe_time, "$ ./build/tools/caffe time -model deploy.prototxt -gpu 0 -iterations 50"),
    "trtexec": (trtexec, "nvidia@orin:~$ /usr/src/tensorrt/bin/trtexec --onnx=model.onnx --fp16"),
    "tegrastats": (tegrastats, "nvidia@tegra-ubuntu:~$ sudo tegrastats --interval 1000"),
    "jetson_clocks": (jetson_clocks, "nvidia@tegra-ubuntu:~$ sudo jetson_clocks --show"),
    "nvpmodel": (nvpmodel, "root@jetson:~# nvpmodel -q"),
    "nvidia_smi": (nvidia_smi, "PS C:\\Users\\lab> nvidia-smi"),
}
H100_FIELDS = (
    "timestamp,index,name,uuid,pci.bus_id,driver_version,pstate,persistence_mode,compute_mode,utilization.gpu,"
    "utilization.memory,memory.total,memory.used,memory.free,temperature.gpu,temperature.memory,power.draw,"
    "power.limit,enforced.power.limit,clocks.current.graphics,clocks.current.sm,clocks.current.memory,"
    "clocks.max.graphics,fan.speed,clocks_event_reasons.active,clocks_event_reasons.hw_slowdown,ecc.mode.current"
).split(",")
# nvidia-smi output without a header needs the queried fields (see test_nvidia_smi.py).
FIELDS = {
    "h100_driver580_csv_noheader.txt": H100_FIELDS,
    "h100_driver580_csv_noheader_nounits.txt": H100_FIELDS,
    "gtx770_noheader_megaminer_issue235.txt": [
        "gpu_name", "utilization.gpu", "utilization.memory", "temperature.gpu", "power.draw", "power.limit",
        "fan.speed", "pstate", "clocks.current.graphics", "clocks.current.memory", "power.max_limit",
        "power.default_limit"],
    "three_gpus_power_draw_noheader_nounits_ricks_lab_issue83.txt": ["power.draw"],
}
FIXTURES = sorted((tool, path) for tool in PARSERS for path in (LOGS / tool).iterdir()
                  if path.suffix in (".log", ".txt"))
BARE_PROMPT = "nvidia@tegra-ubuntu:~$ "


def read(tool: str, path: Path, text: str):
    module = PARSERS[tool][0]
    options = {"fields": FIELDS[path.name]} if path.name in FIELDS else {}
    parsed = module.parse(text, **options)
    return [row.to_dict() for row in parsed] if isinstance(parsed, list) else parsed.to_dict()


def cut_last_line(text: str) -> str:
    """`text` and, after it, the first third of its last line: the next line of a copy, cut."""
    last = [line for line in text.splitlines() if line.strip()][-1]
    return text.rstrip("\n") + "\n" + last[:len(last) // 3]


VARIANTS = {
    "bare prompt": lambda tool, text: f"{BARE_PROMPT}\n{text}",
    "tool's command": lambda tool, text: f"{PARSERS[tool][1]}\n{text}",
    "CRLF": lambda tool, text: text.replace("\n", "\r\n"),
    "tabs expanded": lambda tool, text: text.expandtabs(8),
    "byte-order mark": lambda tool, text: "\ufeff" + text,
    "next prompt, no line end": lambda tool, text: text + BARE_PROMPT,
    "all at once": lambda tool, text: "\ufeff" + f"{BARE_PROMPT}\n{PARSERS[tool][1]}\n{text}{BARE_PROMPT}".expandtabs(
        8).replace("\n", "\r\n"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("tool, path", FIXTURES, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_a_pasted_copy_reads_the_same(tool, path, variant):
    text = path.read_text()
    assert read(tool, path, VARIANTS[variant](tool, text)) == read(tool, path, text)


@pytest.mark.parametrize("tool, path", FIXTURES, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_a_copy_cut_in_its_last_line_reads_the_same(tool, path):
    text = path.read_text()
    original, cut = read(tool, path, text), read(tool, path, cut_last_line(text))
    if isinstance(original, list):
        assert cut[:len(original) - 1] == original[:-1] and len(cut) >= len(original) - 1
    else:
        assert cut == original
