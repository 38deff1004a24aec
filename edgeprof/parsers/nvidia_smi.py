"""Parse what ``nvidia-smi`` prints: ``--query-gpu=... --format=csv[,noheader][,nounits]`` output and the
default table, one row per GPU.

CSV: with a header, the field names come from it; units in brackets are dropped from the names
(``utilization.gpu [%]`` is ``utilization.gpu``). ``noheader`` output has no names: they come from the
caller, or from the ``--query-gpu=`` of a pasted command line. ``nvidia-smi`` accepts aliases (``clocks.sm``)
and prints the canonical name in the header (``clocks.current.sm [MHz]``): the keys are whatever the header,
the caller or the command says.

The table (``nvidia-smi`` without options) has two rows per GPU up to driver 4xx and a third (``MIG M.``)
from driver 450 on, and a wider layout from driver 5xx on (all seen in tests/parsers/logs/nvidia_smi/SOURCES.md).
Its figures are returned under the ``--query-gpu`` names that print the same values: ``index``, ``name``
(truncated with ``...`` as printed), ``persistence_mode``, ``pci.bus_id``, ``display_active``,
``ecc.errors.uncorrected.volatile.total``, ``fan.speed``, ``temperature.gpu``, ``pstate``, ``power.draw``,
``power.limit``, ``memory.used``, ``memory.total``, ``utilization.gpu``, ``compute_mode``,
``mig.mode.current`` (driver 450+), with ``driver_version``, ``cuda_version`` (from driver 410 on) and
``timestamp`` (the date line above the table, as printed) from the table's head, and ``processes``: the
process table's rows of this GPU as ``pid``, ``type``, ``process_name``, ``used_memory``.

Values: ``nvidia-smi`` pads each with a leading space and appends the unit (``99.43 W``, ``81559 MiB``, ``0 %``;
the table writes ``113W``, ``67C``). Numbers become int or float (float when printed with a decimal point, so
``700.00 W`` is 700.0); ``[N/A]``, ``N/A``, ``Not Supported`` and ``[Not Supported]`` become None; any other
text (``P0``, ``Enabled``, ``0x0000000000000001``, driver versions such as ``580.159.04``, timestamps, names)
is kept as the string printed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .lines import lines_of
from .paste import Invocation, command_pattern, is_command, is_prompt

_MISSING = {"[N/A]", "N/A", "Not Supported", "[Not Supported]"}
# A number, optionally followed by the unit nvidia-smi prints after it. Longer digit strings than 18 are
# kept as text (int() refuses strings past 4300 digits).
_NUMBER = re.compile(r"^(?P<number>-?\d{1,18}(?P<fraction>\.\d+)?)(?:\s*(?:%|[KMG]iB|[KMGT]?W|[KMG]?Hz|C))?$")
# A header: field names as nvidia-smi prints them ("utilization.gpu", "clocks_event_reasons.active"), each
# with its unit in brackets when the query has units ("memory.used [MiB]"), separated by ", ".
_HEADER_CELL = r"[a-z][a-z0-9_.]*(?: \[[^\],]*\])?"
_HEADER = re.compile(rf"\s*{_HEADER_CELL}(?:\s*,\s*{_HEADER_CELL})*\s*")
_COMMAND = command_pattern("nvidia-smi")
_QUERY = re.compile(r"--query-gpu[= ]\s*['\"]?([\w.,]+)")
_FORMAT = re.compile(r"--format[= ]\s*['\"]?([\w,]+)")

# The table's head, "| NVIDIA-SMI 384.111    Driver Version: 384.111 [   CUDA Version: 13.0] |".
_TITLE = re.compile(r"NVIDIA-SMI\s+\S+\s+Driver Version:\s*(?P<driver>\S+)(?:\s+CUDA Version:\s*(?P<cuda>\S+))?")
# The date nvidia-smi prints above the table ("Wed May 15 13:02:20 2019").
_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}")
# Process types in the process table: compute, graphics, both, and MPS (nvidia-smi(1), "Type").
_PROCESS_TYPES = {"C", "G", "C+G", "M", "M+C", "M+G", "M+C+G"}
# A table is a few GPUs and their processes; more than this in one table is not nvidia-smi output.
_MAX_GPUS = 1024
_MAX_PROCESSES = 10_000


@dataclass
class NvidiaSmiRow:
    values: dict[str, int | float | str | list | None] = field(default_factory=dict)

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


def _pair(text: str) -> tuple[int | float | str | None, int | float | str | None]:
    """"113W / 250W" -> (113, 250); "N/A /  N/A" -> (None, None); "Not Supported" -> (None, None)."""
    first, _, second = " ".join(text.split()).partition(" / ")
    return _value(first), _value(second) if second else None


class _Table:
    """One default-table output being read: its head, its GPUs, then its process table."""

    def __init__(self, title: re.Match, timestamp: str | None, number: int) -> None:
        self.head = {"driver_version": title.group("driver"), "cuda_version": title.group("cuda"),
                     "timestamp": timestamp}
        self.gpus: list[tuple[int, int, dict]] = []  # (first line, last line, values)
        self.state = "head"  # then "gpus", "process head", "processes"
        self.row = 0  # row within the current GPU
        self.mig = False
        self.last_line = number
        self.processes = 0

    def line(self, number: int, line: str) -> bool:
        """Read one line of the table; False when the line is not part of it (the table is over)."""
        if line.startswith("+"):
            if self.state == "processes":
                return False  # the process table's closing line: the table is over
            self.row = 0
            return True
        if not line:
            return self.state != "head"  # blank lines come between the GPUs and the process table
        if not line.startswith("|"):
            return False
        self.last_line = number
        inner = line.strip("|")
        if self.state == "head":
            self.state = "gpus" if inner.startswith("=") else "head"
        elif inner.lstrip().startswith("Processes:"):
            self.state = "process head"
        elif self.state == "process head":
            self.state = "processes" if inner.startswith("=") else "process head"
        elif self.state == "processes":
            self.process(inner)
        elif self.state == "gpus":
            self.gpu_row(number, inner.split("|"))
        return True

    def gpu_row(self, number: int, cells: list[str]) -> None:
        if len(cells) != 3:
            return
        first, second, third = cells
        if self.row == 0:
            words = first.split()
            if len(words) < 3 or not words[0].isdigit() or len(self.gpus) >= _MAX_GPUS:
                return
            bus = second.split()
            values = {"index": int(words[0]), "name": " ".join(words[1:-1]), "persistence_mode": words[-1],
                      "pci.bus_id": bus[0] if bus else None, "display_active": _value(" ".join(bus[1:])),
                      "ecc.errors.uncorrected.volatile.total": _value(third)}
            self.gpus.append((number, number, values))
        elif self.row == 1 and self.gpus:
            words = first.split()
            values = self.gpus[-1][2]
            values["fan.speed"], values["temperature.gpu"], values["pstate"] = (
                _value(word) for word in (words + ["N/A"] * 3)[:3])
            values["power.draw"], values["power.limit"] = _pair(" ".join(words[3:]))
            values["memory.used"], values["memory.total"] = _pair(second)
            utilization, _, mode = third.strip().partition(" ")
            values["utilization.gpu"], values["compute_mode"] = _value(utilization), _value(mode)
        elif self.row == 2 and self.gpus:
            self.gpus[-1][2]["mig.mode.current"] = _value(third)
            self.mig = True
        else:
            return
        if self.gpus:
            first_line, _, values = self.gpus[-1]
            self.gpus[-1] = (first_line, number, values)
        self.row += 1

    def process(self, inner: str) -> None:
        """"    0     17059      G   /opt/ros/kinetic/lib/rviz/rviz                 5MiB " (driver 4xx) or
        "    0   N/A  N/A            3507      G   /usr/lib/xorg/Xorg                        0MiB " (450+)."""
        words = inner.split()
        if len(words) < 4 or self.processes >= _MAX_PROCESSES:
            return
        for at in range(1, len(words) - 2):
            if words[at].isdigit() and words[at + 1] in _PROCESS_TYPES:
                break
        else:
            return  # "No running processes found", or not a process row
        index = _value(words[0])
        for _, _, values in self.gpus:
            if values["index"] == index:
                values.setdefault("processes", []).append({
                    "pid": int(words[at]), "type": words[at + 1], "process_name": " ".join(words[at + 2:-1]),
                    "used_memory": _value(words[-1])})
                self.processes += 1
                return

    def rows(self) -> Iterator[tuple[int, int, NvidiaSmiRow]]:
        for first_line, last_line, values in self.gpus:
            yield first_line, last_line, NvidiaSmiRow({**values, **self.head, "processes": values.get("processes", [])})

    def format(self) -> str:
        layout = "three rows per GPU (MIG M.)" if self.mig else "two rows per GPU"
        return f"nvidia-smi table, driver {self.head['driver_version']}, {layout}"


class _Reader:
    """The state of reading nvidia-smi output: the CSV field names in force, a table being read, and the
    invocation being read."""

    def __init__(self, fields: list[str] | None) -> None:
        self.given = list(fields) if fields is not None else None
        self.names = self.given
        self.command_fields: list[str] | None = None  # --query-gpu= of a pasted command with a header
        self.format = "nvidia-smi --query-gpu CSV without header (fields given)"
        self.count = 1
        self.command: str | None = None
        self.rows = 0  # rows of the current invocation
        self.any_rows = False
        self.foreign = False  # after a pasted query of something else than GPUs (--query-compute-apps=...)
        self.table: _Table | None = None
        self.previous = ""  # the line before, for the table's date line

    def next_invocation(self, command: str | None) -> None:
        self.count += bool(self.rows or self.command)
        self.command, self.rows = command, 0

    def line(self, number: int, line: str) -> Iterator[Invocation]:
        stripped = line.strip()
        if self.table:
            if self.table.line(number, stripped):
                return
            yield from self.end_table()
        previous = self.previous
        if not stripped.startswith("+"):
            self.previous = stripped  # the table's top border comes between its date and its title
        if not stripped:
            return
        if "nvidia-smi" in line and is_command(_COMMAND, line):
            self.command_line(line)
        elif stripped.startswith("|") and (title := _TITLE.search(stripped)):
            if self.rows:
                self.next_invocation(None)  # a second table: the next run, pasted without its command
            self.foreign = False
            self.table = _Table(title, previous if _DATE.fullmatch(previous) else None, number)
        elif not self.foreign:
            yield from self.csv_line(number, line)

    def command_line(self, line: str) -> None:
        self.next_invocation(line.strip())
        query = _QUERY.search(line)
        form = _FORMAT.search(line)
        self.foreign = query is None and "--query-" in line
        self.command_fields = None
        self.names = self.given
        if query and form and "noheader" in form.group(1):
            self.names = [name.strip() for name in query.group(1).split(",") if name.strip()]
            self.format = "nvidia-smi --query-gpu CSV without header (fields from the pasted command)"
        elif query:
            # The header below names them; a paste that lost it still has the command's fields.
            self.command_fields = [name.strip() for name in query.group(1).split(",") if name.strip()]

    def csv_line(self, number: int, line: str) -> Iterator[Invocation]:
        if line.lstrip()[:1].islower() and _HEADER.fullmatch(line):  # headers start with a field name
            if self.rows:
                self.next_invocation(None)  # a second header: the next run, pasted without its command
            self.names = [_field_name(cell) for cell in _cells(line)]
            self.format = "nvidia-smi --query-gpu CSV with header"
            return
        names = self.names
        if (names is None and not self.command_fields) or is_prompt(line):
            return  # no fields to read a row with, or a prompt (with another command or none)
        cells = _cells(line)
        if names is None and self.command_fields and len(cells) == len(self.command_fields):
            names = self.command_fields
            self.format = "nvidia-smi --query-gpu CSV, header not pasted (fields from the pasted command)"
        if names is None:
            return
        if len(cells) != len(names):
            if self.given is not None and not self.any_rows and names == self.given and self.command is None:
                raise ValueError(f"expected {len(names)} values ({', '.join(names)}), got {len(cells)}: {cells}")
            return
        self.rows += 1
        self.any_rows = True
        yield Invocation(self.count, number, number, self.command, self.format,
                         NvidiaSmiRow({name: _value(cell) for name, cell in zip(names, cells)}))

    def end_table(self) -> Iterator[Invocation]:
        table, self.table = self.table, None
        if table is None:
            return
        for first_line, last_line, row in table.rows():
            self.rows += 1
            self.any_rows = True
            yield Invocation(self.count, first_line, last_line, self.command, table.format(), row)


def invocations(source: str | Iterable[str], fields: list[str] | None = None) -> Iterator[Invocation]:
    """One `Invocation` per GPU row of `source` (text or lines), in order; its number is the nvidia-smi run
    it belongs to (a pasted command line, a second CSV header or a second table starts the next one).

    CSV field names come from the header, else from ``fields``, else from the ``--query-gpu=`` of a pasted
    command line. Lines that are neither rows of the fields in force nor a table (a prompt, a date, the output
    of another nvidia-smi command; all of a ``--query-compute-apps`` or other non-GPU query) are skipped, except
    that when ``fields`` is given, no command line was pasted and the first data line has another number of
    values, it is an error: those fields do not describe this output.
    """
    reader = _Reader(fields)
    for number, line in enumerate(lines_of(source), 1):
        yield from reader.line(number, line)
    yield from reader.end_table()


def parse(source: str | Iterable[str], fields: list[str] | None = None) -> list[NvidiaSmiRow]:
    """One row per GPU of `source` (text or lines), every invocation's; see `invocations`.

    With ``fields`` the same call reads CSV output with or without ``noheader``.
    """
    return [invocation.record for invocation in invocations(source, fields)]
