"""Parse ``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`` output.

With a header, the field names come from it; units in brackets are dropped from the names
(``utilization.gpu [%]`` is ``utilization.gpu``). ``noheader`` output has no names, so the caller
passes the fields it queried, in order. ``nvidia-smi`` accepts aliases (``clocks.sm``) and prints
the canonical name in the header (``clocks.current.sm [MHz]``): the keys are whatever the header
or the caller says.

Values: ``nvidia-smi`` pads each with a leading space and, without ``nounits``, appends the unit
(``99.43 W``, ``81559 MiB``, ``0 %``). Numbers become int or float (float when printed with a
decimal point, so ``700.00 W`` is 700.0); ``[N/A]``, ``N/A``, ``Not Supported`` and
``[Not Supported]`` become None; any other text (``P0``, ``Enabled``, ``0x0000000000000001``,
driver versions such as ``580.159.04``, timestamps, names) is kept as the string printed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

_MISSING = {"[N/A]", "N/A", "Not Supported", "[Not Supported]"}
# "utilization.gpu [%]" -> "utilization.gpu"
_HEADER_UNIT = re.compile(r"\s*\[[^\]]*\]$")
# A number, optionally followed by the unit nvidia-smi prints after it.
_NUMBER = re.compile(r"^(?P<number>-?\d+(?P<fraction>\.\d+)?)(?:\s*(?:%|[KMG]iB|[KMGT]?W|[KMG]?Hz|C))?$")


@dataclass
class NvidiaSmiRow:
    values: dict[str, int | float | str | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.values)


def _value(text: str) -> int | float | str | None:
    text = text.strip()
    if text in _MISSING:
        return None
    number = _NUMBER.match(text)
    if not number:
        return text
    if number.group("fraction"):
        return float(number.group("number"))
    return int(number.group("number"))


def _field_name(header: str) -> str:
    return _HEADER_UNIT.sub("", header.strip())


def parse(text: str, fields: list[str] | None = None) -> list[NvidiaSmiRow]:
    """One row per GPU line, keyed by the query field names.

    Without ``fields`` the first non-empty line must be the CSV header. With ``fields`` every
    line is data, except a first line that is the header of those same fields (so the same call
    reads output with or without ``noheader``). A line whose cell count differs from the field
    count is an error: it means the fields do not describe this output.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    rows = list(csv.reader(lines, skipinitialspace=True))
    if not rows:
        return []
    if fields is None:
        names = [_field_name(cell) for cell in rows[0]]
        rows = rows[1:]
    else:
        names = list(fields)
        if [_field_name(cell) for cell in rows[0]] == names:
            rows = rows[1:]

    parsed = []
    for cells in rows:
        if len(cells) != len(names):
            raise ValueError(f"expected {len(names)} values ({', '.join(names)}), got {len(cells)}: {cells}")
        parsed.append(NvidiaSmiRow({name: _value(cell) for name, cell in zip(names, cells)}))
    return parsed
