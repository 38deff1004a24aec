"""edgeprof.parsers.caffe_time against real ``caffe time`` output (see logs/caffe_time/SOURCES.md)."""

import dataclasses
from pathlib import Path

import pytest

from edgeprof.parsers.caffe_time import CaffeTimeReport, LayerTime, invocations, parse

LOGS = Path(__file__).parent / "logs" / "caffe_time"

REPORT_KEYS = {"forward_ms", "backward_ms", "forward_backward_ms", "total_ms", "iterations", "layers", "error"}
LAYER_KEYS = {"name", "forward_ms", "backward_ms"}

UNKNOWN_LAYER_ERROR = (
    "Check failed: registry.count(type) == 1 (0 vs. 1) Unknown layer type: ReLUX (known types: AbsVal, "
    "Accuracy, ArgMax, BNLL, BatchNorm, BatchReindex, Bias, Clip, Concat, ContrastiveLoss, Convolution, "
    "Crop, Data, Deconvolution, Dropout, DummyData, ELU, Eltwise, Embed, EuclideanLoss, Exp, Filter, "
    "Flatten, HDF5Data, HDF5Output, HingeLoss, Im2col, ImageData, InfogainLoss, InnerProduct, Input, LRN, "
    "LSTM, LSTMUnit, Log, MVN, MemoryData, MultinomialLogisticLoss, PReLU, Parameter, Pooling, Power, "
    "Python, RNN, ReLU, Reduction, Reshape, SPP, Scale, Sigmoid, SigmoidCrossEntropyLoss, Silence, Slice, "
    "Softmax, SoftmaxWithLoss, Split, Swish, TanH, Threshold, Tile, WindowData) (at layer_factory.hpp:81)"
)

# Our bullseye CPU run of a 224x224 net; the tab-expanded and prefix-stripped copies must read the same.
SMALL224 = {
    "forward_ms": 7.323,
    "backward_ms": 6.1777,
    "forward_backward_ms": 13.5,
    "total_ms": 135.0,
    "iterations": 10,
    "error": None,
    "layer_names": ["data", "conv1/3x3", "relu1", "pool1", "fc-out", "prob"],
    "layers": {"data": (0.0009, 0.0008), "conv1/3x3": (2.2312, 2.6724), "fc-out": (2.6928, 3.4984), "prob": (0.007, 0.0017)},
}

