"""Host-side pieces of the TensorRT backend that need no board: the Caffe output blobs trtexec is given, and
the DLA/GPU layer placement read from real build logs (lines copied from the stored copies named below)."""
import pytest

from edgeprof.backends.tensorrt.runner import layer_placement, output_blobs
from edgeprof.models import resolve


@pytest.mark.parametrize("model", ["alexnet", "googlenet", "vgg16", "resnet50"])
def test_catalog_nets_end_in_prob(model):
    assert output_blobs(resolve(model).text) == ["prob"]


def test_several_outputs_and_in_place_layers():
    net = """
input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" include { phase: TRAIN } }
layer { name: "loc" type: "Convolution" bottom: "conv" top: "loc" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "conf" type: "Convolution" bottom: "conv" top: "conf" convolution_param { num_output: 2 kernel_size: 1 } }
"""
    assert output_blobs(net) == ["loc", "conf"]


# TensorRT 8.2.1 on a Jetson Nano, no DLA (the Markdown log behind tests/parsers/logs/trtexec/
# trt8_2_1_jetson_nano_culane_excerpt.log, stored copy id 11074896290): the first GPU layers and the line after.
TRT_8_2_GPU_ONLY = """\
[07/14/2023-11:52:13] [I] Finish parsing network model
[07/14/2023-11:52:13] [I] [TRT] ---------- Layers Running on DLA ----------
[07/14/2023-11:52:13] [I] [TRT] ---------- Layers Running on GPU ----------
[07/14/2023-11:52:13] [I] [TRT] [GpuLayer] /model/conv1/Conv + /model/relu/Relu
[07/14/2023-11:52:13] [I] [TRT] [GpuLayer] /model/maxpool/MaxPool
[07/14/2023-11:52:13] [I] [TRT] [GpuLayer] (Unnamed Layer* 54) [Shuffle] + /Reshape_1
[07/14/2023-11:52:14] [I] [TRT] [MemUsageChange] Init cuBLAS/cuBLASLt: CPU +158, GPU +147, now: CPU 606, GPU 3701 (MiB)
"""
# VGG19 from a prototxt on DLA core 0 with GPU fallback, commented into a benchmark script (stored copy
# id 31676822915), trailing spaces as posted.
TRT_8_DLA_VGG19 = """\
#[02/19/2022-05:35:26] [I] [TRT] ---------- Layers Running on DLA ---------- 
#[02/19/2022-05:35:26] [I] [TRT] [DlaLayer] {ForeignNode[conv1_1...pool5]}
#[02/19/2022-05:35:26] [I] [TRT] [DlaLayer] {ForeignNode[relu6...fc8]}
#[02/19/2022-05:35:26] [I] [TRT] ---------- Layers Running on GPU ----------
#[02/19/2022-05:35:26] [I] [TRT] [GpuLayer] SHUFFLE: shuffle_between_pool5_and_fc6 
#[02/19/2022-05:35:26] [I] [TRT] [GpuLayer] CONVOLUTION: fc6
#[02/19/2022-05:35:26] [I] [TRT] [GpuLayer] SOFTMAX: prob
avgRuns=1
"""
# The older comma-separated lists (a TensorRT 7 sample log, stored copy id 8002906905), the GPU list cut
# after its third entry.
TRT_7_LISTS = """\
\t[02/16/2020-18:41:47] [I] [TRT] 
\t[02/16/2020-18:41:47] [I] [TRT] --------------- Layers running on DLA: 
\t[02/16/2020-18:41:47] [I] [TRT] 
\t[02/16/2020-18:41:47] [I] [TRT] --------------- Layers running on GPU: 
\t[02/16/2020-18:41:47] [I] [TRT] (Unnamed Layer* 0) [Convolution] + (Unnamed Layer* 2) [Activation], \
(Unnamed Layer* 3) [Convolution] + (Unnamed Layer* 5) [Activation] + (Unnamed Layer* 6) [Convolution] + \
(Unnamed Layer* 8) [Activation], (Unnamed Layer* 9) [Convolution] + (Unnamed Layer* 11) [Activation], 
"""


def test_placement_of_a_gpu_only_build():
    assert layer_placement(TRT_8_2_GPU_ONLY) == {
        "dla": [], "gpu": ["/model/conv1/Conv + /model/relu/Relu", "/model/maxpool/MaxPool",
                           "(Unnamed Layer* 54) [Shuffle] + /Reshape_1"]}


def test_placement_with_dla_and_gpu_fallback():
    placement = layer_placement(TRT_8_DLA_VGG19)
    assert placement["dla"] == ["{ForeignNode[conv1_1...pool5]}", "{ForeignNode[relu6...fc8]}"]
    assert placement["gpu"] == ["SHUFFLE: shuffle_between_pool5_and_fc6", "CONVOLUTION: fc6", "SOFTMAX: prob"]


def test_placement_in_the_older_list_format():
    assert layer_placement(TRT_7_LISTS) == {"dla": [], "gpu": [
        "(Unnamed Layer* 0) [Convolution] + (Unnamed Layer* 2) [Activation]",
        "(Unnamed Layer* 3) [Convolution] + (Unnamed Layer* 5) [Activation] + (Unnamed Layer* 6) [Convolution] + "
        "(Unnamed Layer* 8) [Activation]",
        "(Unnamed Layer* 9) [Convolution] + (Unnamed Layer* 11) [Activation]"]}


def test_no_placement_lists():
    assert layer_placement("[I] Engine built in 3.2 sec.\n") is None
