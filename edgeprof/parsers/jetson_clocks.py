"""Parse what ``jetson_clocks --show`` prints on a Jetson.

The L4T script (``/usr/bin/jetson_clocks``, R32 and later) prints, in this order::

    SOC family:tegra186  Machine:quill
    Online CPUs: 0,3-5
    cpu0: Online=1 Governor=schedutil MinFreq=345600 MaxFreq=2035200 CurrentFreq=2035200 IdleStates: C1=1 c7=1
    GPU MinFreq=114750000 MaxFreq=1300500000 CurrentFreq=1300500000
    EMC MinFreq=40800000 MaxFreq=1866000000 CurrentFreq=1866000000 FreqOverride=1
    Fan: PWM=0
    NV Power Mode: MAXN

Units: the CPU figures are ``scaling_{min,max,cur}_freq`` from cpufreq sysfs, which are in kHz;
the GPU figures come from devfreq and the EMC figures from the BPMP clock debugfs, both in Hz.
Every ``*_hz`` value returned here is in Hz, so the CPU figures are multiplied by 1000.

Variants handled, all from real output (tests/parsers/logs/jetson_clocks/SOURCES.md):

- L4T R28 and older ship ``jetson_clocks.sh``, whose CPU lines read ``cpu0: Gonvernor=interactive MinFreq=...``
  (sic) without ``Online=``; ``Online CPUs: 0-3`` says which are online;
- pastes: a prompt and the command before each output, ``--show`` before and after ``sudo jetson_clocks`` (one
  invocation each; the last is the record), the poster's ``# ...`` notes on lines of their own or after the
  mode name, CPU lines wrapped before ``IdleStates``, markdown fences between outputs;
- JetPack 4.2 prints ``CPU Cluster Switching: Disabled`` and ``Fan: speed=0``;
- Orin (JetPack 5) adds ``DLA0_CORE: Online=1 MinFreq=...`` and ``FAN Dynamic Speed control=...``
  lines, which are not CPU/GPU/EMC clocks and are skipped; its CPU lines come in the shell's glob
  order (cpu0, cpu1, cpu10, cpu11, cpu2, ...) and are returned in that printed order;
- JetPack 7 (L4T R38 on Thor, R39 on Orin) drops ``Online=`` from the CPU lines (``cpu0:  Governor=...``)
  and prints ``Online CPUs: 0-5, Offline CPUs: `` instead: a CPU's ``online`` then comes from those lists,
  and is None when neither lists it. On Orin it also drops ``FreqOverride=`` from the EMC line and adds
  ``Active GPU TPCs: 4``; on Thor (R38.2) the GPU line is one per GPU devfreq device, ``gpu-gpc-0 MinFreq=...``
  (the graphics clock, reported as the GPU) and ``gpu-nvd-0 MinFreq=...`` (skipped);
- Canonical's L4T tool snap runs the script as ``snap run nvpmodel.jetson-clocks-show`` and, confined,
  adds ``Failed to retrieve unit state: Access denied`` lines (skipped);
- copies cut off in the middle: whatever is missing is None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .lines import lines_of
from .paste import Invocation, command_pattern, is_command

# Frequencies and CPU numbers are at most 18 digits here (int() refuses strings past 4300 digits).
_N = r"\d{1,18}"
# L4T R28's jetson_clocks.sh printed "Gonvernor=" (its own typo, kept by every release of the script up to
# R28.x: L4T R28.1 TX1 output in hordiales/jetson-tx1-dev SCRIPTS.md).
_CPU = re.compile(
    rf"^(?P<name>cpu{_N}):\s+(?:Online=(?P<online>\d)\s+)?(?:(?P<governor>Governor|Gonvernor)=\S+\s+)?"
    rf"MinFreq=(?P<min>{_N})\s+MaxFreq=(?P<max>{_N})\s+CurrentFreq=(?P<cur>{_N})"
)
# Thor (L4T R38.2) names the GPU's devfreq devices instead of printing "GPU": "gpu-gpc-0 MinFreq=1575000000 ..."
# and "gpu-nvd-0 MinFreq=...", as posted in https://github.com/wang-junjian/wang-junjian.github.io (the Jetson Thor
# guide of 2025-10-04). gpu-gpc-0 is the graphics clock that jtop reads on Thor too
# (https://github.com/rbonghi/jetson_stats/pull/732); only that one is the GPU, so a second GPC line cannot
# start a second output.
_GPU = re.compile(rf"^(?:GPU|gpu-gpc-0) MinFreq=(?P<min>{_N})\s+MaxFreq=(?P<max>{_N})\s+CurrentFreq=(?P<cur>{_N})")
_EMC = re.compile(rf"^EMC MinFreq=(?P<min>{_N})\s+MaxFreq=(?P<max>{_N})\s+CurrentFreq=(?P<cur>{_N})")
# The name is the rest of the line, right-stripped after the match (a lazy name before "\s*$" is quadratic
# on a long run of spaces).
_MODE = re.compile(r"^NV Power Mode:\s*(?P<name>\S.*)")
# "Online CPUs: 0,3-5" (R32) or "Online CPUs: 0-5, Offline CPUs: 6-7" (R39): kernel CPU lists.
_ONLINE_LIST = re.compile(r"^Online CPUs:\s*(?P<online>[\d,\-]*)(?:\s*Offline CPUs:\s*(?P<offline>[\d,\-]*))?\s*$")
_CPU_RANGE = re.compile(rf"({_N})(?:-({_N}))?")
# The kernel's CPU numbers stay below CONFIG_NR_CPUS, at most 8192 (arch/x86/Kconfig, MAXSMP); a list that
# names more is not a CPU list, and reading it as one could take any amount of memory.
_MAX_CPUS = 8192

_SOC = re.compile(r"^SOC family:")
# What a line must contain to matter (Lines.select passes over the others without a Python step).
_KEYWORDS = ("cpu", "GPU ", "gpu-gpc-0 ", "EMC ", "NV Power Mode", "Online CPUs", "SOC family", "jetson_clocks",
             "jetson-clocks")
# "nvpmodel.jetson-clocks-show" is the snap's name for "jetson_clocks --show" (paste._LAUNCH cites it).
_COMMAND = command_pattern(r"jetson_clocks|nvpmodel\.jetson-clocks-show")

# cpufreq reports kHz; everything returned is Hz.
_KHZ = 1000


@dataclass
class ClockRange:
    min_hz: int
    max_hz: int
    cur_hz: int


@dataclass
class CpuClock:
    name: str
    online: bool | None
    min_hz: int
    max_hz: int
    cur_hz: int


@dataclass
class ClocksReport:
    power_mode: str | None
    gpu: ClockRange | None
    emc: ClockRange | None
    cpus: list[CpuClock] | None

    def to_dict(self) -> dict:
        # What asdict gives, without its deep copy of every int: a lab reads the clocks twice an item.
        return {"power_mode": self.power_mode, "gpu": self.gpu and dict(vars(self.gpu)),
                "emc": self.emc and dict(vars(self.emc)),
                "cpus": None if self.cpus is None else [dict(vars(cpu)) for cpu in self.cpus]}


def _cpu_list(text: str | None) -> set[int]:
    """The numbers of a kernel CPU list such as "0,3-5"; an empty set for anything else."""
    numbers: set[int] = set()
    for part in (text or "").strip(",").split(","):
        found = _CPU_RANGE.fullmatch(part)
        if not found:
            return set()
        first = int(found.group(1))
        last = int(found.group(2) or first)
        if not first <= last < _MAX_CPUS:
            return set()
        numbers.update(range(first, last + 1))
    return numbers


class _Show:
    """One ``--show`` output as far as the lines go."""

    def __init__(self, first_line: int, command: str | None = None) -> None:
        self.report = ClocksReport(None, None, None, None)
        self.cpus: dict[str, CpuClock] = {}
        self.online: set[int] = set()
        self.offline: set[int] = set()
        self.first_line = self.last_line = first_line
        self.command = command
        self.soc = self.lists = self.offline_list = self.legacy = False

    def empty(self) -> bool:
        r = self.report
        return not (self.cpus or self.soc or self.lists or r.gpu or r.emc or r.power_mode)

    def invocation(self, number: int) -> Invocation:
        for cpu in self.cpus.values():
            if cpu.online is None:
                index = int(cpu.name[3:])
                cpu.online = True if index in self.online else False if index in self.offline else None
        self.report.cpus = list(self.cpus.values()) or None
        if self.legacy:
            form = "jetson_clocks.sh --show, L4T R28 and older (Gonvernor=)"
        elif self.offline_list:
            form = "jetson_clocks --show, JetPack 7: L4T R38 and later (Offline CPUs list, no Online= per CPU)"
        else:
            form = "jetson_clocks --show, L4T R32 to R36"
        return Invocation(number, self.first_line, self.last_line, self.command, form, self.report)


def invocations(source: str | Iterable[str]) -> Iterator[Invocation]:
    """Every ``--show`` output in `source` (text or lines), in order.

    A new one starts at a pasted jetson_clocks command line, a second "SOC family:" line, or a CPU, GPU,
    EMC or power-mode line that the current one already has (two outputs pasted without their prompts).
    """
    count = 0
    show = _Show(1)

    def next_show(number: int, command: str | None = None) -> Iterator[Invocation]:
        nonlocal count, show
        if not show.empty():
            count += 1
            yield show.invocation(count)
        show = _Show(number, command)

    for number, raw, _ in lines_of(source).select(_KEYWORDS):
        line = raw.strip()
        report = show.report
        if m := _CPU.match(line):
            if m.group("name") in show.cpus:
                yield from next_show(number)
            if len(show.cpus) < _MAX_CPUS:
                show.cpus[m.group("name")] = CpuClock(
                    m.group("name"),
                    None if m.group("online") is None else m.group("online") == "1",
                    int(m.group("min")) * _KHZ,
                    int(m.group("max")) * _KHZ,
                    int(m.group("cur")) * _KHZ,
                )
            show.legacy = show.legacy or m.group("governor") == "Gonvernor"
        elif m := _GPU.match(line):
            if report.gpu:
                yield from next_show(number)
            show.report.gpu = ClockRange(int(m.group("min")), int(m.group("max")), int(m.group("cur")))
        elif m := _EMC.match(line):
            if report.emc:
                yield from next_show(number)
            show.report.emc = ClockRange(int(m.group("min")), int(m.group("max")), int(m.group("cur")))
        elif m := _MODE.match(line):
            if report.power_mode:
                yield from next_show(number)
            show.report.power_mode = m.group("name").split(" #", 1)[0].rstrip()  # "MAXN # a poster's note"
        elif m := _ONLINE_LIST.match(line):
            if show.lists:
                yield from next_show(number)
            show.lists = True
            show.offline_list = m.group("offline") is not None
            show.online = _cpu_list(m.group("online"))
            show.offline = _cpu_list(m.group("offline"))
        elif _SOC.match(line):
            if not show.empty():
                yield from next_show(number)
            show.soc = True
        elif ("jetson_clocks" in line or "jetson-clocks" in line) and is_command(_COMMAND, line):
            yield from next_show(number, line)
            continue
        else:
            continue
        show.last_line = number
    yield from next_show(0)


def choose(found: Iterable[Invocation]) -> Invocation | None:
    """The invocation `parse` reports: the last one with a clock or a power mode (an output cut off after its
    first line is passed over), else the last one."""
    last = last_with_output = None
    for last in found:
        report = last.record
        if report.cpus or report.gpu or report.emc or report.power_mode:
            last_with_output = last
    return last_with_output or last


def parse(source: str | Iterable[str]) -> ClocksReport:
    """The power mode and the CPU, GPU and EMC clocks of the last ``jetson_clocks --show`` in `source`."""
    chosen = choose(invocations(source))
    return chosen.record if chosen else ClocksReport(None, None, None, None)