# Per fixture: every top-level figure exactly as printed (None where the log lacks it), the layer
# names in order when the log has a full per-layer block or the count otherwise, and some layer values.
EXPECTED = {
    "bullseye_cpu_small224.log": SMALL224,
    "bullseye_cpu_small224_tabs_expanded.log": SMALL224,
    "bullseye_cpu_small224_no_glog_prefix.log": SMALL224,
    "bullseye_cpu_tiny_zero_ms.log": {
        # caffe's CPU timer rounds the whole-run timers to integer ms: a real 0, not a missing figure.
        "forward_ms": 0.101667,
        "backward_ms": 0.0936667,
        "forward_backward_ms": 0.0,
        "total_ms": 0.0,
        "iterations": 3,
        "error": None,
        "layer_names": ["data", "conv1/3x3", "relu1", "pool1", "fc-out", "prob"],
        "layers": {"data": (0.000333333, 0.0), "conv1/3x3": (0.046, 0.0576667), "fc-out": (0.0283333, 0.0336667)},
    },
    "bullseye_cpu_iterations0_nan.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": 0.0,
        "iterations": 0,
        "error": None,
        "layer_names": ["data", "conv1/3x3", "relu1", "pool1", "fc-out", "prob"],
        "layers": {"data": (None, None), "prob": (None, None)},
    },
    "bullseye_cpu_argmax_no_backward.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": 3,
        "error": "Not Implemented Yet (at argmax_layer.hpp:67, in caffe::ArgMaxLayer<>::Backward_cpu())",
        "layer_names": [],
        "layers": {},
    },
    "bullseye_cpu_argmax_tail_without_f_line.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": "Check failure stack trace:",
        "layer_names": [],
        "layers": {},
    },
    "bullseye_cpu_unknown_layer.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": UNKNOWN_LAYER_ERROR,
        "layer_names": [],
        "layers": {},
    },
    "bullseye_cpu_bad_axis.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": (
            "Check failed: axis_index < num_axes() (5 vs. 4) axis 5 out of range for 4-D Blob with shape 1 16 16 16 "
            "(4096) (at blob.hpp:122, in caffe::InnerProductLayer<>::LayerSetUp())"),
        "layer_names": [],
        "layers": {},
    },
    "jkjung_ssd_caffe_tx2_alexnet_gpu.log": {
        "forward_ms": 12.9396,  # from the line that lost its leading 'I'
        "backward_ms": 35.2972,
        "forward_backward_ms": 48.4081,
        "total_ms": 2420.4,
        "iterations": None,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    "weiliu89_ssd_issue123_gpu_tail.log": {
        "forward_ms": 26.6667,
        "backward_ms": 14.2217,
        "forward_backward_ms": 40.97,
        "total_ms": 2048.5,
        "iterations": None,
        "error": None,
        "layer_names": ["mbox_priorbox", "mbox_conf_reshape", "mbox_conf_softmax", "mbox_conf_flatten"],
        "layers": {"mbox_priorbox": (0.100224, 0.0019456), "mbox_conf_flatten": (0.00151168, 0.00131328)},
    },
    "weiliu89_ssd_issue33_priorbox_abort.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": 50,
        "error": "Not Implemented Yet (at prior_box_layer.hpp:62, in caffe::PriorBoxLayer<>::Backward_cpu())",
        "layer_names": [],
        "layers": {},
    },
    "bvlc_issue7050_gpu_alexnet_tabs_lost.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": ["data", "conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2"],
        # the copy ends in norm2's backward line with nothing after the glog prefix
        "layers": {"data": (0.0018944, 0.0018848), "conv2": (0.291235, 0.515402), "norm2": (0.137219, None)},
    },
    "bvlc_issue6441_opencl_googlenet_no_prefix.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_count": 17,
        "layers": {
            "data": (0.061351, 0.0644588),
            "conv1/7x7_s2": (1.35054, 92.5549),
            "conv2/3x3": (2.3481, 25.2419),
            "pool2/3x3_s2_pool2/3x3_s2_0_split": (0.0680945, 0.0657371),
            "inception_3a/1x1": (0.313152, 5.66106),
            "inception_3a/3x3": (0.977489, 6.35652),
        },
    },
    "intel_clcaffe_issue63_quoted_sci_notation.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": ["input", "conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2"],
        "layers": {"input": (3.68935e11, 0.0), "conv1": (0.478906, 0.0), "norm2": (0.352791, 0.0)},
    },
    "nvidia_caffe_issue386_tail_extra_lines.log": {
        "forward_ms": 90.6376,
        "backward_ms": 141.318,
        "forward_backward_ms": 232.109,
        "total_ms": 11605.5,
        "iterations": None,
        "error": None,
        "layer_names": ["pool6"],
        "layers": {"pool6": (0.0209395, 0.0022912)},
    },
    "oaid_caffe_hrt_issue2_wrapped_iterations.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": 50,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    "jetson_inference_issue84_iterations_excerpt.log": {
        # no "Testing for" line survived: the highest iteration seen
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": 50,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    # The pasted "cd" and "caffe time" command lines before the same output as jkjung_ssd_caffe_tx2_alexnet_gpu.log.
    "jkjung_ssd_caffe_tx2_alexnet_gpu_with_prompts.log": {
        "forward_ms": 12.9396,
        "backward_ms": 35.2972,
        "forward_backward_ms": 48.4081,
        "total_ms": 2420.4,
        "iterations": None,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    # A prompt, no glog prefixes, the poster's elision line and some lines indented by the copy.
    "googlenet_prompt_no_prefix_elided_tensorrt_blog.log": {
        "forward_ms": 1046.79,
        "backward_ms": 676.121,
        "forward_backward_ms": 1723.54,
        "total_ms": 86177.0,
        "iterations": None,
        "error": None,
        "layer_count": 34,
        "layers": {"data": (0.00454, 0.00204), "inception_5b/1x1": (6.4108, 2.19984), "prob": (0.28054, 0.06392),
                   "inception_5a/output_inception_5a/output_0_split": (0.00384, 0.00156)},
    },
    # Added for issue 16's "8 new real samples" (logs/caffe_time/SOURCES.md, second table).
    # Two runs without glog prefixes; the poster's copy lost the final "." of both Forward-Backward lines.
    "wywu_lab_issue25_mac_two_runs_no_prefix_no_final_period.log": {
        "forward_ms": 694.657,
        "backward_ms": 196.416,
        "forward_backward_ms": 891.54,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    # Four runs, each after the poster's "CPU" or "GeForce GTX TITAN X" label line and its command.
    "wywu_lab_issue25_ubuntu_cpu_gpu_label_lines_four_runs.log": {
        "forward_ms": 60.9703,
        "backward_ms": 46.9149,
        "forward_backward_ms": 108.198,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    "weiliu89_ssd_issue123_jzwang1_four_totals.log": {
        "forward_ms": 43.5817,
        "backward_ms": 40.3919,
        "forward_backward_ms": 84.5878,
        "total_ms": 4229.39,
        "iterations": None,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    # Ten whole-ms iterations (CPU timer) and the start of the per-layer block; the copy stops inside conv1_1.
    "weiliu89_ssd_issue123_mxmxlwlw_without_cudnn_whole_ms_excerpt.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": 10,
        "error": None,
        "layer_names": ["data", "data_data_0_split", "conv1_1"],
        "layers": {"data": (1.2343, 0.0008), "data_data_0_split": (0.0015, 0.001), "conv1_1": (385.633, None)},
    },
    # OpenCL Caffe (Greentea, ViennaCL BLAS), tabs turned into spaces, caffe.cpp:450/453/456.
    "naibaf7_opencl_caffe_issue39_viennacl_per_layer_excerpt.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": ["data", "label", "conv1", "relu1", "norm1", "pool1", "conv2"],
        "layers": {"data": (0.100127, 0.097255), "conv1": (197.391, 339.864), "conv2": (447.242, 833.264)},
    },
    "naibaf7_opencl_caffe_pr1_conv5_relu5_after_finish.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": ["conv5", "relu5"],
        "layers": {"conv5": (21.761, 27.8604), "relu5": (0.13252, 0.01498)},
    },
    "lzx1413_fssd_issue4_benchmark_begins_excerpt.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": 50,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    # Ten runs' "Average Forward-Backward" lines (each a run of its own) and the poster's "Grand Average*" line.
    "bvlc_pr2049_master_ten_forward_backward_lines_grand_average.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": 2537.24,
        "total_ms": None,
        "iterations": None,
        "error": None,
        "layer_names": [],
        "layers": {},
    },
    "faceboxes_issue4_sigsegv_no_f_line.log": {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "error": "SIGSEGV (@0x0) received by PID 7093 (TID 0x7f091bb86a40) from PID 0; stack trace:",
        "layer_names": [],
        "layers": {},
    },
}


