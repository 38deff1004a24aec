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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .lines import lines_of
from .paste import Invocation, command_pattern, is_command

_MISSING = {"[N/A]", "N/A", "Not Supported", "[Not Supported]"}
# A number, optionally followed by the unit nvidia-smi prints after it. Longer digit strings than 18 are
# kept as text (int() refuses strings past 4300 digits).
# A header: field names as nvidia-smi prints them ("utilization.gpu", "clocks_event_reasons.active"), each
# with its unit in brackets when the query has units ("memory.used [MiB]"), separated by ", ".
_HEADER_CELL = r"[a-z][a-z0-9_.]*(?: \[[^\],]*\])?"
_HEADER = re.compile(rf"\s*{_HEADER_CELL}(?:\s*,\s*{_HEADER_CELL})*\s*")
_COMMAND = command_pattern("nvidia-smi")
_QUERY = re.compile(r"--query-gpu[= ]\s*['\"]?([\w.,]+)")
_FORMAT = re.compile(r"--format[= ]\s*['\"]?[\w,]+")
_NUMBER = re.compile(r"^(?P<number>-?\d{1,18}(?P<fraction>\.\d+)?)(?:\s*(?:%|[KMG]iB|[KMGT]?W|[KMG]?Hz|C))?$")


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
    """"utilization.gpu [%]" -> "utilization.gpu": the unit in brackets at the end goes."""
    header = header.strip()
    unit = header.rfind("[")
    if header.endswith("]") and unit >= 0 and "]" not in header[unit:-1]:
        return header[:unit].rstrip()
    return header


def _cells(line: str) -> list[str]:
    # One line at a time: nvidia-smi quotes nothing, and a stray quote must not join lines into one cell.
    return next(csv.reader([line], skipinitialspace=True))


class _Query:
    """The state of reading CSV output: the field names in force and the invocation being read."""

    def __init__(self, fields: list[str] | None) -> None:
        self.given = list(fields) if fields is not None else None
        self.names = self.given
        self.format = "nvidia-smi --query-gpu CSV without header (fields given)" if fields else None
        self.count = 1
        self.command: str | None = None
        self.rows = 0  # rows of the current invocation
        self.any_rows = False

    def next_invocation(self, command: str | None) -> None:
        self.count += bool(self.rows or self.command)
        self.command, self.rows = command, 0

    def command_line(self, line: str) -> None:
        self.next_invocation(line.strip())
        query = _QUERY.search(line)
        if query and "noheader" in (_FORMAT.search(line) or [""])[0]:
            self.names = [name.strip() for name in query.group(1).split(",") if name.strip()]
            self.format = "nvidia-smi --query-gpu CSV without header (fields from the pasted command)"
        elif query:
            self.names = self.given  # the header below names them

    def header(self, line: str) -> None:
        if self.rows:
            self.next_invocation(None)  # a second header: the next run, pasted without its command
        self.names = [_field_name(cell) for cell in _cells(line)]
        self.format = "nvidia-smi --query-gpu CSV with header"


def invocations(source: str | Iterable[str], fields: list[str] | None = None) -> Iterator[Invocation]:
    """One `Invocation` per GPU row of `source` (text or lines), in order; its number is the nvidia-smi run
    it belongs to (a pasted command line or a second header starts the next one).

    Field names come from the CSV header, else from ``fields``, else from the ``--query-gpu=`` of a pasted
    command line with ``--format=csv,noheader``. Lines that are not rows of the fields in force (a prompt, a
    date, other output) are skipped, except that when ``fields`` is given and the first data line has
    another number of values it is an error: those fields do not describe this output.
    """
    query = _Query(fields)
    for number, line in enumerate(lines_of(source), 1):
        if not line.strip():
            continue
        if "nvidia-smi" in line and is_command(_COMMAND, line):
            query.command_line(line)
            continue
        if _HEADER.fullmatch(line):
            query.header(line)
            continue
        if query.names is None:
            continue
        cells = _cells(line)
        if len(cells) != len(query.names):
            if query.given is not None and not query.any_rows and query.names == query.given:
                raise ValueError(f"expected {len(query.names)} values ({', '.join(query.names)}), "
                                 f"got {len(cells)}: {cells}")
            continue
        query.rows += 1
        query.any_rows = True
        yield Invocation(query.count, number, number, query.command, query.format,
                         NvidiaSmiRow({name: _value(cell) for name, cell in zip(query.names, cells)}))


def parse(source: str | Iterable[str], fields: list[str] | None = None) -> list[NvidiaSmiRow]:
    """One row per GPU line of `source` (text or lines), keyed by the query field names; see `invocations`.

    With ``fields`` the same call reads output with or without ``noheader``.
    """
    return [invocation.record for invocation in invocations(source, fields)]
