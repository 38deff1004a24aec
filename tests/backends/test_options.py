"""Options: the common options and each backend's own (its option_type), given and read under the keywords
Options always took, so the CLI, plans and --best's dataclasses.replace keep working."""
from dataclasses import replace

import pytest

from edgeprof.backends import Options, backend_class
from edgeprof.backends.base import NoOptions
from edgeprof.backends.onnxruntime.runner import OnnxRuntimeOptions
from edgeprof.backends.pytorch.runner import PyTorchOptions
from edgeprof.backends.tensorrt.runner import TensorRTOptions


def test_a_backends_own_options_sit_in_its_option_type():
    options = Options(iterations=5, channels_last=True, compile="default", dla_core=1, ort_provider="X")
    assert options.of("pytorch") == PyTorchOptions(channels_last=True, compile="default")
    assert options.of("tensorrt") == TensorRTOptions(dla_core=1) and options.of("onnxruntime").provider == "X"
    assert (options.channels_last, options.compile, options.dla_core, options.tensorrt_source) == (
        True, "default", 1, "onnx")
    assert options.of("caffe") == NoOptions() and backend_class("libtorch").option_type is NoOptions


def test_replace_and_equality_see_the_same_options_however_given():
    options = Options(iterations=5, cuda_graph=True)
    assert replace(options, cuda_graph=False) == Options(iterations=5)           # defaults are not kept
    assert replace(options, tensorrt_source="prototxt").of("pytorch").cuda_graph  # the others stay
    assert Options(own=(OnnxRuntimeOptions("Y"),)) == Options(ort_provider="Y")
    with pytest.raises(AttributeError):
        Options().no_such_option