def read(name: str) -> str:
    return (LOGS / name).read_text()


def test_every_fixture_has_expectations_and_a_source():
    fixtures = {p.name for p in LOGS.glob("*.log")}
    assert fixtures == set(EXPECTED)
    sources = read("SOURCES.md")
    for name in fixtures:
        assert f"`{name}`" in sources, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_figures(name):
    expected = EXPECTED[name]
    report = parse(read(name))

    assert isinstance(report, CaffeTimeReport)
    for key in ("forward_ms", "backward_ms", "forward_backward_ms", "total_ms", "iterations", "error"):
        assert getattr(report, key) == expected[key], key

    names = [layer.name for layer in report.layers]
    if "layer_names" in expected:
        assert names == expected["layer_names"]
    else:
        assert len(names) == expected["layer_count"]
    by_name = {layer.name: layer for layer in report.layers}
    for layer_name, (forward, backward) in expected["layers"].items():
        assert by_name[layer_name] == LayerTime(layer_name, forward, backward)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_to_dict_has_exactly_the_api_keys(name):
    as_dict = parse(read(name)).to_dict()
    assert as_dict == dataclasses.asdict(parse(read(name)))
    assert set(as_dict) == REPORT_KEYS
    assert all(set(layer) == LAYER_KEYS for layer in as_dict["layers"])
    assert as_dict["layers"] == [
        {"name": layer.name, "forward_ms": layer.forward_ms, "backward_ms": layer.backward_ms}
        for layer in parse(read(name)).layers
    ]


def test_numbers_are_floats_and_iterations_an_int():
    report = parse(read("bullseye_cpu_small224.log"))
    assert type(report.total_ms) is float
    assert type(report.iterations) is int
    assert all(type(layer.forward_ms) is float for layer in report.layers)


def test_copies_of_one_run_read_the_same():
    original = parse(read("bullseye_cpu_small224.log")).to_dict()
    assert parse(read("bullseye_cpu_small224_tabs_expanded.log")).to_dict() == original
    assert parse(read("bullseye_cpu_small224_no_glog_prefix.log")).to_dict() == original


def test_f_line_beats_later_fatal_signs():
    lines = read("bullseye_cpu_argmax_no_backward.log").splitlines()
    assert lines[-1].startswith("/bin/bash: line 1: ") and " Aborted " in lines[-1]
    assert parse(read("bullseye_cpu_argmax_no_backward.log")).error.startswith("Not Implemented Yet (at ")
    # only the shell's report left (a copy of the last line): the signal is the error
    assert parse(lines[-1]).error == "Aborted"


def test_concatenated_runs_are_two_invocations_and_the_last_is_the_default():
    both = read("bullseye_cpu_unknown_layer.log") + read("bullseye_cpu_argmax_no_backward.log")
    first, second = invocations(both)
    assert first.record.error == UNKNOWN_LAYER_ERROR and (first.first_line, first.last_line) == (1, 99)
    assert second.record.error == EXPECTED["bullseye_cpu_argmax_no_backward.log"]["error"]
    assert second.first_line == 100 and second.number == 2
    assert parse(both).error == second.record.error


