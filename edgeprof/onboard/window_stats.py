"""Statistics of telemetry samples that add up (Python 3.6+, standard library only).

A Stats holds, for a run of samples, what a result's telemetry summary reports of them: sums, counts, lowest
and highest values, per CPU, sensor and rail. Two runs' Stats merge into the Stats of both, so the board
sampler (board_sampler.py) keeps one per block of tegrastats lines and writes it after the block's lines, and
the host (edgeprof.telemetry.summary) merges the blocks that lie inside a result's timed window and adds the
samples at its edges one by one, instead of parsing every line again: a lab host summarizes a hundred boards'
samples. The host checks every block it uses (from_record); what it cannot use, it parses line by line.
"""

if __package__:    # the host imports it as edgeprof.onboard.window_stats; the board's sampler as a sibling
    from .tegrastats_line import fields
else:
    from tegrastats_line import fields

FIELDS = ("n", "gpu_load", "gpu_freq", "emc_freq", "gpu_mem_max", "cpu_load", "cpu_freq", "ram_max", "temps_max",
          "rails", "power", "throttle_reasons")


def power_total_rails(definition):
    """The rails whose sum is the board's input power: "VDD_IN" or "GPU+CPU+SOC+CV+VDDRQ+SYS5V"."""
    return [name.strip() for name in (definition or "").split("+") if name.strip()]


def tegrastats_reading(found, total_rails):
    """A parsed tegrastats line (tegrastats_line.fields) as Stats.add's arguments, in its order: the current
    reading of each rail, the board total (the sum of total_rails, in W) where every one of them is there,
    the temperatures of the sensors that are on."""
    rails = {name: cur for name, (cur, _) in found["rails_mw"].items()}
    total = (sum(rails[name] for name in total_rails) / 1000.0
             if total_rails and all(name in rails for name in total_rails) else None)
    cpus = found["cpus"]
    return (found["gpu_load_pct"], found["gpu_freq_mhz"], found["emc_freq_mhz"], None,
            [c[0] if c else None for c in cpus] if cpus else None,
            [c[1] if c else None for c in cpus] if cpus else None,
            found["ram_used_mb"], {k: v for k, v in found["temps_c"].items() if v is not None},
            rails, total, None)


def _low_high(pair, value):
    if pair is None:
        return [value, value]
    pair[0] = min(pair[0], value)
    pair[1] = max(pair[1], value)
    return pair


def _sum_count_max(triple, value):
    if triple is None:
        return [value, 1, value]
    triple[0] += value
    triple[1] += 1
    triple[2] = max(triple[2], value)
    return triple


def _higher(known, value):
    return value if known is None or value > known else known


