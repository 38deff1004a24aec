"""Parse ``tegrastats`` output, one object per line (each line read by edgeprof.onboard.tegrastats_line, which the
board's sampler runs too).

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

from ..onboard.tegrastats_line import TIMESTAMP, fields
from .lines import lines_of
from .paste import Invocation, command_pattern, is_command

_COMMAND = command_pattern("tegrastats")
_THREE_RAILS = re.compile(r"\dmW/\d+mW/\d")


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


# The entries repeat from line to line: the samples share each (CpuSample is frozen).
@functools.lru_cache(maxsize=4096)
def _cpu(entry: tuple[int, int | None] | None) -> CpuSample | None:
    return CpuSample(*entry) if entry else None


def parse_line(line: str) -> TegrastatsSample | None:
    """Read one tegrastats line (edgeprof.onboard.tegrastats_line, which the board's sampler runs too); None
    when the line is not a tegrastats sample."""
    found = fields(line)
    if found is None:
        return None
    cpus, temps, rails = found["cpus"], found["temps_c"], found["rails_mw"]
    return TegrastatsSample(
        timestamp=found["timestamp"], ram_used_mb=found["ram_used_mb"], ram_total_mb=found["ram_total_mb"],
        swap_used_mb=found["swap_used_mb"], cpus=[_cpu(entry) for entry in cpus] if cpus is not None else None,
        emc_load_pct=found["emc_load_pct"], emc_freq_mhz=found["emc_freq_mhz"],
        gpu_load_pct=found["gpu_load_pct"], gpu_freq_mhz=found["gpu_freq_mhz"],
        temps_c=temps or None,
        rails_mw={name: RailReading(cur, avg) for name, (cur, avg) in rails.items()} or None)


def layout(line: str) -> str:
    """The release family whose tegrastats writes a line like this one (see the variants above)."""
    if "cpu [" in line:
        return "tegrastats, L4T R24-R28.1 layout (cpu [...]@MHz, EMC, GR3D)"
    if _THREE_RAILS.search(line):
        return "tegrastats, L4T R39 layout (rails cur/avg/max in mW)"
    if "mW/" in line or TIMESTAMP.match(line):
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
