"""Parse ``tegrastats`` output, one object per line.

A line reads, with fields present or absent by board, release and privilege::

    [11-23-2026 18:36:11 ]RAM 2344/7852MB (lfb 1154x4MB) SWAP 0/3926MB (cached 0MB)
    CPU [1%@345,off,off,1%@345,0%@345,2%@345] EMC_FREQ 4%@1600 GR3D_FREQ 0%@624 APE 150
    PLL@37.5C ... Tdiode@34.25C VDD_SYS_GPU 152/152 ... VDD_IN 3056/3056 ...

Variants, all taken from real output (tests/parsers/logs/tegrastats/SOURCES.md):

- L4T R24 to R28.1 (TX1, early TX2): ``cpu [17%,13%,29%,5%]@408`` in lower case with one clock for all cores,
  ``EMC 1%@408``, ``GR3D 3%@76``, ``AVP``/``VDE``/``APE``/``EDP limit`` (ignored), no temperatures or rails;
- a leading ``MM-DD-YYYY HH:MM:SS`` timestamp from JetPack 5 on; it is returned as printed;
- ``SWAP`` absent when the board has no swap; TX1 and Nano print ``IRAM`` too (ignored);
- CPUs ``N%@MHz`` or ``off`` (a core powered down: its entry is None);
- ``EMC_FREQ N%`` and ``GR3D_FREQ N%`` without ``@MHz`` when the clock is not readable (non-root
  on JetPack 4, some Orin releases), and no ``EMC_FREQ`` at all on some JetPack 6 lines;
- GPU clock as ``@624`` (one GPC), ``@[305,305]`` (one figure per GPC, JetPack 6), or
  ``GR3D_FREQ @[314,314,314]`` without a load (Thor, JetPack 7); ``gpu_freq_mhz`` is the first
  GPC's. JetPack 5 prints a second ``GR3D2_FREQ`` field for the second GPC, which is ignored;
- temperatures ``NAME@37.5C``; a sensor that is off reads ``-256C`` and is None; JetPack 7
  appends the maximum seen (``cpu@45.812C/45.812C``), of which the current value is kept;
- power rails ``NAME cur/avg`` in mW without unit (TX1, TX2, Nano, Xavier), ``NAME curmW/avgmW``
  (JetPack 5 on), or ``NAME curmW/avgmW/maxmW`` (JetPack 7): ``cur`` and ``avg`` are kept. Rail
  names differ per board and release (``VDD_SYS_GPU`` on TX2 R32, ``VDD_GPU`` on TX2 R28 and TX1,
  ``POM_5V_IN`` on Nano, bare ``GPU``/``CPU``/``SYS5V`` on AGX Xavier (2019), ``VDD_GPU_SOC`` on
  AGX Orin, ``VDD_CPU_SOC_MSS`` on Thor); a name printed twice (Orin's ``NC`` channels) keeps
  its first reading;
- without root, TX2 lines lose ``APE``, the EMC/GR3D clocks, some sensors and every rail.

A field the line does not have is None. Lines without a ``RAM used/totalMB`` figure (shell
prompts, blank lines) are not tegrastats samples and are skipped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from .lines import lines_of
from .paste import Invocation, command_pattern, is_command

_TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s")
# Figures are at most 18 digits (int() refuses strings past 4300 digits; no reading comes near 18).
_N = r"\d{1,18}"
_RAM = re.compile(rf"\bRAM ({_N})/({_N})MB\b")
_SWAP = re.compile(rf"\bSWAP ({_N})/({_N})MB\b")
# The list stops at the first bracket of either kind, so that a line of "CPU [CPU [..." is read once. L4T R24
# to R28.1 print it in lower case with one clock for all cores after it: "cpu [17%,13%,29%,5%]@408".
_CPUS = re.compile(rf"\b(?P<legacy>cpu|CPU) \[(?P<list>[^\][]*)\](?:@(?P<freq>{_N}))?")
_CPU_ENTRY = re.compile(rf"^({_N})%(?:@({_N}))?$")
# "EMC_FREQ 4%@1600"; L4T R24 to R28.1: "EMC 1%@408".
_EMC = re.compile(rf"\bEMC(?:_FREQ)? ({_N})%(?:@({_N})(?!\d))?")
# "GR3D_FREQ 0%", "0%@624", "0%@[305,305]", "@[314,314,314]"; the first figure is GPC0's. L4T R24 to R28.1:
# "GR3D 3%@76".
_GR3D = re.compile(rf"\bGR3D(?:_FREQ)? (?:({_N})%)?(?:@\[?({_N})(?!\d)[\d,]*\]?)?")
# "PLL@37.5C", "CV0@-256C", "cpu@45.812C/45.812C"; the name starts with a letter, so the
# "1%@345" entries of the CPU list cannot match. A name cannot start right after a '-' either: each
# name is then tried once from its first letter (from every letter, "a-a-a-..." was quadratic).
# Both this and _RAIL are searched in text that starts with " ", and consume the character before the name instead of
# looking behind for it: a pattern that starts with a character class is scanned for in C, a
# look-behind is tried at every position (a lab summarizes ten lines a board-second).
_TEMP = re.compile(r"[^\w@-]([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?(?=\s|$)")
# "VDD_IN 3056/3056", "VDD_IN 5299mW/5299mW", "VDD_GPU 4925mW/4925mW/4925mW". The trailing
# look-ahead keeps "RAM 2344/7852MB" and "IRAM 0/252kB(...)" out.
_RAIL = re.compile(rf"\s([A-Z][A-Z0-9_]*) ({_N})(?:mW)?/({_N})(?:mW)?(?:/\d+(?:mW)?)?(?=\s|$)")

_COMMAND = command_pattern("tegrastats")
_THREE_RAILS = re.compile(r"\dmW/\d+mW/\d")

# tegrastats prints -256C for a thermal zone whose sensor is powered off.
_SENSOR_OFF = -256.0


@dataclass(frozen=True, slots=True)
class CpuSample:
    load_pct: int
    freq_mhz: int | None


@dataclass(slots=True)
class RailReading:
    cur: int
    avg: int


@dataclass(slots=True)
class TegrastatsSample:
    timestamp: str | None
    ram_used_mb: int | None
    ram_total_mb: int | None
    swap_used_mb: int | None
    cpus: list[CpuSample | None] | None
    emc_load_pct: int | None
    emc_freq_mhz: int | None
    gpu_load_pct: int | None
    gpu_freq_mhz: int | None
    temps_c: dict[str, float | None] | None
    rails_mw: dict[str, RailReading] | None

    def to_dict(self) -> dict:
        return asdict(self)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


# A board's entries repeat from line to line ("100%@2035"): each is read once (CpuSample is frozen, so
# the samples may share it).
@functools.lru_cache(maxsize=4096)
def _cpu(entry: str, shared_freq: str | None) -> CpuSample | None:
    """One entry of the CPU list: "12%@2035", "12%" (clock unreadable, or the list's one clock after it) or
    "off"."""
    found = _CPU_ENTRY.match(entry.strip())
    if not found:
        return None
    return CpuSample(int(found.group(1)), _int(found.group(2) or shared_freq))


def _search(pattern: re.Pattern, line: str, *words: str) -> re.Match | None:
    """pattern.search(line) for a pattern whose every match starts with one of `words`: the search starts where
    the first of them appears, and is not made at all without one. A failed search of a whole line costs as much
    as parsing the rest of it (SWAP on a board without swap), and a lab summarizes ten lines per board-second;
    searching from an offset still sees the characters before it (\b, look-behinds), so the match is the
    same."""
    found = [at for at in map(line.find, words) if at >= 0]
    return pattern.search(line, min(found)) if found else None


def parse_line(line: str) -> TegrastatsSample | None:
    """Read one tegrastats line; None when the line is not a tegrastats sample."""
    ram = _RAM.search(line)
    if not ram:
        return None
    timestamp = _TIMESTAMP.match(line)
    swap = _search(_SWAP, line, "SWAP ")
    cpus = _search(_CPUS, line, "CPU [", "cpu [")
    emc = _search(_EMC, line, "EMC")
    gr3d = _search(_GR3D, line, "GR3D")

    # A temperature lies between two spaces of the line, in a part that holds "@" and "C": it is searched for in
    # those parts alone, joined, which gives the same matches in the same order as the whole line at half the
    # cost (the costliest search of a sample's parse, and a lab parses ten samples a board-second).
    temps: dict[str, float | None] = {}
    candidates = [part for part in line.split(" ") if "@" in part and "C" in part]
    for name, value in _TEMP.findall(" " + " ".join(candidates)):
        reading = float(value)
        temps.setdefault(name, None if reading == _SENSOR_OFF else reading)
    rails: dict[str, RailReading] = {}
    for name, cur, avg in _RAIL.findall(" " + line):
        rails.setdefault(name, RailReading(int(cur), int(avg)))

    return TegrastatsSample(
        timestamp=timestamp.group(1) if timestamp else None,
        ram_used_mb=int(ram.group(1)),
        ram_total_mb=int(ram.group(2)),
        swap_used_mb=int(swap.group(1)) if swap else None,
        cpus=[_cpu(entry, cpus.group("freq")) for entry in cpus.group("list").split(",")] if cpus else None,
        emc_load_pct=_int(emc.group(1)) if emc else None,
        emc_freq_mhz=_int(emc.group(2)) if emc else None,
        gpu_load_pct=_int(gr3d.group(1)) if gr3d else None,
        gpu_freq_mhz=_int(gr3d.group(2)) if gr3d else None,
        temps_c=temps or None,
        rails_mw=rails or None,
    )


def layout(line: str) -> str:
    """The release family whose tegrastats writes a line like this one (see the variants above)."""
    if "cpu [" in line:
        return "tegrastats, L4T R24-R28.1 layout (cpu [...]@MHz, EMC, GR3D)"
    if _THREE_RAILS.search(line):
        return "tegrastats, L4T R39 layout (rails cur/avg/max in mW)"
    if "mW/" in line or _TIMESTAMP.match(line):
        return "tegrastats, L4T R35 and later layout (timestamp, rails in mW)"
    return "tegrastats, L4T R28.2-R32 layout (CPU [...], EMC_FREQ, GR3D_FREQ, rails cur/avg)"


def invocations(source: str | Iterable[str]) -> Iterator[Invocation]:
    """One `Invocation` per sample of `source` (text or lines), in order, as they are read; its number is
    the tegrastats run it belongs to (a pasted ``tegrastats`` command line starts the next one)."""
    count, command = 1, None
    started = False  # the current run has samples
    for number, line, _ in lines_of(source).select(("RAM ", "tegrastats")):
        sample = parse_line(line)
        if sample is not None:
            started = True
            yield Invocation(count, number, number, command, layout(line), sample)
        elif "tegrastats" in line and is_command(_COMMAND, line):
            count, command, started = count + started, line.strip(), False


def parse(source: str | Iterable[str]) -> list[TegrastatsSample]:
    """One sample per tegrastats line of ``source`` (text or lines), in order."""
    return [invocation.record for invocation in invocations(source)]
