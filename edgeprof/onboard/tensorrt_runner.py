#!/usr/bin/env python3
"""edgeprof's TensorRT Python-API runner, for boards with the tensorrt Python module but no trtexec: builds
(or loads from the cache) an engine from an ONNX file and times it. Runs ON the board.

Uploaded with the rest of edgeprof/onboard/ into the work folder, and run as

    python3 tensorrt_runner.py --onnx net.onnx --engine CACHE/KEY.engine [--precision fp32|fp16|int8|best]
        [--workspace-mib N] [--span compute|host] [--iterations N] --json

It needs Python 3.6+, the standard library, tensorrt (8.x or 10.x) and one of the CUDA bindings below for
device memory, streams and events. It has run only against a stand-in tensorrt module
(tests/backends/test_tensorrt_python_api.py), never against real TensorRT.

The engine
    --engine exists: deserialized (engine_cached true, build_s null). Otherwise the ONNX file is parsed
    (OnnxParser, explicit batch: the batch lives in edgeprof's export) and built with the precision's
    BuilderFlags (best = FP16 + INT8, as trtexec's --best), then written under a temporary name and renamed
    to --engine, so an interrupted build is never taken for an engine. The path is the host's engine cache,
    the one trtexec's engines go to: plans are the same whichever tool built them.
    int8 is built without calibration: like trtexec without --calib, placeholder dynamic ranges on every
    tensor (inputs +-2, layer outputs +-4, sampleEngines.cpp's values), so timing only, outputs meaningless.

CUDA bindings, the first that imports: cuda-python (cuda.bindings.runtime, or cuda.cudart before 12.8),
    pycuda, torch's CUDA. None: a JSON error of kind "unavailable".

Timing (the loop and the statistics are timing.py's)
    inputs: float32 inputs standard normal from random.Random(--seed + 1), others zero bytes; copied to the
        device once; outputs stay on the device.
    span "compute" (default): CUDA events on the runner's stream around one execute_async_v2 (8.x) /
        execute_async_v3 (10.x, tensor addresses set once); trtexec's "GPU Compute Time".
    span "host": the events also take in the H2D copy of every input before and the D2H copy of every output
        after; trtexec's "Latency".
    first inference: the first execution after the context is created, reported on its own.

Memory: the process's peak RSS and nvidia-smi's view (timing.nvml_memory, a lone GPU only); the
    allocator figures are null (TensorRT does not report a peak).

Output and errors: harness.py's; kind "unavailable" (no CUDA bindings), "unsupported" (a TensorRT version
or precision this runner does not drive), "build" (parse or build failed).
"""
import ctypes
import os
import random
import struct
import sys
import time

import tensorrt as trt

if __package__:
    from . import harness, timing
    from .harness import RunnerError
else:
    import harness
    import timing
    from harness import RunnerError

PRECISIONS = ("fp32", "fp16", "int8", "best")
# trtexec's placeholder dynamic ranges when int8 has no calibrator (sampleEngines.cpp, setTensorDynamicRange).
INT8_INPUT_RANGE = 2.0
INT8_OUTPUT_RANGE = 4.0



# --- TensorRT: what differs between versions -----------------------------------------------------------

def trt_version():
    """(major, minor) of the tensorrt module; only 8.x and 10.x are driven (9.x was LLM-only early access,
    11.x builds strongly typed networks only, without precision flags)."""
    major, minor = (int(part) for part in trt.__version__.split(".")[:2])
    if major not in (8, 10):
        raise RunnerError("unsupported", "TensorRT %s: this runner drives the Python API of 8.x and 10.x"
                          % trt.__version__)
    return major, minor


def network_flags(version):
    # 8.x parses ONNX into explicit-batch networks only when asked; 10.x has no implicit batch left and
    # deprecated the flag.
    if version[0] == 8:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


def set_workspace(config, version, mib):
    # set_memory_pool_limit came in 8.4 and replaced max_workspace_size, which 10.0 removed.
    if version < (8, 4):
        config.max_workspace_size = mib << 20
    else:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, mib << 20)


