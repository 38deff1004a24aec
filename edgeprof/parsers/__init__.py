"""Parsers for what the tools edgeprof drives print; one module per tool, each with parse(text).

`parse_text(kind, text)` is the one entry `edgeprof parse KIND FILE` uses; it returns plain JSON-ready data.
"""
from __future__ import annotations

import importlib

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


class NothingFound(ValueError):
    """The text holds nothing the parser recognizes."""


def found_anything(parsed) -> bool:
    """Whether a parse result holds any value at all (not only nulls and empty lists)."""
    if isinstance(parsed, dict):
        return any(found_anything(v) for v in parsed.values())
    if isinstance(parsed, list):
        return any(found_anything(v) for v in parsed)
    return parsed is not None and parsed is not False


def decode(data: bytes, name: str) -> str:
    """UTF-8 text, or a ValueError naming the first undecodable line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{name}:{line}: not UTF-8 text (byte {data[e.start]:#04x}); a log is read as UTF-8") \
            from None


def parse_text(kind: str, text: str, **options):
    if kind not in KINDS:
        raise KeyError(f"unknown log kind {kind!r}; one of {', '.join(KINDS)}")
    parsed = importlib.import_module(f"{__name__}.{KINDS[kind]}").parse(text, **options)
    doc = [item.to_dict() for item in parsed] if isinstance(parsed, list) else parsed.to_dict()
    if not found_anything(doc):
        raise NothingFound(f"nothing recognizable: expected {EXPECTS[kind]}")
    return doc
