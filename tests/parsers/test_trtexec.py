"""edgeprof.parsers.trtexec against real trtexec output and export files (see logs/trtexec/SOURCES.md)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprof.parsers import parse_text
from edgeprof.parsers.trtexec import (LayerProfile, Stats, TrtexecReport, invocations, parse, parse_export_profile,
                                      parse_export_times, trtexec_stats, version_from_code)

LOGS = Path(__file__).parent / "logs" / "trtexec"

REPORT_KEYS = {"trt_version", "throughput_qps", "latency_ms", "gpu_compute_ms", "h2d_ms", "d2h_ms", "enqueue_ms",
               "error"}
STATS_KEYS = {"min", "max", "mean", "median", "p90", "p95", "p99"}
STATS_FIELDS = ("latency_ms", "gpu_compute_ms", "h2d_ms", "d2h_ms", "enqueue_ms")


def s(min=None, max=None, mean=None, median=None, p99=None, p90=None, p95=None) -> dict:
    return {"min": min, "max": max, "mean": mean, "median": median, "p90": p90, "p95": p95, "p99": p99}


NONE = s()
# The last Caffe run of the TensorRT 4.0 README (deploy.prototxt): ten per-iteration means of 10 runs each.
TRT4_LAST_RUN = [7.75014, 7.65675, 7.33501, 7.11178, 7.54227, 7.11721, 7.01686, 6.99832, 7.00938, 7.04481]
GIEXEC_HALF2 = [12.8707, 12.9181, 12.9096, 12.8568, 12.8694, 12.8638, 12.8555, 12.8636, 12.8473, 12.8554]
GIEXEC_DIGITS = [1.17613, 1.17624, 1.1762, 1.17618, 1.17564, 1.17339, 1.1758, 1.17527, 1.17448, 1.17494]

# Per fixture: every figure of the report exactly as printed (None where the log lacks it).
EXPECTED = {
    "trt10_16_rtx6000ada_hackathon_result01_excerpt.log": {
        "trt_version": "10.16.0", "throughput_qps": 18392.0, "error": None,
        "latency_ms": s(0.0334473, 0.882324, 0.0431899, 0.0386963, p90=0.0480957, p95=0.0548096, p99=0.144043),
        "enqueue_ms": s(0.0222168, 0.714111, 0.0286857, 0.0253906, p90=0.034668, p95=0.0402832, p99=0.0578613),
        "h2d_ms": s(0.00268555, 0.265503, 0.00441713, 0.00390625, p90=0.00524902, p95=0.00610352, p99=0.00952148),
        "gpu_compute_ms": s(0.0266113, 0.7229, 0.0334352, 0.0297852, p90=0.0378418, p95=0.0429688, p99=0.0952148),
        "d2h_ms": s(0.00317383, 0.476074, 0.00533757, 0.00512695, p90=0.00646973, p95=0.00720215, p99=0.0129395),
    },
    "trt8_5plus_format_ptlflow_issue65_excerpt.log": {
        "trt_version": None, "throughput_qps": 32.7261, "error": None,
        "latency_ms": s(30.1348, 30.887, 30.7571, 30.7585, p90=30.8303, p95=30.8396, p99=30.8523),
        "enqueue_ms": s(29.4951, 31.1035, 30.2854, 30.2815, p90=30.5007, p95=30.7004, p99=31.0061),
        "h2d_ms": s(0.243774, 0.261108, 0.247712, 0.247559, p90=0.24939, p95=0.249756, p99=0.255188),
        "gpu_compute_ms": s(29.8193, 30.4572, 30.3322, 30.333, p90=30.4037, p95=30.4156, p99=30.4204),
        "d2h_ms": s(0.0695801, 0.187988, 0.177211, 0.177734, p90=0.182312, p95=0.184814, p99=0.1875),
    },
    "trt8_4_0_xavier_agx_meta_tegra_pr952_excerpt.log": {
        "trt_version": "8.4.0", "throughput_qps": 41087.7, "error": None,
        "latency_ms": s(0.387207, 0.447357, 0.402238, 0.401947, p99=0.420288),
        "enqueue_ms": s(0.0830078, 0.229004, 0.090497, 0.0871582, p99=0.126099),
        "h2d_ms": s(0.00622559, 0.0571899, 0.0104126, 0.00952148, p99=0.0272217),
        "gpu_compute_ms": s(0.375977, 0.403564, 0.388221, 0.388443, p99=0.393188),
        "d2h_ms": s(0.00195312, 0.00537109, 0.00360451, 0.00366211, p99=0.00488281),
    },
    # Four summaries pasted one after another, the last three without their header: the FP32 one is reported.
    "trt8_4_format_tesla_m40_sci_notation_sdecoder_readme_excerpt.log": {
        "trt_version": None, "throughput_qps": 2.54996e+06, "error": None,
        "latency_ms": s(9.11011, 56.7799, 16.7815, 11.3374, p99=47.455),
        "enqueue_ms": s(0.0098877, 0.0678711, 0.0148348, 0.0112305, p99=0.0598145),
        "h2d_ms": s(3.12762, 49.9872, 9.40668, 4.24805, p99=40.4771),
        "gpu_compute_ms": s(5.95483, 10.9875, 7.3315, 7.17285, p99=9.1684),
        "d2h_ms": s(0.00561523, 0.0722656, 0.0433322, 0.0424805, p99=0.0668182),
    },
    # 8.2 still prints "End-to-End Host Latency", which must not be taken for "Latency".
    "trt8_2_1_jetson_nano_culane_excerpt.log": {
        "trt_version": "8.2.1", "throughput_qps": 11.0613, "error": None,
        "latency_ms": s(89.312, 91.492, 90.3919, 90.3035, p99=91.492),
        "enqueue_ms": s(1.54553, 9.62085, 6.19246, 6.2948, p99=9.62085),
        "h2d_ms": s(0.274475, 0.288208, 0.277587, 0.276855, p99=0.288208),
        "gpu_compute_ms": s(89.0273, 91.2045, 90.1061, 90.0183, p99=91.2045),
        "d2h_ms": s(0.00683594, 0.00881958, 0.008238, 0.00830078, p99=0.00881958),
    },
    # No timestamps, "=" lost in places, the last three summary lines run together, backticks around.
    "trt_jetson_mangled_copy_yolo_on_jetson_issue4.log": {
        "trt_version": None, "throughput_qps": 169.352, "error": None,
        "latency_ms": s(5.38959, 6.19507, 5.93288, 6.02185, p99=6.17407),
        "enqueue_ms": s(0.596436, 0.805542, 0.628294, 0.625488, p99=0.697754),
        "h2d_ms": s(0.800781, 0.900391, 0.82323, 0.817383, p99=0.895874),
        "gpu_compute_ms": s(3.17834, 3.88306, 3.63242, 3.71753, p99=3.87793),
        "d2h_ms": s(1.30469, 1.56445, 1.47722, 1.48657, p99=1.50879),
    },
    # TensorRT 7 blocks; the copy stops after the Host Latency block.
    "trt7_1_3_xavier_agx_tensorrtx_issue707_excerpt.log": {
        "trt_version": None, "throughput_qps": 145.5, "error": None,
        "latency_ms": s(6.14319, 9.15771, 6.84532, 6.60986, p99=8.90259),
        "enqueue_ms": NONE, "h2d_ms": NONE, "gpu_compute_ms": NONE, "d2h_ms": NONE,
    },
    # TensorRT 7 printed "throughput: 0 qps" for explicit-batch engines: a printed zero, kept as printed.
    "trt7_format_zero_qps_tensorrt_issue2054_excerpt.log": {
        "trt_version": None, "throughput_qps": 0.0, "error": None,
        "latency_ms": s(1.64058, 6.2915, 1.66069, 1.65601, p99=1.67065),
        "enqueue_ms": NONE, "h2d_ms": NONE, "gpu_compute_ms": NONE, "d2h_ms": NONE,
    },
    # Two TensorRT 7.2 GPU Compute blocks, each after its pasted command: the batch-16 one is reported.
    "trt7_2_2_t4_gpu_compute_blocks_modelzoo_readme_excerpt.log": {
        "trt_version": None, "throughput_qps": None, "error": None,
        "gpu_compute_ms": s(12.5645, 14.8437, 12.9561, 12.8541, p99=14.8377),
        "latency_ms": NONE, "enqueue_ms": NONE, "h2d_ms": NONE, "d2h_ms": NONE,
    },
    "trt5_format_xavier_retinanet_issue118_excerpt.log": {
        "trt_version": None, "throughput_qps": None, "error": None,
        "latency_ms": s(mean=55.3944), "gpu_compute_ms": s(mean=55.2518),
        "enqueue_ms": NONE, "h2d_ms": NONE, "d2h_ms": NONE,
    },
    # An earlier run that crashed, then three Caffe runs: the last run's ten means are averaged. TensorRT 4's
    # trtexec copies nothing to or from the GPU, so the latency of a query is its GPU time.
    "trt4_0_readme_known_error_then_caffe_runs_excerpt.log": {
        "trt_version": None, "throughput_qps": None, "error": None,
        "gpu_compute_ms": s(mean=sum(TRT4_LAST_RUN) / 10), "latency_ms": s(mean=sum(TRT4_LAST_RUN) / 10),
        "enqueue_ms": NONE, "h2d_ms": NONE, "d2h_ms": NONE,
    },
    # giexec (TensorRT 1-3): "Average over 10 runs is X ms." and nothing else; a --half2 run after a root prompt.
    "trt3_giexec_half2_b128_root_prompt_ngc1803_readme.log": {
        "trt_version": None, "throughput_qps": None, "error": None,
        "gpu_compute_ms": s(mean=sum(GIEXEC_HALF2) / 10), "latency_ms": s(mean=sum(GIEXEC_HALF2) / 10),
        "enqueue_ms": NONE, "h2d_ms": NONE, "d2h_ms": NONE,
    },
    # The command wrapped with a backslash and tabs, after a ">$" prompt.
    "trt1_2_giexec_wrapped_command_getdigits_howto.log": {
        "trt_version": None, "throughput_qps": None, "error": None,
        "gpu_compute_ms": s(mean=sum(GIEXEC_DIGITS) / 10), "latency_ms": s(mean=sum(GIEXEC_DIGITS) / 10),
        "enqueue_ms": NONE, "h2d_ms": NONE, "d2h_ms": NONE,
    },
    "trt10_3_jetson_unknown_option_failed_excerpt.log": {
        "trt_version": "10.3.0", "throughput_qps": None, "error": "Unknown option: --workspace 2048",
        **{name: NONE for name in STATS_FIELDS},
    },
    "trt8_6_0_error10_commented_gaussupsample.log": {
        "trt_version": "8.6.0", "throughput_qps": None,
        "error": "Error[10]: Could not find any implementation for node "
                 "{ForeignNode[(Unnamed Layer* 56) [Constant].../MatMul]}.",
        **{name: NONE for name in STATS_FIELDS},
    },
    "trt_le5_tx2_unknown_argument_jetson_inference_issue388.log": {
        "trt_version": None, "throughput_qps": None, "error": "Unknown argument: --useSpinWait",
        **{name: NONE for name in STATS_FIELDS},
    },
    # Added for issue 16's "8 new real samples" (logs/trtexec/SOURCES.md, second table).
    "trt8_format_xavier_nx_e2e_meta_tegra_pr1124_excerpt.log": {
        "trt_version": None, "throughput_qps": 27207.0, "error": None,
        "latency_ms": s(0.564209, 0.593018, 0.573891, 0.572998, p99=0.587769),
        "enqueue_ms": s(0.126709, 0.282104, 0.140747, 0.134277, p99=0.182129),
        "h2d_ms": s(0.00610352, 0.00793457, 0.00656457, 0.0065918, p99=0.00708008),
        "gpu_compute_ms": s(0.554932, 0.58374, 0.564682, 0.564087, p99=0.578552),
        "d2h_ms": s(0.00219727, 0.00341797, 0.00265072, 0.00268555, p99=0.00317383),
    },
    # The poster's terminal cut three lines on the right ("percentile(99%) = 0.2551s", "percentile(99%) s"):
    # a figure whose unit was cut off is not read, the rest of the line is.
    "trt8_5_2_agx_xavier_right_truncated_lines_meta_tegra_pr1150_excerpt.log": {
        "trt_version": None, "throughput_qps": 43073.6, "error": None,
        "latency_ms": s(0.369385, 2.36157, 0.386481, 0.385986, p90=0.391113, p95=0.393066, p99=0.404907),
        "enqueue_ms": s(0.156738, 2.35205, 0.185932, 0.181396, p90=0.209473, p95=0.22229),
        "h2d_ms": s(0.00585938, 0.0727539, 0.0132263, 0.0130615, p90=0.0147705, p95=0.0153809),
        "gpu_compute_ms": s(0.35675, 2.34995, 0.369765, 0.369873, p90=0.373779, p95=0.374756),
        "d2h_ms": NONE,
    },
    # The stored copy stops after the Enqueue Time line: no GPU compute, H2D or D2H figures.
    "trt8_6_2_agx_orin_jp6_dp_meta_tegra_community_pr113_excerpt.log": {
        "trt_version": None, "throughput_qps": 208.729, "error": None,
        "latency_ms": s(4.81763, 4.86572, 4.83767, 4.83752, p90=4.84772, p95=4.85034, p99=4.85547),
        "enqueue_ms": s(0.345459, 0.39978, 0.357979, 0.356689, p90=0.365295, p95=0.372803, p99=0.384033),
        "gpu_compute_ms": NONE, "h2d_ms": NONE, "d2h_ms": NONE,
    },
    "trt8_5_preview_fixed_dynamic_shapes_tensorrt_issue2124_excerpt.log": {
        "trt_version": None, "throughput_qps": 118.63, "error": None,
        "latency_ms": s(8.68604, 8.86206, 8.70558, 8.70435, p90=8.71228, p95=8.71619, p99=8.72046),
        "enqueue_ms": s(8.23904, 8.40942, 8.25222, 8.25098, p90=8.25928, p95=8.26166, p99=8.26709),
        "h2d_ms": s(0.180298, 0.191162, 0.182987, 0.183105, p90=0.184326, p95=0.184814, p99=0.186035),
        "gpu_compute_ms": s(8.13654, 8.30908, 8.15172, 8.15057, p90=8.15894, p95=8.16144, p99=8.16742),
        "d2h_ms": NONE,
    },
    # TensorRT 7 Host Latency block, every line padded with spaces to the terminal's width.
    "trt7_1080ti_trailing_space_padding_tensorrt_issue1221_excerpt.log": {
        "trt_version": None, "throughput_qps": None, "error": None,
        "latency_ms": s(638.401, 646.992, 643.169, 643.202),
        "enqueue_ms": NONE, "h2d_ms": NONE, "gpu_compute_ms": NONE, "d2h_ms": NONE,
    },
    # "[TensorRT v101602] [b10]": the build tag after the version code; --skipInference prints no summary.
    "trt10_16_2_orin_nx_jp7_skip_inference_build_tag_meta_tegra_pr2243_excerpt.log": {
        "trt_version": "10.16.2", "throughput_qps": None, "error": None,
        **{name: NONE for name in STATS_FIELDS},
    },
    "trt8_5plus_format_tensorrt_issue4177_excerpt.log": {
        "trt_version": None, "throughput_qps": 130.298, "error": None,
        "latency_ms": s(5.38672, 13.3664, 7.60628, 7.16092, p90=10.2996, p95=10.8698, p99=12.9675),
        "enqueue_ms": s(2.72876, 15.0201, 7.63062, 7.86694, p90=10.1792, p95=11.7217, p99=14.1848),
        "h2d_ms": s(0.0065918, 0.0698242, 0.0122212, 0.00814819, p90=0.0253906, p95=0.0270996, p99=0.0515137),
        "gpu_compute_ms": s(5.34595, 13.3388, 7.58404, 7.14139, p90=10.2881, p95=10.8175, p99=12.9485),
        "d2h_ms": s(0.00390625, 0.110596, 0.0100141, 0.00439453, p90=0.0254517, p95=0.0319824, p99=0.0994873),
    },
    "trt10_2_windows_powershell_prompt_tensorrt_issue4036_excerpt.log": {
        "trt_version": "10.2.0", "throughput_qps": None, "error": None,
        **{name: NONE for name in STATS_FIELDS},
    },
}


# The layout each fixture's reported run was recognized as (its version where the log states one).
LAYOUTS = {
    "trt10_16_rtx6000ada_hackathon_result01_excerpt.log": "TensorRT 8.5+ (Performance summary, p90/p95/p99), version 10.16.0",
    "trt8_5plus_format_ptlflow_issue65_excerpt.log": "TensorRT 8.5+ (Performance summary, p90/p95/p99)",
    "trt8_4_0_xavier_agx_meta_tegra_pr952_excerpt.log": "TensorRT 8.4 (Performance summary), version 8.4.0",
    "trt8_4_format_tesla_m40_sci_notation_sdecoder_readme_excerpt.log": "TensorRT 8.4 (Performance summary)",
    "trt8_2_1_jetson_nano_culane_excerpt.log":
        "TensorRT 8.0-8.2 (Performance summary with End-to-End Host Latency), version 8.2.1",
    "trt_jetson_mangled_copy_yolo_on_jetson_issue4.log": "TensorRT 8.4 (Performance summary)",
    "trt7_1_3_xavier_agx_tensorrtx_issue707_excerpt.log": "TensorRT 6-7 (Host Latency / GPU Compute blocks)",
    "trt7_format_zero_qps_tensorrt_issue2054_excerpt.log": "TensorRT 6-7 (Host Latency / GPU Compute blocks)",
    "trt7_2_2_t4_gpu_compute_blocks_modelzoo_readme_excerpt.log": "TensorRT 6-7 (Host Latency / GPU Compute blocks)",
    "trt5_format_xavier_retinanet_issue118_excerpt.log": "TensorRT 5 (Average over N runs, host walltime)",
    "trt4_0_readme_known_error_then_caffe_runs_excerpt.log": "TensorRT 4 (Average over N runs, percentile)",
    "trt3_giexec_half2_b128_root_prompt_ngc1803_readme.log": "TensorRT 1-3 giexec (Average over N runs)",
    "trt1_2_giexec_wrapped_command_getdigits_howto.log": "TensorRT 1-3 giexec (Average over N runs)",
    "trt10_3_jetson_unknown_option_failed_excerpt.log": "no summary, version 10.3.0",
    "trt8_6_0_error10_commented_gaussupsample.log": "no summary, version 8.6.0",
    "trt_le5_tx2_unknown_argument_jetson_inference_issue388.log": "no summary",
    "trt8_format_xavier_nx_e2e_meta_tegra_pr1124_excerpt.log":
        "TensorRT 8.0-8.2 (Performance summary with End-to-End Host Latency)",
    "trt8_5_2_agx_xavier_right_truncated_lines_meta_tegra_pr1150_excerpt.log":
        "TensorRT 8.5+ (Performance summary, p90/p95/p99)",
    "trt8_6_2_agx_orin_jp6_dp_meta_tegra_community_pr113_excerpt.log": "TensorRT 8.5+ (Performance summary, p90/p95/p99)",
    "trt8_5_preview_fixed_dynamic_shapes_tensorrt_issue2124_excerpt.log":
        "TensorRT 8.5+ (Performance summary, p90/p95/p99)",
    "trt7_1080ti_trailing_space_padding_tensorrt_issue1221_excerpt.log": "TensorRT 6-7 (Host Latency / GPU Compute blocks)",
    "trt10_16_2_orin_nx_jp7_skip_inference_build_tag_meta_tegra_pr2243_excerpt.log": "no summary, version 10.16.2",
    "trt8_5plus_format_tensorrt_issue4177_excerpt.log": "TensorRT 8.5+ (Performance summary, p90/p95/p99)",
    "trt10_2_windows_powershell_prompt_tensorrt_issue4036_excerpt.log": "no summary, version 10.2.0",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_reported_run_says_which_layout_it_has(name):
    chosen = [i for i in invocations(read(name)) if i.record.to_dict() == parse(read(name)).to_dict()][-1]
    assert chosen.format == f"trtexec, {LAYOUTS[name]}" + (" stated" if "version" in LAYOUTS[name] else "")


def test_giexec_command_line_and_lines_of_the_run():
    [found] = invocations(read("trt3_giexec_half2_b128_root_prompt_ngc1803_readme.log"))
    assert found.command.endswith("# ./giexec --deploy=./googlenet.prototxt --output=prob --half2 --batch=128")
    assert (found.first_line, found.last_line) == (1, 19)


def read(name: str) -> str:
    return (LOGS / name).read_text()


def test_every_fixture_has_expectations_and_a_source():
    fixtures = {p.name for p in LOGS.glob("*.log")}
    assert fixtures == set(EXPECTED)
    sources = read("SOURCES.md")
    for name in fixtures | {p.name for p in LOGS.glob("*.json")}:
        assert f"`{name}`" in sources, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_figures(name):
    report = parse(read(name))
    assert isinstance(report, TrtexecReport)
    assert report.to_dict() == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_to_dict_has_exactly_the_api_keys(name):
    as_dict = parse_text("trtexec", read(name))
    assert set(as_dict) == REPORT_KEYS
    assert all(set(as_dict[key]) == STATS_KEYS for key in STATS_FIELDS)


def test_trt4_reports_the_last_run_not_a_mix_of_runs():
    # The ResNet and first Inception runs of the same text have lower means; only the last ten count.
    report = parse(read("trt4_0_readme_known_error_then_caffe_runs_excerpt.log"))
    assert report.gpu_compute_ms.mean == pytest.approx(7.258253)


def test_the_last_complete_run_wins_over_a_truncated_one():
    complete = read("trt8_4_0_xavier_agx_meta_tegra_pr952_excerpt.log")
    truncated = "\n".join(read("trt8_5plus_format_ptlflow_issue65_excerpt.log").splitlines()[:5])
    assert parse(complete + truncated).throughput_qps == 41087.7
    assert parse(truncated).throughput_qps == 32.7261  # alone, the partial run is still read


def test_error_of_an_earlier_failed_run_does_not_stick_to_a_later_good_one():
    text = read("trt10_3_jetson_unknown_option_failed_excerpt.log") + read(
        "trt10_16_rtx6000ada_hackathon_result01_excerpt.log")
    report = parse(text)
    assert report.error is None and report.trt_version == "10.16.0" and report.throughput_qps == 18392.0


def test_error_lines_of_a_passed_run_are_not_an_error():
    text = read("trt8_4_0_xavier_agx_meta_tegra_pr952_excerpt.log").replace(
        "[I] Total Host Walltime", "[E] [TRT] some message\n[03/11/2022-14:57:03] [I] Total Host Walltime")
    assert parse(text).error is None


def test_empty_text():
    report = parse("")
    assert report.to_dict() == {"trt_version": None, "throughput_qps": None, "error": None,
                                **{name: NONE for name in STATS_FIELDS}}


@pytest.mark.parametrize("code, version", [(8201, "8.2.1"), (101602, "10.16.2"), (100200, "10.2.0"), (8400, "8.4.0"), (8001, "8.0.1"), (8600, "8.6.0"),
                                           (100300, "10.3.0"), (101600, "10.16.0"), (110201, "11.2.1")])
def test_version_codes(code, version):
    assert version_from_code(code) == version


def test_version_line_of_trt8_0_is_the_integer_code():
    # TensorRT 8.0 printed "TensorRT version: 8001" (dusty-nv/jetson-inference#1199, Xavier NX).
    assert parse("[09/15/2021-16:06:10] [I] TensorRT version: 8001\n").trt_version == "8.0.1"


def test_cli_parse_trtexec_json():
    proc = subprocess.run([sys.executable, "-m", "edgeprof.cli", "parse", "trtexec",
                           str(LOGS / "trt8_2_1_jetson_nano_culane_excerpt.log"), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == EXPECTED["trt8_2_1_jetson_nano_culane_excerpt.log"]


# --- export files ----------------------------------------------------------------------------------------

TIMES = "trt8_mobilenet_qat_exportTimes_trex_tests_first12.json"
COMPUTE_MS = [0.459041, 0.442369, 0.444799, 0.444416, 0.900864, 0.444512, 0.444064, 0.44528, 0.444544, 0.444256,
              0.444576, 0.446049]


def test_export_times_statistics_follow_trtexec():
    report = parse_export_times(read(TIMES))
    assert report.iterations == 12
    ordered = sorted(COMPUTE_MS)
    # n = 12: median is the mean of the 6th and 7th values; p90 excludes int(0.1 * 12) = 1 value, p95 and p99 none.
    assert report.gpu_compute_ms == Stats(min=0.442369, max=0.900864, mean=sum(ordered) / 12,
                                          median=(ordered[5] + ordered[6]) / 2, p90=ordered[10],
                                          p95=0.900864, p99=0.900864)
    assert report.latency_ms == report.gpu_compute_ms  # this engine ran with --noDataTransfers: h2d = d2h = 0
    assert report.h2d_ms == Stats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert report.enqueue_ms.max == pytest.approx(12.7482 - 12.6384)
    assert report.enqueue_ms.min == pytest.approx(16.7922 - 16.7544)
    # Queries over first H2D start (12.5399 ms) to last D2H end (18.3628 ms).
    assert report.throughput_qps == pytest.approx(12 / (18.3628 - 12.5399) * 1000)
    assert parse_export_times(read(TIMES), batch=4).throughput_qps == pytest.approx(4 * report.throughput_qps)


def test_export_times_drops_warm_up_records_like_trtexec():
    report = parse_export_times(read(TIMES), warmup_ms=15.0)
    # Records whose compute started before 15 ms are warm-up (trtexec's isNotWarmup).
    assert report.iterations == 7
    assert report.gpu_compute_ms.max == 0.446049 and report.gpu_compute_ms.min == 0.444064


def test_export_times_reads_trt7_field_names():
    # TensorRT 7's names (samples/opensource/trtexec/tracer.py), written out with values of the first record above.
    record = {"startInMs": 12.5399, "endInMs": 12.5399, "startComputeMs": 12.5399, "endComputeMs": 12.9989,
              "startOutMs": 12.9989, "endOutMs": 12.9989, "inMs": 0, "computeMs": 0.459041, "outMs": 0,
              "latencyMs": 0.459041, "endToEndMs": 0.459041}
    report = parse_export_times(json.dumps([record]))
    assert report.iterations == 1 and report.gpu_compute_ms.mean == 0.459041 and report.h2d_ms.max == 0.0
    assert report.enqueue_ms == Stats()  # TensorRT 7 exported no enqueue times


def test_trtexec_stats_percentiles_on_100_values():
    # trtexec computes int((1 - p/100) * n) in float: for n = 100 that excludes 10 values at p90 (double: 9,
    # giving 91) and none at p99 (double: 1, giving 99).
    stats = trtexec_stats([float(v) for v in range(1, 101)])
    assert (stats.median, stats.p90, stats.p95, stats.p99) == (50.5, 90.0, 95.0, 100.0)
    assert trtexec_stats([]) == Stats()


def test_export_times_rejects_other_json():
    with pytest.raises(ValueError):
        parse_export_times('{"count": 3}')


@pytest.mark.parametrize("text, says", [
    ('[{"startComputeMs": 1.0, "latencyMs": NaN}]', "NaN is not a time"),
    ('[{"startComputeMs": 1.0, "latencyMs": Infinity}]', "Infinity is not a time"),
    ('[{"startComputeMs": 1.0, "latencyMs": "0.5"}]', "latencyMs is '0.5', not a number"),
    ('[{"latencyMs": 0.5}]', "record 1 has no startComputeMs"),
    ('[{"startComputeMs": 1.0, "latencyMs": 0.5', "is not JSON"),
])
def test_export_times_refuses_records_that_are_not_finite_numbers(text, says):
    # The file comes from the board: a broken or hostile one must fail the item with a reason, never put a
    # NaN or an infinity into a stored figure (json.loads takes both) or raise a KeyError.
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_export_times(text)


@pytest.mark.parametrize("text, says", [
    ('[{"count": 4}, {"name": "conv", "timeMs": -Infinity, "averageMs": 1, "percentage": 1}]', "-Infinity"),
    ('[{"count": 4}, {"name": "conv", "timeMs": 1, "percentage": 1}]', "averageMs is None, not a number"),
    ('[{"count": 4}, {"timeMs": 1, "averageMs": 1, "percentage": 1}]', "without a layer name"),
    ('[3]', "expected a JSON list of objects"),
])
def test_export_profile_refuses_entries_that_are_not_finite_numbers(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_export_profile(text)


def test_export_profile_without_median():
    report = parse_export_profile(read("trt8_mobilenet_qat_exportProfile_trex_tests.json"))
    assert report.iterations == 4216
    assert len(report.layers) == 85
    assert report.layers[0] == LayerProfile("QuantizeLinear_2", 51.4526, 0.0122041, None, 1.88608)
    assert report.layers[-1] == LayerProfile("copied_squeeze_after_(Unnamed Layer* 850) [ElementWise]", 0.0, 0.0,
                                             None, 0.0)
    assert sum(layer.time_ms for layer in report.layers) == pytest.approx(2728.016)


def test_export_profile_with_median():
    report = parse_export_profile(read("trt8_5plus_detr_exportProfile_first12.json"))
    assert report.iterations == 641 and len(report.layers) == 12
    assert report.layers[9] == LayerProfile("Reformatting CopyNode for Input Tensor 0 to PWN(PWN(/Sub), PWN(/Div))",
                                            12.8778, 0.0200902, 0.019904, 0.482752)
    assert report.to_dict()["layers"][0] == {"name": "/model/model/Transpose_1_output_0", "time_ms": 0.0,
                                             "average_ms": 0.0, "median_ms": 0.0, "percentage": 0.0}


def test_pasted_commands_of_other_shells_go_with_their_run():
    # PowerShell inside a conda env on Windows, and a root prompt on a JetPack 7 Orin NX.
    [windows] = invocations(read("trt10_2_windows_powershell_prompt_tensorrt_issue4036_excerpt.log"))
    assert windows.command.startswith(
        "(python3.8) PS C:\\Users\\22715\\Desktop\\DCVC-main\\DCVC-FM> trtexec ")
    [orin] = invocations(read("trt10_16_2_orin_nx_jp7_skip_inference_build_tag_meta_tegra_pr2243_excerpt.log"))
    assert orin.command.startswith("root@ultra:~# /usr/src/tensorrt/bin/trtexec --onnx=")
    assert (orin.first_line, orin.record.trt_version) == (1, "10.16.2")


def test_a_cut_repeat_of_the_last_line_does_not_hide_a_summary_without_gpu_compute_figures():
    text = read("trt8_6_2_agx_orin_jp6_dp_meta_tegra_community_pr113_excerpt.log")
    last = text.splitlines()[-1]
    cut = text + last[:len(last) // 3]  # the next copy of the Enqueue line, cut: a run of one figure
    assert len(list(invocations(cut))) == 2
    assert parse(cut).to_dict() == EXPECTED["trt8_6_2_agx_orin_jp6_dp_meta_tegra_community_pr113_excerpt.log"]
    # Alone, that fragment is still read.
    assert parse(last[:len(last) // 3]).enqueue_ms.min == 0.345459