def io_tensors(engine, version):
    """[(name, is_input, shape, dtype)] in the engine's order: bindings in 8.x, I/O tensors in 10.x (which
    removed the binding API)."""
    if version[0] == 8:
        return [(engine.get_binding_name(i), engine.binding_is_input(i), tuple(engine.get_binding_shape(i)),
                 engine.get_binding_dtype(i)) for i in range(engine.num_bindings)]
    found = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        found.append((name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                      tuple(engine.get_tensor_shape(name)), engine.get_tensor_dtype(name)))
    return found


def executor(context, version, tensors, pointers):
    """A function (stream handle) -> None that enqueues one inference: execute_async_v2 with the bindings
    in 8.x, execute_async_v3 on addresses set here once in 10.x (which removed v2)."""
    if version[0] == 8:
        bindings = [int(p) for p in pointers]
        return lambda stream: _enqueued(context.execute_async_v2(bindings=bindings, stream_handle=stream))
    for (name, _, _, _), pointer in zip(tensors, pointers):
        context.set_tensor_address(name, int(pointer))
    return lambda stream: _enqueued(context.execute_async_v3(stream_handle=stream))


def _enqueued(ok):
    if not ok:
        raise RuntimeError("TensorRT could not enqueue the inference")


# --- the engine ----------------------------------------------------------------------------------------