class Stats:
    """The figures of the samples added (in time order), each None (or empty) until a sample has it:
    gpu_load and cpu_load [sum, count, max] (cpu_load over every CPU's), gpu_freq and emc_freq [min, max],
    cpu_freq {CPU number: [min, max]}, gpu_mem_max, ram_max, temps_max {sensor: max}, rails {rail: [sum,
    count]}, power [sum of the board total in W, count], throttle_reasons (NVML's bits, or-ed)."""

    def __init__(self):
        self.n = 0
        self.gpu_load = None
        self.gpu_freq = None
        self.emc_freq = None
        self.gpu_mem_max = None
        self.cpu_load = None
        self.cpu_freq = {}
        self.ram_max = None
        self.temps_max = {}
        self.rails = {}
        self.power = None
        self.throttle_reasons = 0

    def add(self, gpu_load, gpu_freq, emc_freq, gpu_mem, cpu_loads, cpu_freqs, ram, temps, rails, power, reasons):
        """One sample; None (or an empty list or dict) where it has no such reading."""
        self.n += 1
        if gpu_load is not None:
            self.gpu_load = _sum_count_max(self.gpu_load, gpu_load)
        if gpu_freq is not None:
            self.gpu_freq = _low_high(self.gpu_freq, gpu_freq)
        if emc_freq is not None:
            self.emc_freq = _low_high(self.emc_freq, emc_freq)
        if gpu_mem is not None:
            self.gpu_mem_max = _higher(self.gpu_mem_max, gpu_mem)
        for value in cpu_loads or ():
            if value is not None:
                self.cpu_load = _sum_count_max(self.cpu_load, value)
        for index, value in enumerate(cpu_freqs or ()):
            if value is not None:
                self.cpu_freq[index] = _low_high(self.cpu_freq.get(index), value)
        if ram is not None:
            self.ram_max = _higher(self.ram_max, ram)
        temps_max = self.temps_max
        for name, value in temps.items():
            if name not in temps_max or value > temps_max[name]:
                temps_max[name] = value
        for name, value in rails.items():
            known = self.rails.get(name)
            if known is None:
                self.rails[name] = [value, 1]
            else:
                known[0] += value
                known[1] += 1
        if power is not None:
            self.power = [power, 1] if self.power is None else [self.power[0] + power, self.power[1] + 1]
        self.throttle_reasons |= reasons or 0

    def merge(self, other):
        """Add the samples of `other`, which come after this one's."""
        self.n += other.n
        if other.gpu_load is not None:
            self.gpu_load = _merged_sum_count_max(self.gpu_load, other.gpu_load)
        for name in ("gpu_freq", "emc_freq"):
            if getattr(other, name) is not None:
                setattr(self, name, _merged_low_high(getattr(self, name), getattr(other, name)))
        if other.gpu_mem_max is not None:
            self.gpu_mem_max = _higher(self.gpu_mem_max, other.gpu_mem_max)
        if other.cpu_load is not None:
            self.cpu_load = _merged_sum_count_max(self.cpu_load, other.cpu_load)
        for index, pair in other.cpu_freq.items():
            self.cpu_freq[index] = _merged_low_high(self.cpu_freq.get(index), pair)
        if other.ram_max is not None:
            self.ram_max = _higher(self.ram_max, other.ram_max)
        for name, value in other.temps_max.items():
            self.temps_max[name] = _higher(self.temps_max.get(name), value)
        for name, (total, count) in other.rails.items():
            known = self.rails.get(name)
            self.rails[name] = [total, count] if known is None else [known[0] + total, known[1] + count]
        if other.power is not None:
            self.power = (list(other.power) if self.power is None
                          else [self.power[0] + other.power[0], self.power[1] + other.power[1]])
        self.throttle_reasons |= other.throttle_reasons

    def to_record(self):
        """As JSON values (CPU numbers as text)."""
        record = {name: getattr(self, name) for name in FIELDS}
        record["cpu_freq"] = {str(index): pair for index, pair in self.cpu_freq.items()}
        return record

    @classmethod
    def from_record(cls, record):
        """The Stats of a to_record() value read back, or None where it is not one: a board's block is data,
        so every part is checked before a figure of it is used."""
        try:
            if not isinstance(record, dict) or set(record) != set(FIELDS):
                return None
            stats = cls()
            stats.n = _count(record["n"])
            stats.gpu_load = _optional(record["gpu_load"], _sum_count_max_of)
            stats.gpu_freq = _optional(record["gpu_freq"], _low_high_of)
            stats.emc_freq = _optional(record["emc_freq"], _low_high_of)
            stats.gpu_mem_max = _optional(record["gpu_mem_max"], _number)
            stats.cpu_load = _optional(record["cpu_load"], _sum_count_max_of)
            stats.cpu_freq = {_cpu_number(k): _low_high_of(v) for k, v in _items(record["cpu_freq"])}
            stats.ram_max = _optional(record["ram_max"], _number)
            stats.temps_max = {_name(k): _number(v) for k, v in _items(record["temps_max"])}
            stats.rails = {_name(k): _sum_count_of(v) for k, v in _items(record["rails"])}
            stats.power = _optional(record["power"], _sum_count_of)
            stats.throttle_reasons = _count(record["throttle_reasons"])
            return stats
        except ValueError:
            return None


class Blocks:
    """Tegrastats lines in blocks of `size`: add() each line as it arrives; it returns a full block's record
    values ({"lines": its line count, "stats": Stats.to_record()}), else None; end() returns the last, partial
    block's (None without one). The board total is the sum of the rails power_total names ("VDD_IN", "A+B")."""

    def __init__(self, size, power_total):
        self.size = size
        self.total_rails = power_total_rails(power_total)
        self.stats = Stats()
        self.lines = 0

    def add(self, line):
        found = fields(line)
        if found is not None:
            self.stats.add(*tegrastats_reading(found, self.total_rails))
        self.lines += 1
        return self.end() if self.lines == self.size else None

    def end(self):
        if not self.lines:
            return None
        block = {"lines": self.lines, "stats": self.stats.to_record()}
        self.stats, self.lines = Stats(), 0
        return block


def _merged_low_high(pair, other):
    if pair is None:
        return list(other)
    return [other[0] if other[0] < pair[0] else pair[0], other[1] if other[1] > pair[1] else pair[1]]


def _merged_sum_count_max(triple, other):
    if triple is None:
        return list(other)
    return [triple[0] + other[0], triple[1] + other[1], other[2] if other[2] > triple[2] else triple[2]]


# No reading or sum of readings comes near this (MHz, mW, MB, %, a day of samples); past it, a figure is not one.
_LARGEST = 1e15


def _number(value):
    """A finite int or float within _LARGEST (not a bool: JSON's true is a Python int)."""
    if type(value) not in (int, float) or not -_LARGEST <= value <= _LARGEST:   # NaN compares False
        raise ValueError(value)
    return value


def _count(value):
    if type(value) is not int or not 0 <= value <= _LARGEST:
        raise ValueError(value)
    return value


def _name(value):
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _cpu_number(value):
    if not isinstance(value, str) or not 0 < len(value) <= 4 or any(c not in "0123456789" for c in value):
        raise ValueError(value)
    return int(value)


def _items(value):
    if not isinstance(value, dict):
        raise ValueError(value)
    return value.items()


def _optional(value, check):
    return None if value is None else check(value)


def _pair(value):
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(value)
    return value


def _low_high_of(value):
    low, high = (_number(v) for v in _pair(value))
    if low > high:
        raise ValueError(value)
    return [low, high]


def _sum_count_of(value):
    total, count = _pair(value)
    if _count(count) == 0:
        raise ValueError(value)
    return [_number(total), count]


def _sum_count_max_of(value):
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(value)
    total, count, highest = value
    if _count(count) == 0:
        raise ValueError(value)
    return [_number(total), count, _number(highest)]
