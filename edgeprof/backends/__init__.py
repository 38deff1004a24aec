"""Backends: one folder per framework behind one small contract (after Polygraphy's backend/<framework>/).

A backend is looked up by name and imported lazily, so the host never imports a framework it does not run.

    class Backend(Protocol):
        name: str
        def prepare(self, board: Board) -> dict        # find the tool on the board, return its facts
        def measure(self, board: Board, model: ModelSource, batch: int, options: Options) -> Result

`prepare` raises BackendUnavailable (saying how to install the backend) when the board lacks it;
`measure` returns a Result, failed or not, and raises only when the board itself is gone (TransportError).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..models import ModelSource
    from ..result import Result
    from ..session import Board

_REGISTRY = {
    "caffe": "edgeprof.backends.caffe.runner:CaffeBackend",
}


class BackendUnavailable(RuntimeError):
    """The board lacks the backend's tool or package; the message says how to install it."""


@dataclass(frozen=True)
class Options:
    iterations: int | None = None    # None: the backend's default policy
    timeout_s: float = 1800.0        # per measurement, on the board


class Backend(Protocol):
    name: str

    def prepare(self, board: "Board") -> dict: ...

    def measure(self, board: "Board", model: "ModelSource", batch: int, options: Options) -> "Result": ...


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Backend:
    if name not in _REGISTRY:
        raise KeyError(f"unknown backend {name!r}; available: {', '.join(names())}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["Backend", "BackendUnavailable", "Options", "get", "names"]
