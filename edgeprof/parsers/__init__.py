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


def parse_text(kind: str, text: str, **options):
    if kind not in KINDS:
        raise KeyError(f"unknown log kind {kind!r}; one of {', '.join(KINDS)}")
    parsed = importlib.import_module(f"{__name__}.{KINDS[kind]}").parse(text, **options)
    return [item.to_dict() for item in parsed] if isinstance(parsed, list) else parsed.to_dict()