def test_signal_block_beats_shell_and_libc_lines():
    lines = read("faceboxes_issue4_sigsegv_no_f_line.log").splitlines()
    assert lines[-1] == "Aborted (core dumped)"
    assert parse(lines[-1]).error == "Aborted (core dumped)"
    assert parse("\n".join(lines[-2:])).error == (
        "Error in `./build/tools/caffe': malloc(): memory corruption: 0x0000000002052d00"
    )


def test_empty_text():
    assert parse("").to_dict() == {
        "forward_ms": None,
        "backward_ms": None,
        "forward_backward_ms": None,
        "total_ms": None,
        "iterations": None,
        "layers": [],
        "error": None,
    }


def test_invocations_say_where_they_are_and_what_was_pasted():
    [found] = invocations(read("jkjung_ssd_caffe_tx2_alexnet_gpu_with_prompts.log"))
    assert (found.first_line, found.last_line) == (2, 9)
    assert found.command == "$ ./build/tools/caffe time -gpu 0 -model /tmp/alexnet_deploy.prototxt"
    assert found.format == "caffe time, glog lines"
    [found] = invocations(read("googlenet_prompt_no_prefix_elided_tensorrt_blog.log"))
    assert found.format == "caffe time, lines without glog prefixes"


def test_the_shells_own_abort_report_is_no_command_line():
    # "/bin/bash: line 1: 15099 Aborted   GLOG_logtostderr=1 caffe time -model ..." ends the run; it starts none.
    assert len(list(invocations(read("bullseye_cpu_argmax_no_backward.log")))) == 1


def test_a_run_cut_off_before_any_figure_is_passed_over():
    text = read("bullseye_cpu_small224.log") + "\n".join(read("bullseye_cpu_small224.log").splitlines()[:20])
    assert len(list(invocations(text))) == 2
    assert parse(text).to_dict() == parse(read("bullseye_cpu_small224.log")).to_dict()


def test_pasted_runs_with_commands_and_label_lines_are_one_invocation_each():
    found = list(invocations(read("wywu_lab_issue25_ubuntu_cpu_gpu_label_lines_four_runs.log")))
    # The poster's "CPU" / "GeForce GTX TITAN X" lines before each command belong to no run.
    assert [(i.first_line, i.last_line, i.record.forward_backward_ms) for i in found] == [
        (2, 5, 4863.64), (8, 11, 312.231), (14, 17, 1001.08), (20, 23, 108.198)]
    assert [i.command for i in found][1] == "./build/tools/caffe time --model=./models/WFLW/WFLW_final/rel.prototxt -gpu 0"
    assert {i.format for i in found} == {"caffe time, lines without glog prefixes"}
    first, second = invocations(read("wywu_lab_issue25_mac_two_runs_no_prefix_no_final_period.log"))
    # "Average Forward-Backward: 2870.7 ms" without its final ".": still read.
    assert (first.record.forward_ms, first.record.forward_backward_ms) == (2493.78, 2870.7)
    assert second.first_line == 6


def test_each_repeated_total_line_is_a_run_of_its_own():
    found = list(invocations(read("bvlc_pr2049_master_ten_forward_backward_lines_grand_average.log")))
    assert [i.record.forward_backward_ms for i in found] == [
        2257.18, 2540.17, 2539.6, 2539.05, 2537.91, 2539.19, 2538.15, 2538.36, 2537.73, 2537.24]


def _described(found) -> list:
    return [(i.number, i.first_line, i.last_line, i.command, i.format, i.record.to_dict()) for i in found]


@pytest.mark.parametrize("numbers", [
    range(1, 301),                              # one run: only its first and last iteration lines are read
    [*range(1, 6), *range(1, 6)],               # two runs pasted with nothing between: iterations start over
    [1, 2, 4, 5],                               # a line lost in the copy
    ["001", "002", "003"],                      # not how caffe prints them
])
def test_text_reads_the_same_as_its_lines(numbers):
    # invocations() of a text skips the middle of a stretch of iteration lines; of lines, it reads every one.
    head, tail = read("bullseye_cpu_small224.log").split("Iteration: 1 forward-backward", 1)
    head = head.rsplit("\n", 1)[0]
    tail = tail.split("\n", 1)[1]
    while "Iteration:" in tail.split("\n", 1)[0]:
        tail = tail.split("\n", 1)[1]
    iterations = "\n".join(f"I1123 19:24:56.{n:>06} 15090 caffe.cpp:394] Iteration: {n} forward-backward time: 9 ms."
                           if isinstance(n, int) else
                           f"I1123 19:24:56.274407 15090 caffe.cpp:394] Iteration: {n} forward-backward time: 9 ms."
                           for n in numbers)
    for line_end in ("\n", "\r\n"):
        text = line_end.join(f"{head}\n{iterations}\n{tail}".split("\n"))
        assert _described(invocations(text)) == _described(invocations(text.splitlines()))
