"""--precision int8 and --best's variants for TensorRT and ONNX Runtime, without a board: the variants come
from the facts `prepare` found (given here as a stand-in board's backend_facts), and the backends that
cannot time int8 refuse it before touching the board."""
from types import SimpleNamespace

import pytest

from edgeprof.backends import INT8_REFUSAL, Options
from edgeprof.backends.caffe.runner import CaffeBackend
from edgeprof.backends.onnxruntime.runner import CPU, CUDA, TENSORRT, OnnxRuntimeBackend, providers_for
from edgeprof.backends.pytorch.runner import PyTorchBackend
from edgeprof.backends.tensorrt.commands import CaffeModel, OnnxModel, TrtVersion, build_command, build_precisions
from edgeprof.backends.tensorrt.runner import TensorRTBackend
from edgeprof.lab.plan import Plan
from edgeprof.models import resolve
from edgeprof.result import Result


def board_with(**facts):
    """Only what variants() and the early refusals read: the backends' facts and new_result."""
    return SimpleNamespace(backend_facts=facts, device=SimpleNamespace(name="stand-in"),
                           new_result=lambda model, backend, batch: Result(device="stand-in", model=model.name,
                                                                           backend=backend, batch=batch, run_id="r"))


def trt_board(version):
    return board_with(tensorrt={"version": version})


@pytest.mark.parametrize("version, source, expected", [
    ("8.2.1", "onnx", ["fp32", "fp16", "int8"]),
    ("10.3.0", "onnx", ["fp32", "fp16", "int8"]),
    ("5.1.5", "onnx", ["fp32", "fp16"]),          # trtexec before 6.0: no INT8 for ONNX
    ("5.1.5", "prototxt", ["fp32", "fp16", "int8"]),
    ("11.2.1", "onnx", ["fp32"]),                 # strongly typed: the precision is the model's
])
def test_tensorrt_best_tries_the_precisions_the_version_builds(version, source, expected):
    options = Options(best=True, tensorrt_source=source, dla_core=0, iterations=20)
    tried = TensorRTBackend().variants(trt_board(version), options)
    assert [o.precision for o in tried] == expected
    # Each variant is one plain measurement of the same run: nothing else changes.
    assert all(o == Options(tensorrt_source=source, dla_core=0, iterations=20, precision=o.precision)
               for o in tried)


def test_build_precisions_are_what_build_command_takes():
    for version in (TrtVersion(4, 0), TrtVersion(6, 0), TrtVersion(8, 2, 1), TrtVersion(10, 3), TrtVersion(11, 0)):
        for model in (OnnxModel("m.onnx"), CaffeModel("m.prototxt", "prob")):
            if version.major >= 10 and isinstance(model, CaffeModel):
                continue  # no Caffe parser at all
            for precision in build_precisions(version, model):
                build_command(version, model, precision, 1, "e.engine")


def test_onnxruntime_best_tries_each_provider_in_fp32_and_fp16_where_it_has_fp16():
    backend = OnnxRuntimeBackend()
    board = board_with(onnxruntime={"providers": [TENSORRT, CUDA, CPU]})
    tried = backend.variants(board, Options(best=True, iterations=20))
    assert [(o.ort_provider, o.precision) for o in tried] == [
        (CPU, "fp32"), (CUDA, "fp32"), (CUDA, "fp16"), (TENSORRT, "fp32"), (TENSORRT, "fp16")]
    assert not any(o.best for o in tried) and {o.iterations for o in tried} == {20}
    gpu = backend.variants(board, Options(best=True, processor="gpu"))
    assert [(o.ort_provider, o.precision) for o in gpu] == [
        (CUDA, "fp32"), (CUDA, "fp16"), (TENSORRT, "fp32"), (TENSORRT, "fp16")]
    cpu_only = board_with(onnxruntime={"providers": [CPU]})
    assert [(o.ort_provider, o.precision) for o in backend.variants(cpu_only, Options(best=True))] == [(CPU, "fp32")]
    # Nothing --processor allows: the one plain measurement, which fails saying there is no CUDA provider.
    assert backend.variants(cpu_only, Options(best=True, processor="gpu")) == [Options(processor="gpu")]


def test_a_chosen_provider_comes_with_what_it_falls_back_on():
    available = [TENSORRT, CUDA, CPU]
    assert providers_for(available, "auto", TENSORRT) == [TENSORRT, CUDA, CPU]
    assert providers_for(available, "auto", CUDA) == [CUDA, CPU]
    assert providers_for(available, "auto", CPU) == [CPU]
    assert providers_for([TENSORRT, CPU], "auto", TENSORRT) == [TENSORRT, CPU]


def test_onnxruntime_fails_a_provider_the_board_lacks():
    board = board_with(onnxruntime={"providers": [CPU], "onnxruntime": "1.16.3"})
    r = OnnxRuntimeBackend().measure(board, resolve("alexnet"), 1, Options(ort_provider=CUDA))
    assert r.status == "failed" and r.error == (f"onnxruntime 1.16.3 on stand-in has no {CUDA} "
                                                f"(it has {CPU})")


@pytest.mark.parametrize("backend", [PyTorchBackend(), OnnxRuntimeBackend()])
def test_only_tensorrt_times_int8(backend):
    board = board_with(pytorch={}, onnxruntime={"providers": [CPU]})
    r = backend.measure(board, resolve("alexnet"), 1, Options(precision="int8"))
    assert r.status == "failed" and r.error == INT8_REFUSAL
    assert r.error == "int8 needs a calibrated model; only --backend tensorrt times int8"


def test_caffe_fails_any_precision_but_fp32():
    board = board_with(caffe={"path": "caffe", "version": "1.0.0", "gpu": False})
    r = CaffeBackend().measure(board, resolve("alexnet"), 1, Options(precision="fp16"))
    assert r.status == "failed" and r.error == "--precision fp16: caffe time runs fp32 only"


def test_plans_give_int8_items_to_tensorrt_only():
    plan = Plan(name="p", devices=["sim-tx2"], models=["alexnet"], backends=["caffe", "pytorch", "tensorrt"],
                batches=[1], precisions=["fp32", "fp16", "int8"])
    plan.validate()
    assert [(i.backend, i.precision) for i in plan.items("sim-tx2")] == [
        ("caffe", "fp32"), ("pytorch", "fp32"), ("pytorch", "fp16"),
        ("tensorrt", "fp32"), ("tensorrt", "fp16"), ("tensorrt", "int8")]
