"""One tegrastats line as plain values (Python 3.6+, standard library only): the one parser of the format.

The board sampler (board_sampler.py) reads each line with it as the line arrives, to keep the statistics of
its samples (window_stats.py); the host's edgeprof.parsers.tegrastats wraps the same values in its sample
types, and documents the variants handled (every one taken from real output). fields() returns None for a
line that is not a tegrastats sample (no "RAM used/totalMB": shell prompts, blank lines).
"""
import functools
import re

TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s")
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
# Both this and _RAIL are searched in text that starts with " ", and consume the character before the name
# instead of looking behind for it: a pattern that starts with a character class is scanned for in C, a
# look-behind is tried at every position.
_TEMP = re.compile(r"[^\w@-]([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?(?=\s|$)")
# "VDD_IN 3056/3056", "VDD_IN 5299mW/5299mW", "VDD_GPU 4925mW/4925mW/4925mW". The trailing
# look-ahead keeps "RAM 2344/7852MB" and "IRAM 0/252kB(...)" out.
_RAIL = re.compile(rf"\s([A-Z][A-Z0-9_]*) ({_N})(?:mW)?/({_N})(?:mW)?(?:/\d+(?:mW)?)?(?=\s|$)")

# tegrastats prints -256C for a thermal zone whose sensor is powered off.
SENSOR_OFF = -256.0


def _int(text):
    return None if text is None else int(text)


# A board's entries repeat from line to line ("100%@2035"): each is read once.
@functools.lru_cache(maxsize=4096)
def _cpu(entry, shared_freq):
    """One entry of the CPU list as (load %, MHz or None): "12%@2035", "12%" (clock unreadable, or the list's
    one clock after it); None for "off" or anything else."""
    found = _CPU_ENTRY.match(entry.strip())
    if not found:
        return None
    return int(found.group(1)), _int(found.group(2) or shared_freq)


def _search(pattern, line, *words):
    """pattern.search(line) for a pattern whose every match starts with one of `words`: the search starts where
    the first of them appears, and is not made at all without one. A failed search of a whole line costs as much
    as parsing the rest of it (SWAP on a board without swap); searching from an offset still sees the
    characters before it (\\b, look-behinds), so the match is the same."""
    found = [at for at in map(line.find, words) if at >= 0]
    return pattern.search(line, min(found)) if found else None


def fields(line):
    """The line's readings: a dict of timestamp (as printed), ram_used_mb, ram_total_mb, swap_used_mb,
    cpus (a (load %, MHz) pair or None per CPU, None without a CPU list), emc_load_pct, emc_freq_mhz,
    gpu_load_pct, gpu_freq_mhz, temps_c ({sensor: degrees C, None for a sensor that is off}) and rails_mw
    ({rail: (current, average)}); None where the line does not have it. None for a line that is not a
    sample."""
    ram = _RAM.search(line)
    if not ram:
        return None
    timestamp = TIMESTAMP.match(line)
    swap = _search(_SWAP, line, "SWAP ")
    cpus = _search(_CPUS, line, "CPU [", "cpu [")
    emc = _search(_EMC, line, "EMC")
    gr3d = _search(_GR3D, line, "GR3D")
    # A temperature lies between two spaces of the line, in a part that holds "@" and "C": it is searched for in
    # those parts alone, joined, which gives the same matches in the same order as the whole line at half the
    # cost (the costliest search of a line).
    temps = {}
    candidates = [part for part in line.split(" ") if "@" in part and "C" in part]
    for name, value in _TEMP.findall(" " + " ".join(candidates)):
        reading = float(value)
        temps.setdefault(name, None if reading == SENSOR_OFF else reading)
    rails = {}
    for name, cur, avg in _RAIL.findall(" " + line):
        rails.setdefault(name, (int(cur), int(avg)))
    return {
        "timestamp": timestamp.group(1) if timestamp else None,
        "ram_used_mb": int(ram.group(1)),
        "ram_total_mb": int(ram.group(2)),
        "swap_used_mb": int(swap.group(1)) if swap else None,
        "cpus": [_cpu(entry, cpus.group("freq")) for entry in cpus.group("list").split(",")] if cpus else None,
        "emc_load_pct": _int(emc.group(1)) if emc else None,
        "emc_freq_mhz": _int(emc.group(2)) if emc else None,
        "gpu_load_pct": _int(gr3d.group(1)) if gr3d else None,
        "gpu_freq_mhz": _int(gr3d.group(2)) if gr3d else None,
        "temps_c": temps,
        "rails_mw": rails,
    }
