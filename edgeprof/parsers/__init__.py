"""Parsers for what the tools edgeprof drives print; one module per tool.

Each module has `parse(source)` (text or an iterable of lines: the record of the last invocation in it, or
for tegrastats and nvidia-smi the rows of all) and `invocations(source)` (every invocation found, in order, as
`paste.Invocation`s; for tegrastats and nvidia-smi one per sample or GPU row, numbered by invocation).
`parse_text(kind, text)` returns plain JSON-ready data; `edgeprof parse KIND FILE` reads the file through
`decode`, which streams it (see lines.py for the bounds on time and memory).
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from . import lines
from .lines import Lines
from .paste import Invocation

# CLI name -> module; modules are imported only when used.
KINDS = {
    "caffe-time": "caffe_time",
    "nvpmodel": "nvpmodel",
    "jetson-clocks": "jetson_clocks",
    "nvidia-smi": "nvidia_smi",
    "tegrastats": "tegrastats",
    "trtexec": "trtexec",
}


# What each parser looks for, for the message when a file has none of it.
EXPECTS = {
    "caffe-time": "`caffe time` output (\"Average Forward pass: X ms.\" and per-layer lines)",
    "nvpmodel": "`nvpmodel -q` output (\"NV Power Mode: NAME\" and the mode id)",
    "jetson-clocks": "`jetson_clocks --show` output (\"SOC family:\", cpuN/GPU/EMC lines)",
    "nvidia-smi": "`nvidia-smi --query-gpu=... --format=csv` output",
    "tegrastats": "tegrastats lines (\"RAM X/YMB ... CPU [...]\")",
    "trtexec": "trtexec's (or giexec's) performance summary",
}


# Kinds whose output is a list of rows (samples, GPUs) rather than one record per invocation.
ROW_KINDS = {"nvidia-smi", "tegrastats"}


class NothingFound(ValueError):
    """The text holds nothing the parser recognizes."""


def found_anything(parsed) -> bool:
    """Whether a parse result holds any value at all (not only nulls and empty lists)."""
    if isinstance(parsed, dict):
        return any(found_anything(v) for v in parsed.values())
    if isinstance(parsed, list):
        return any(found_anything(v) for v in parsed)
    return parsed is not None and parsed is not False


def decode(data: bytes | BinaryIO, name: str) -> str | Lines:
    """UTF-8 text of `data`; for a binary file, its `Lines`, decoded a block at a time as they are read (so a
    file of any size takes bounded memory). Either way a ValueError names the first line that is not UTF-8."""
    if isinstance(data, (bytes, bytearray)):
        return lines.decode(bytes(data), name)
    return Lines(data, name)


def _module(kind: str):
    if kind not in KINDS:
        raise KeyError(f"unknown log kind {kind!r}; one of {', '.join(KINDS)}")
    return importlib.import_module(f"{__name__}.{KINDS[kind]}")


def parse_text(kind: str, text: str | Iterable[str], **options):
    """The JSON-ready record of `text` (text or lines) as the module's parse() chooses it (for ROW_KINDS the
    rows of every invocation); NothingFound when it holds nothing."""
    parsed = _module(kind).parse(text, **options)
    doc = [item.to_dict() for item in parsed] if isinstance(parsed, list) else parsed.to_dict()
    if not found_anything(doc):
        raise nothing_found(kind)
    return doc


def invocations(kind: str, source: str | Iterable[str], **options) -> Iterator[Invocation]:
    """Every invocation `kind`'s parser finds in `source` that holds something, in order, as they are read
    (see each module); NothingFound, raised where the first would have come, when there is none."""
    found = False
    for invocation in _module(kind).invocations(source, **options):
        if found_anything(invocation.record.to_dict()):
            found = True
            yield invocation
    if not found:
        raise nothing_found(kind)


def nothing_found(kind: str) -> NothingFound:
    return NothingFound(f"nothing recognizable: expected {EXPECTS[kind]}")
