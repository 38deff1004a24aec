"""Stand-in for cuda-python's runtime module (see ../README.md): host memory plays device memory, events
read time.perf_counter, and every call returns (error, values...) as cuda-python's do."""
import ctypes
import time

_memory = {}


class cudaError_t(object):
    cudaSuccess = 0


class cudaMemcpyKind(object):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class _Event(object):
    at = None


def cudaStreamCreate():
    return 0, 1


def cudaMalloc(size):
    buffer = ctypes.create_string_buffer(size)
    _memory[ctypes.addressof(buffer)] = buffer
    return 0, ctypes.addressof(buffer)


def cudaMemcpyAsync(dst, src, count, kind, stream):
    ctypes.memmove(dst, src, count)
    return (0,)


def cudaEventCreate():
    return 0, _Event()


def cudaEventRecord(event, stream):
    event.at = time.perf_counter()
    return (0,)


def cudaEventSynchronize(event):
    return (0,)


def cudaEventElapsedTime(start, end):
    return 0, (end.at - start.at) * 1e3
