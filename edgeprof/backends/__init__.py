"""Backends: one folder per framework, each a subclass of base.Backend (after Polygraphy's backend/<framework>/),
looked up by name and imported lazily, so the host never imports a framework it does not run.

What a backend can do (model kinds, precisions, spans, what --best tries) is declared on its class
(base.py says what each attribute means); the CLI, plans and --best ask for it here instead of keeping
tables of their own.

`prepare` raises BackendUnavailable (saying how to install the backend) when the board lacks it;
`measure` returns a Result, failed or not, and raises only when the board itself is gone (BoardUnreachable).
"""
from __future__ import annotations

import importlib
from functools import cache

from ..errors import BackendUnavailable, RunnerFailed
from .base import (COMPILE_MODES, INT8_REFUSAL, MODES, PROCESSORS, TENSORRT_SOURCES, Backend, Options, find_tool,
                   probe_python, run_board_runner)

_REGISTRY = {
    "caffe": "edgeprof.backends.caffe.runner:CaffeBackend",
    "libtorch": "edgeprof.backends.libtorch:LibTorchBackend",
    "onnxruntime": "edgeprof.backends.onnxruntime.runner:OnnxRuntimeBackend",
    "pytorch": "edgeprof.backends.pytorch.runner:PyTorchBackend",
    "pycaffe": "edgeprof.backends.pycaffe:PyCaffeBackend",
    "tensorrt": "edgeprof.backends.tensorrt.runner:TensorRTBackend",
    "torchscript": "edgeprof.backends.torchscript:TorchScriptBackend",
}
# The order precisions are listed in (--precision's choices, plans), whichever backends have them.
_PRECISION_ORDER = ("fp32", "fp16", "bf16", "int8")


def names() -> list[str]:
    return sorted(_REGISTRY)


@cache
def backend_class(name: str) -> type[Backend]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown backend {name!r}; available: {', '.join(names())}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def get(name: str) -> Backend:
    return backend_class(name)()


def precisions() -> tuple[str, ...]:
    """Every precision some backend runs, in _PRECISION_ORDER."""
    found = {p for name in names() for p in backend_class(name).precisions}
    return tuple(p for p in _PRECISION_ORDER if p in found) + tuple(sorted(found - set(_PRECISION_ORDER)))


def spans() -> tuple[str, ...]:
    """Every --span some backend takes, in the order the backends declare them."""
    return tuple(dict.fromkeys(s for name in names() for s in backend_class(name).spans))


__all__ = ["Backend", "BackendUnavailable", "COMPILE_MODES", "INT8_REFUSAL", "MODES", "Options", "PROCESSORS",
           "RunnerFailed", "TENSORRT_SOURCES", "backend_class", "find_tool", "get", "names", "precisions",
           "probe_python", "run_board_runner", "spans"]