def _precision_flags(config, network, precision):
    if precision in ("fp16", "best"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision in ("int8", "best"):
        config.set_flag(trt.BuilderFlag.INT8)
        for i in range(network.num_inputs):
            network.get_input(i).set_dynamic_range(-INT8_INPUT_RANGE, INT8_INPUT_RANGE)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            for j in range(layer.num_outputs):
                layer.get_output(j).set_dynamic_range(-INT8_OUTPUT_RANGE, INT8_OUTPUT_RANGE)


def build_engine(logger, version, args):
    """Parse --onnx, build with --precision, write the plan to --engine; returns the plan's bytes."""
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(version))
    parser = trt.OnnxParser(network, logger)
    with open(args.onnx, "rb") as f:
        if not parser.parse(f.read()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RunnerError("build", "the ONNX parser refused %s: %s" % (args.onnx, "; ".join(errors)))
    config = builder.create_builder_config()
    if args.workspace_mib is not None:
        set_workspace(config, version, args.workspace_mib)
    _precision_flags(config, network, args.precision)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RunnerError("build", "TensorRT built no engine from %s (its log on stderr says why)" % args.onnx)
    plan = bytes(plan)
    partial = "%s.partial-%d" % (args.engine, os.getpid())
    with open(partial, "wb") as f:
        f.write(plan)
    os.rename(partial, args.engine)
    return plan


def engine_plan(logger, version, args):
    """(plan bytes, seconds the build took or None when --engine was cached)."""
    if os.path.exists(args.engine):
        with open(args.engine, "rb") as f:
            return f.read(), None
    t0 = time.perf_counter()
    plan = build_engine(logger, version, args)
    return plan, time.perf_counter() - t0


# --- CUDA bindings: device memory, copies, a stream and events -----------------------------------------

class CudaPython(object):
    name = "cuda-python"

    def __init__(self, cudart, version):
        self.rt = cudart
        self.version = version
        self.stream = int(self._ok(cudart.cudaStreamCreate()))

    def _ok(self, answer):
        # cuda-python returns (error, values...) instead of raising.
        if answer[0] != self.rt.cudaError_t.cudaSuccess:
            raise RuntimeError("CUDA runtime: %s" % (answer[0],))
        return answer[1] if len(answer) > 1 else None

    def alloc(self, nbytes):
        return self._ok(self.rt.cudaMalloc(nbytes))

    def h2d(self, device, host):
        self._ok(self.rt.cudaMemcpyAsync(int(device), _address(host), len(host),
                                         self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))

    def d2h(self, host, device):
        self._ok(self.rt.cudaMemcpyAsync(_address(host), int(device), len(host),
                                         self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))

    def event(self):
        return self._ok(self.rt.cudaEventCreate())

    def record(self, event):
        self._ok(self.rt.cudaEventRecord(event, self.stream))

    def elapsed_ms(self, start, end):
        self._ok(self.rt.cudaEventSynchronize(end))
        return self._ok(self.rt.cudaEventElapsedTime(start, end))


class PyCuda(object):
    name = "pycuda"

    def __init__(self, driver, version):
        self.driver = driver
        self.version = version
        self._stream = driver.Stream()
        self.stream = self._stream.handle

    def alloc(self, nbytes):
        return self.driver.mem_alloc(nbytes)

    def h2d(self, device, host):
        self.driver.memcpy_htod_async(device, host, self._stream)

    def d2h(self, host, device):
        self.driver.memcpy_dtoh_async(host, device, self._stream)

    def event(self):
        return self.driver.Event()

    def record(self, event):
        event.record(self._stream)

    def elapsed_ms(self, start, end):
        end.synchronize()
        return end.time_since(start)


class TorchCuda(object):
    name = "torch"

    def __init__(self, torch):
        self.torch = torch
        self.version = torch.__version__
        self._stream = torch.cuda.Stream()
        self.stream = self._stream.cuda_stream
        self._buffers = {}  # device pointer -> its tensor, which owns the memory

    def alloc(self, nbytes):
        tensor = self.torch.empty(nbytes, dtype=self.torch.uint8, device="cuda")
        self._buffers[tensor.data_ptr()] = tensor
        return tensor.data_ptr()

    def _host(self, host):
        return self.torch.frombuffer(host, dtype=self.torch.uint8)

    def h2d(self, device, host):
        with self.torch.cuda.stream(self._stream):
            self._buffers[device].copy_(self._host(host), non_blocking=True)

    def d2h(self, host, device):
        with self.torch.cuda.stream(self._stream):
            self._host(host).copy_(self._buffers[device], non_blocking=True)

    def event(self):
        return self.torch.cuda.Event(enable_timing=True)

    def record(self, event):
        event.record(self._stream)

    def elapsed_ms(self, start, end):
        end.synchronize()
        return start.elapsed_time(end)


def _address(host):
    return ctypes.addressof(ctypes.c_char.from_buffer(host))


def cuda_bindings():
    """The first CUDA binding that imports and sees a device, in the order the docstring gives."""
    tried = []
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # cuda-python before 12.8
        import cuda
        return CudaPython(cudart, getattr(cuda, "__version__", None))
    except Exception as e:
        tried.append("cuda-python (%s: %s)" % (type(e).__name__, e))
    try:
        import pycuda.driver as driver
        import pycuda.autoinit  # noqa: F401 (creates the context on device 0)
        import pycuda
        return PyCuda(driver, getattr(pycuda, "VERSION_TEXT", None))
    except Exception as e:
        tried.append("pycuda (%s: %s)" % (type(e).__name__, e))
    try:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
        return TorchCuda(torch)
    except Exception as e:
        tried.append("torch (%s: %s)" % (type(e).__name__, e))
    raise RunnerError("unavailable", "no CUDA bindings for device memory: tried %s; install cuda-python "
                      "(pip3 install cuda-python) or pycuda" % "; ".join(tried))


# --- timing --------------------------------------------------------------------------------------------

def _element_size(dtype):
    sizes = {}
    for name, size in (("float32", 4), ("float16", 2), ("int8", 1), ("int32", 4), ("bool", 1), ("uint8", 1),
                       ("int64", 8), ("bfloat16", 2)):
        if hasattr(trt, name):
            sizes[getattr(trt, name)] = size
    return sizes[dtype]


def _host_input(shape, dtype, rng):
    count = _count(shape)
    if dtype == trt.float32:
        return bytearray(struct.pack("<%df" % count, *(rng.gauss(0, 1) for _ in range(count))))
    # edgeprof exports float32 inputs; any other type gets zeros, which time the same.
    return bytearray(count * _element_size(dtype))


class Step(object):
    """One inference between CUDA events; returns (ms, None)."""

    def __init__(self, cuda, enqueue, inputs, outputs, span):
        self.cuda = cuda
        self.enqueue = enqueue
        self.inputs = inputs      # [(device pointer, host bytearray)]
        self.outputs = outputs
        self.span = span
        self.start, self.end = cuda.event(), cuda.event()

    def __call__(self):
        cuda = self.cuda
        cuda.record(self.start)
        if self.span == "host":
            for device, host in self.inputs:
                cuda.h2d(device, host)
        self.enqueue(cuda.stream)
        if self.span == "host":
            for device, host in self.outputs:
                cuda.d2h(host, device)
        cuda.record(self.end)
        return cuda.elapsed_ms(self.start, self.end), None


def _device_name():
    gpus = timing.nvidia_smi("--query-gpu=name") or []
    return gpus[0][0] if len(gpus) == 1 else None  # several GPUs: the bindings' device 0 is not told apart


def run(args):
    version = trt_version()
    cuda = cuda_bindings()
    logger = trt.Logger(trt.Logger.WARNING)
    plan, build_s = engine_plan(logger, version, args)
    t0 = time.perf_counter()
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise RunnerError("runtime", "TensorRT could not load %s (built by another version or for another "
                          "device?)" % args.engine)
    context = engine.create_execution_context()
    load_s = time.perf_counter() - t0
    # The host's view only: TensorRT reports no allocator figures (the device's is nvidia-smi's, at the end).
    stages = {"loaded": harness.stage_memory()}
    tensors = io_tensors(engine, version)
    rng = random.Random(args.seed + 1)
    buffers = []
    for name, is_input, shape, dtype in tensors:
        host = (_host_input(shape, dtype, rng) if is_input
                else bytearray(_element_size(dtype) * _count(shape)))
        device = cuda.alloc(len(host))
        if is_input:
            cuda.h2d(device, host)  # span compute: the inputs are on the device before the first query
        buffers.append((device, host))
    enqueue = executor(context, version, tensors, [device for device, _ in buffers])
    step = Step(cuda, enqueue, [b for b, t in zip(buffers, tensors) if t[1]],
                [b for b, t in zip(buffers, tensors) if not t[1]], args.span)
    first_ms = step()[0]
    stages["first_inference"] = harness.stage_memory()
    timed = timing.measure(step, args)
    inputs = [t for t in tensors if t[1]]
    batch = int(inputs[0][2][0])
    # TensorRT does not report an allocator peak; nvidia-smi tells a lone GPU only.
    return harness.report(
        args, timed, batch, (first_ms, "cuda_event"), harness.memory_report(nvml=timing.nvml_memory(None)),
        {"precision": args.precision, "workspace_mib": args.workspace_mib},
        load_s=load_s, memory_stages=stages, build_s=build_s, engine_cached=build_s is None, engine_path=args.engine,
        trt_version=trt.__version__, cuda_bindings=cuda.name, cuda_bindings_version=cuda.version, device="cuda",
        device_name=_device_name(), threads=None, timer="cuda_event", net=os.path.basename(args.onnx),
        precision=args.precision, inputs=[[name, str(dtype)] for name, _, _, dtype in inputs],
        outputs=[name for name, is_input, _, _ in tensors if not is_input])


def _count(shape):
    count = 1
    for d in shape:
        count *= d
    return count


def parse_args(argv):
    p = harness.JsonUsageParser(description="Build (or load) a TensorRT engine and time it.")
    p.add_argument("--onnx", required=True, help="the .onnx file, parsed when --engine does not exist")
    p.add_argument("--engine", required=True, help="the engine file: loaded when it exists, else built there")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--workspace-mib", type=int, help="builder workspace limit (default: TensorRT's)")
    harness.add_common_arguments(p, "random float32 inputs: seed + 1")
    return harness.check_arguments(p, p.parse_args(argv), positive=("workspace_mib",))


def _summary_lines(obj):
    return ["%s batch %d, TensorRT %s %s, span %s, engine %s"
            % (obj["net"], obj["batch"], obj["trt_version"], obj["precision"], obj["span"],
               "cached" if obj["engine_cached"] else "built in %.1f s" % obj["build_s"])]


def main(argv=None):
    return harness.main(parse_args, run, _summary_lines, {"trt_version": trt.__version__}, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
