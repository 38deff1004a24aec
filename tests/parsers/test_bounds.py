"""Every parser finishes on pathological input and still reads the real log around it (issue 12, part 5).

The pathological lines are GENERATED here: runs of one character or token, 1 MB long (over the line-length cap:
skipped and counted) and just under the cap (read by every pattern of every parser; patterns that were quadratic
took seconds to minutes on such lines). These tests assert that parsing completes with the right result, not how
fast: benchmarks/parsers_scale.py prints the times.
"""
from pathlib import Path

import pytest

from edgeprof.parsers import caffe_time, jetson_clocks, nvidia_smi, nvpmodel, tegrastats, trtexec
from edgeprof.parsers.lines import MAX_LINE_CHARS, Lines

LOGS = Path(__file__).parent / "logs"

# (module, a real fixture, the prefix that makes the parser look hard at the rest of a line)
PARSERS = [
    (caffe_time, "caffe_time/bullseye_cpu_small224.log", "I1123 19:24:56.371273 15090 caffe.cpp:408] "),
    (trtexec, "trtexec/trt8_2_1_jetson_nano_culane_excerpt.log", "[01/01/2022-00:00:00] [I] "),
    (tegrastats, "tegrastats/tx2_r32_datadog_agent.txt", "RAM 2344/7852MB "),
    (jetson_clocks, "jetson_clocks/agx_orin_jp51_catid_blog.txt", "NV Power Mode: "),
    (nvpmodel, "nvpmodel/tx2_r32_1_verbose_root_mids_w251.txt", "NV Power Mode: "),
    (nvidia_smi, "nvidia_smi/h100_driver580_csv.txt", ""),
]
# Runs of these, alone and after each parser's prefix: every shape that made some pattern backtrack.
UNITS = ["1", " ", "[", "]", "x", "\t", "> ", "$ ", "a-", "a:1", "a@", "1,", "1.", "e1", "%", "=", "F1", "@[", "*** ",
         "CPU [", "RAM 1/1MB ", "A 1/", "mW/", "forward: ", "forward: 1", "Average Forward pass: ", "Iteration: 1 ",
         "NV Power Mode: x ", "Online CPUs: 0-", "percentile(", "Latency: min = ", "Throughput: ", "nvidia-smi ",
         "sudo ", "a/", "$ caffe time ", "GR3D_FREQ @["]


def last_rows_or_record(module, text):
    parsed = module.parse(text)
    return [row.to_dict() for row in parsed] if isinstance(parsed, list) else parsed.to_dict()


def run_of(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


@pytest.mark.parametrize("module, fixture, prefix", PARSERS, ids=lambda v: getattr(v, "__name__", "")[17:] or None)
@pytest.mark.parametrize("unit", UNITS)
def test_a_line_just_under_the_cap_is_read_and_the_log_around_it_still_parses(module, fixture, prefix, unit):
    real = (LOGS / fixture).read_text()
    expected = last_rows_or_record(module, real)
    for line in (run_of(unit, MAX_LINE_CHARS - 100), prefix + run_of(unit, MAX_LINE_CHARS - 100 - len(prefix))):
        module.parse(line)  # completes
        got = last_rows_or_record(module, line + "\n" + real)
        if isinstance(expected, list):
            assert got[len(got) - len(expected):] == expected  # the generated line may read as a sample of its own
        else:
            assert got == expected


@pytest.mark.parametrize("module, fixture, prefix", PARSERS, ids=lambda v: getattr(v, "__name__", "")[17:] or None)
@pytest.mark.parametrize("unit", ["1", " ", "[", "x", "a-", "CPU ["])
def test_a_1_mb_line_is_skipped_and_counted(module, fixture, prefix, unit):
    real = (LOGS / fixture).read_text()
    lines = Lines(prefix + run_of(unit, 1 << 20) + "\n" + real)
    assert last_rows_or_record(module, lines) == last_rows_or_record(module, real)
    assert lines.skipped == 1


def test_huge_numbers_are_not_numbers():
    # int() refuses strings past 4300 digits: such "numbers" must simply not match.
    digits = "9" * 5000
    assert nvpmodel.parse(f"NV Power Mode: MAXN\n{digits}\n").to_dict() == {"mode_name": "MAXN", "mode_id": None}
    assert caffe_time.parse(f"Testing for {digits} iterations.").iterations is None
    assert trtexec.parse(f"TensorRT version: {digits}").trt_version is None
    assert tegrastats.parse(f"RAM {digits}/1MB CPU [1%@1]") == []
    assert jetson_clocks.parse(f"cpu0: Online=1 MinFreq={digits} MaxFreq=1 CurrentFreq=1").cpus is None
    assert nvidia_smi.parse(f"memory.used [MiB]\n{digits} MiB")[0].values == {"memory.used": f"{digits} MiB"}


def test_a_cpu_list_too_large_for_any_kernel_is_not_read():
    # "0-99999999999" would have been a set of 10^11 numbers.
    report = jetson_clocks.parse("Online CPUs: 0-99999999999\ncpu0:  Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2")
    assert report.cpus[0].online is None


def test_caffe_layers_per_run_are_capped():
    layers = "".join(f"layer{i}\tforward: 1 ms.\n" for i in range(caffe_time._MAX_LAYERS + 5))
    assert len(caffe_time.parse(layers).layers) == caffe_time._MAX_LAYERS
