"""Host-side reader of edgeprof's tensor files (the format board_runner.py's docstring defines), standard
library only: the host compares outputs of two frameworks without numpy or torch."""
from __future__ import annotations

import json
import math
from array import array


def read_tensors(data: bytes) -> dict[str, tuple[list[int], array]]:
    """name -> (shape, float32 values in C order)."""
    header_line, _, body = data.partition(b"\n")
    header = json.loads(header_line)
    if header.get("format") != "edgeprof-tensors" or header.get("dtype") != "float32-le":
        raise ValueError(f"not an edgeprof float32 tensor file (header {header_line[:80]!r})")
    tensors = {}
    for entry in header["tensors"]:
        values = array("f")
        values.frombytes(body[entry["offset"]:entry["offset"] + 4 * math.prod(entry["shape"])])
        if len(values) != math.prod(entry["shape"]):
            raise ValueError(f"tensor {entry['name']!r} is truncated")
        tensors[entry["name"]] = (entry["shape"], values)
    return tensors


def relative_error(ours, reference) -> float:
    """max |ours - reference| / max |reference|: one figure per blob, insensitive to where values are tiny."""
    scale = max(abs(b) for b in reference)
    worst = max(abs(a - b) for a, b in zip(ours, reference, strict=True))
    return worst / scale if scale else worst
