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

- JetPack 4.2 prints ``CPU Cluster Switching: Disabled`` and ``Fan: speed=0``;
- Orin (JetPack 5) adds ``DLA0_CORE: Online=1 MinFreq=...`` and ``FAN Dynamic Speed control=...``
  lines, which are not CPU/GPU/EMC clocks and are skipped; its CPU lines come in the shell's glob
  order (cpu0, cpu1, cpu10, cpu11, cpu2, ...) and are returned in that printed order;
- JetPack 7 (R39) drops ``Online=`` from the CPU lines (``cpu0:  Governor=...``) and prints
  ``Online CPUs: 0-5, Offline CPUs: `` instead: a CPU's ``online`` then comes from those lists,
  and is None when neither lists it. It also drops ``FreqOverride=`` from the EMC line and adds
  ``Active GPU TPCs: 4``;
- copies cut off in the middle: whatever is missing is None.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_CPU = re.compile(
    r"^(?P<name>cpu\d+):\s+(?:Online=(?P<online>\d)\s+)?(?:Governor=\S+\s+)?"
    r"MinFreq=(?P<min>\d+)\s+MaxFreq=(?P<max>\d+)\s+CurrentFreq=(?P<cur>\d+)"
)
_GPU = re.compile(r"^GPU MinFreq=(?P<min>\d+)\s+MaxFreq=(?P<max>\d+)\s+CurrentFreq=(?P<cur>\d+)")
_EMC = re.compile(r"^EMC MinFreq=(?P<min>\d+)\s+MaxFreq=(?P<max>\d+)\s+CurrentFreq=(?P<cur>\d+)")
_MODE = re.compile(r"^NV Power Mode:\s*(?P<name>\S.*?)\s*$")
# "Online CPUs: 0,3-5" (R32) or "Online CPUs: 0-5, Offline CPUs: 6-7" (R39): kernel CPU lists.
_ONLINE_LIST = re.compile(r"^Online CPUs:\s*(?P<online>[\d,\-]*?)(?:,?\s*Offline CPUs:\s*(?P<offline>[\d,\-]*))?\s*$")

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
        return asdict(self)


def _cpu_list(text: str | None) -> set[int]:
    """The numbers of a kernel CPU list such as "0,3-5"."""
    numbers: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            first, last = part.split("-")
            numbers.update(range(int(first), int(last) + 1))
        elif part.strip():
            numbers.add(int(part))
    return numbers


def parse(text: str) -> ClocksReport:
    """Read the power mode and the CPU, GPU and EMC clocks out of ``jetson_clocks --show``."""
    report = ClocksReport(None, None, None, None)
    cpus: list[CpuClock] = []
    online: set[int] = set()
    offline: set[int] = set()

    for raw in text.splitlines():
        line = raw.strip()
        if m := _CPU.match(line):
            cpus.append(CpuClock(
                m.group("name"),
                None if m.group("online") is None else m.group("online") == "1",
                int(m.group("min")) * _KHZ,
                int(m.group("max")) * _KHZ,
                int(m.group("cur")) * _KHZ,
            ))
        elif m := _GPU.match(line):
            report.gpu = ClockRange(int(m.group("min")), int(m.group("max")), int(m.group("cur")))
        elif m := _EMC.match(line):
            report.emc = ClockRange(int(m.group("min")), int(m.group("max")), int(m.group("cur")))
        elif m := _MODE.match(line):
            report.power_mode = m.group("name")
        elif m := _ONLINE_LIST.match(line):
            online = _cpu_list(m.group("online"))
            offline = _cpu_list(m.group("offline"))

    for cpu in cpus:
        if cpu.online is None:
            number = int(cpu.name[3:])
            cpu.online = True if number in online else False if number in offline else None
    report.cpus = cpus or None
    return report
