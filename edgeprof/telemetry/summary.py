"""From the board sampler's records to one result's telemetry: statistics over the timed window, and flags.

Every statistic covers only the samples whose board-clock time lies inside the result's timed window
(`Result.timed_window`, start_s <= t <= end_s). A sample's time is when the sampler received the line
(tegrastats, /proc) or, for nvidia-smi, the tool's own timestamp of the query: a tegrastats line reports
the interval that just ended, so the window includes lines that describe up to one interval before it.

The statistics add up (edgeprof/onboard/window_stats.py, Stats): for tegrastats, the board's sampler keeps
those of every 10 lines in a block record, and the host merges the blocks that lie inside the window with the
lines at its edges, which it parses, so that a lab host does not parse every line of a hundred boards again.
A block reads back whole or is not used (its lines are parsed instead), and so is one whose temperatures come
near a trip point: the thermal flag names each reading. Merged, the board total's sum may differ from the sum
of every line in its last bits (the additions come in another order); every other figure is the same.

Energy: the board total (see `power_total`) averaged over the samples in the window, times the window's
duration, divided by the inferences in it (batch x timed iterations):

    energy_per_inference_j = mean(board_total_w over samples in window) * (end_s - start_s) / (batch * iterations)

a plain mean, not a trapezoid: with samples at a fixed interval the two differ only at the window's edges,
and the mean needs no interpolation across the edges. For `caffe time`, whose window holds forward AND
backward passes, this is the energy of a forward+backward iteration per image.
"""
from __future__ import annotations

import calendar
import functools
import re
import time
from dataclasses import dataclass, field

from ..onboard import tegrastats_line
from ..onboard.window_stats import Stats, power_total_rails, tegrastats_reading
from ..parsers import nvidia_smi

# What the sampler asks nvidia-smi for (noheader: the host names the columns). clocks_throttle_reasons.active
# is the older name of clocks_event_reasons.active, the one older drivers know; edgeprof.power.desktop
# queries it too. A driver that refused a field would end nvidia-smi: the result then carries the
# telemetry_incomplete flag with nvidia-smi's message, and /proc sampling goes on.
NVIDIA_SMI_FIELDS = ("timestamp", "index", "utilization.gpu", "memory.used", "power.draw", "clocks.sm",
                     "clocks.mem", "temperature.gpu", "clocks_throttle_reasons.active")
# Backends run on the first GPU (caffe -gpu 0, torch cuda:0): the GPU figures are that GPU's; the raw
# samples keep every GPU, and concurrent jobs on several GPUs (--gpus) get each one's from them (per_gpu).
GPU_INDEX = 0
# On a desktop the only power figure is the GPU board's own: the host's CPU, RAM and PSU are not in it.
NVIDIA_SMI_POWER_TOTAL = "power.draw of GPU 0 (nvidia-smi): the GPU board only, not the host"

# NVML clocks-event (throttle) reason bits, nvml.h.
_SW_POWER_CAP = 0x4
_HW_SLOWDOWN = 0x8
_SW_THERMAL = 0x20
_HW_THERMAL = 0x40
_HW_POWER_BRAKE = 0x80

# A window with fewer samples than this, or than half the samples its duration should hold, gets
# "few_samples": its statistics rest on too little.
MIN_SAMPLES = 3
# A temperature this close to the zone's lowest throttling trip point (passive/hot/critical) gets
# "thermal_throttle": DVFS may already be pulling clocks down.
NEAR_TRIP_C = 5.0
# Trip point types at which the kernel throttles or shuts down; "active" ones only switch a fan on.
_THROTTLE_TRIPS = ("passive", "hot", "critical")
# Clock readings are whole MHz; a pinned clock given in Hz may read up to this much lower.
CLOCK_TOLERANCE_MHZ = 1.0


@dataclass(slots=True)
class Reading:
    """One sample, whatever printed it; None where the source does not tell."""
    t: float
    gpu_load_pct: float | None = None
    gpu_freq_mhz: float | None = None
    emc_freq_mhz: float | None = None
    gpu_mem_used_mb: float | None = None
    cpu_load_pct: list | None = None       # per CPU number, None when offline
    cpu_freq_mhz: list | None = None
    ram_used_mb: float | None = None
    temps_c: dict = field(default_factory=dict)
    rails_mw: dict = field(default_factory=dict)
    power_total_w: float | None = None
    throttle_reasons: int | None = None


def _nvidia_smi_time(stamp, utc_offset_s: int | None) -> float | None:
    """nvidia-smi's "2026/11/23 19:38:55.388" is the board's local time."""
    if not isinstance(stamp, str) or utc_offset_s is None:
        return None
    whole, _, fraction = stamp.partition(".")
    try:
        local = calendar.timegm(time.strptime(whole, "%Y/%m/%d %H:%M:%S"))
    except ValueError:
        return None
    return local - utc_offset_s + (float("0." + fraction) if fraction.isdigit() else 0.0)


def readings(records: list[dict], power_total: str | None, gpu_index: int = GPU_INDEX) -> list[Reading]:
    """The sampler's records as Readings, in time order (nvidia-smi's of GPU `gpu_index`); start, end, error,
    others and block records are not samples."""
    start = next((r for r in records if r.get("kind") == "start"), {})
    total_rails = power_total_rails(power_total)
    out = []
    for record in records:
        kind = record.get("kind")
        if kind == "tegrastats":
            found = tegrastats_line.fields(record["line"])
            if found is not None:
                out.append(Reading(record["t"], *tegrastats_reading(found, total_rails)))
        elif kind == "nvidia-smi":
            try:
                [row] = nvidia_smi.parse(record["line"], fields=list(NVIDIA_SMI_FIELDS))
            except ValueError:
                continue  # an error message nvidia-smi printed between rows
            values = row.values
            if values["index"] != gpu_index:
                continue
            reasons = values["clocks_throttle_reasons.active"]
            out.append(Reading(
                t=_nvidia_smi_time(values["timestamp"], start.get("utc_offset_s")) or record["t"],
                gpu_load_pct=values["utilization.gpu"], gpu_freq_mhz=values["clocks.sm"],
                emc_freq_mhz=values["clocks.mem"], gpu_mem_used_mb=values["memory.used"],
                temps_c={"GPU": values["temperature.gpu"]} if values["temperature.gpu"] is not None else {},
                power_total_w=values["power.draw"],
                throttle_reasons=int(reasons, 16) if isinstance(reasons, str) and reasons.startswith("0x") else None))
        elif kind == "proc":
            out.append(Reading(t=record["t"], cpu_load_pct=record["cpu_load_pct"], cpu_freq_mhz=record["cpu_freq_mhz"],
                               ram_used_mb=record["ram_used_mb"], temps_c=dict(record["temps_c"])))
    return sorted(out, key=lambda r: r.t)


def stats_of(samples: list[Reading]) -> Stats:
    """The Stats of Readings, added in their order."""
    stats = Stats()
    for s in samples:
        stats.add(s.gpu_load_pct, s.gpu_freq_mhz, s.emc_freq_mhz, s.gpu_mem_used_mb, s.cpu_load_pct, s.cpu_freq_mhz,
                  s.ram_used_mb, s.temps_c, s.rails_mw, s.power_total_w, s.throttle_reasons)
    return stats


def _mean_max(triple: list | None) -> dict | None:
    return {"mean": triple[0] / triple[1], "max": triple[2]} if triple else None


def _min_max(pair: list | None) -> dict | None:
    return {"min": pair[0], "max": pair[1]} if pair else None


def window_statistics(stats: Stats, window: dict, *, inferences: int | None, power_total: str | None) -> dict:
    """The figures over the samples in the window (`stats`, theirs)."""
    duration = window["end_s"] - window["start_s"]
    mean_w = stats.power[0] / stats.power[1] if stats.power else None
    window_j = mean_w * duration if mean_w is not None else None
    per_inference = window_j / inferences if window_j is not None and inferences else None
    cpu_freqs = list(stats.cpu_freq.values())
    return {
        "window_s": duration,
        "samples_in_window": stats.n,
        "gpu_load_pct": _mean_max(stats.gpu_load),
        "gpu_freq_mhz": _min_max(stats.gpu_freq),
        "emc_freq_mhz": _min_max(stats.emc_freq),
        "cpu_freq_mhz": ({"min": min(low for low, _ in cpu_freqs), "max": max(high for _, high in cpu_freqs)}
                         if cpu_freqs else None),
        "cpu_load_pct": _mean_max(stats.cpu_load),
        "ram_peak_mb": stats.ram_max,
        "gpu_mem_peak_mb": stats.gpu_mem_max,
        "temps_max_c": dict(stats.temps_max),
        "rails_mean_mw": {name: total / count for name, (total, count) in stats.rails.items()},
        "power_total": {"definition": power_total, "mean_w": mean_w},
        "energy": {
            "window_j": window_j,
            "inferences": inferences,
            "per_inference_j": per_inference,
            "inferences_per_j": 1.0 / per_inference if per_inference else None,
            "formula": "mean(board total W over the samples in the window) x window duration / (batch x iterations)",
        },
    }


# --- flags ------------------------------------------------------------------------------------------

def _flag(code: str, detail: str) -> dict:
    return {"code": code, "detail": detail}


# Asked for every sensor of every block inside a window (near_trip); a board has a dozen sensor names.
@functools.lru_cache(maxsize=1024)
def _zone_key(name: str) -> str:
    """tegrastats prints a thermal zone's type up to its first '-' or '_' ("BCPU" for BCPU-therm,
    "thermal" for thermal-fan-est, "cpu" for Orin's cpu-thermal): compare on that, case-insensitively."""
    return re.split(r"[-_]", name, maxsplit=1)[0].lower()


def _clock_ranges(stats: Stats) -> dict[str, list]:
    """Every clock's [lowest, highest] reading in the window, by label: GPU, EMC, cpu0, cpu1..."""
    ranges = {label: pair for label, pair in (("GPU", stats.gpu_freq), ("EMC", stats.emc_freq)) if pair}
    ranges.update((f"cpu{index}", pair) for index, pair in stats.cpu_freq.items())
    return ranges


def _pinned_clocks(pinned: dict | None) -> dict[str, float]:
    """MHz by label for each clock the power control pinned: from a Jetson's jetson_clocks --show reading
    (Hz), or a desktop's nvidia-smi reading after -lgc (MHz)."""
    if not pinned:
        return {}
    if "gpus" in pinned:
        gpu = next((g for g in pinned["gpus"] if g.get("index") == GPU_INDEX), {})
        return {"GPU": float(gpu["clocks.sm"])} if isinstance(gpu.get("clocks.sm"), (int, float)) else {}
    targets = {label: pinned[key]["cur_hz"] / 1e6 for label, key in (("GPU", "gpu"), ("EMC", "emc")) if pinned.get(key)}
    targets.update({cpu["name"]: cpu["cur_hz"] / 1e6 for cpu in pinned.get("cpus") or [] if cpu.get("online")})
    return targets


def clock_flags(stats: Stats, state: dict) -> list[dict]:
    ranges = _clock_ranges(stats)
    moved = [f"{label} {low:g}-{high:g} MHz" for label, (low, high) in ranges.items() if low != high]
    flags = [_flag("clocks_moved", "clocks changed during the timed window: " + ", ".join(moved))] if moved else []
    pinned = _pinned_clocks(state.get("pinned") if state.get("clocks_pinned") else None)
    below = [f"{label} down to {ranges[label][0]:g} MHz (pinned {target:g})" for label, target in pinned.items()
             if label in ranges and ranges[label][0] < target - CLOCK_TOLERANCE_MHZ]
    if below:
        flags.append(_flag("clocks_below_pinned", "clocks below the pinned value: " + ", ".join(below)))
    return flags


def throttle_trips(trip_points: dict) -> dict[str, float]:
    """The lowest throttling trip point of each zone, by _zone_key (from the sampler's start record)."""
    trips = {}
    for zone, points in trip_points.items():
        throttling = [temp for kind, temp in points if kind in _THROTTLE_TRIPS]
        if throttling:
            trips[_zone_key(zone)] = min(throttling)
    return trips


def near_trip(temps: dict[str, float], trips: dict[str, float]) -> bool:
    """Whether any of these temperatures (sensor: degrees C) is within NEAR_TRIP_C of its zone's trip point."""
    return bool(trips) and any(trip is not None and value >= trip - NEAR_TRIP_C
                               for name, value in temps.items() for trip in (trips.get(_zone_key(name)),))


def throttle_flags(stats: Stats, samples: list[Reading], trip_points: dict) -> list[dict]:
    """NVML's throttle reasons over the window (stats), and the temperatures near a trip point in `samples`:
    the window's samples, or at least every one whose temperatures come near one (summarize)."""
    reasons = stats.throttle_reasons
    flags = []
    thermal = [text for bit, text in ((_SW_THERMAL, "SW thermal slowdown"), (_HW_THERMAL, "HW thermal slowdown"))
               if reasons & bit]
    power = [text for bit, text in ((_SW_POWER_CAP, "SW power cap"), (_HW_POWER_BRAKE, "HW power brake"))
             if reasons & bit]
    trips = throttle_trips(trip_points)
    trip_of: dict[str, float | None] = {}     # by sensor name: a board has a dozen, every sample has them all
    for s in samples:
        for name, value in s.temps_c.items():
            trip = trip_of[name] if name in trip_of else trip_of.setdefault(name, trips.get(_zone_key(name)))
            if trip is not None and value >= trip - NEAR_TRIP_C:
                thermal.append(f"{name} at {value:g} C, trip point {trip:g} C")
    if thermal:
        flags.append(_flag("thermal_throttle", "during the timed window: " + ", ".join(dict.fromkeys(thermal))))
    if power:
        flags.append(_flag("power_throttle", "NVML reports " + ", ".join(power) + " during the timed window"))
    if reasons & _HW_SLOWDOWN:
        flags.append(_flag("hw_slowdown", "NVML reports HW slowdown (thermal, power brake or over-current) during "
                                          "the timed window"))
    return flags


def power_mode_flag(state: dict) -> list[dict]:
    """The mode in the readings that bracket the window (clocks_start / clocks_end) against the one set."""
    start, end = state.get("clocks_start") or {}, state.get("clocks_end") or {}
    if "gpus" in start or "gpus" in end:
        before = {g.get("index"): g.get("power.limit") for g in start.get("gpus", [])}
        after = {g.get("index"): g.get("power.limit") for g in end.get("gpus", [])}
        changed = [f"GPU {i} power limit {before[i]} -> {after.get(i)} W" for i in before if before[i] != after.get(i)]
        return [_flag("power_mode_changed", ", ".join(changed))] if changed else []
    expected = (state.get("power_mode") or {}).get("mode_name")
    seen = [m for m in (expected, start.get("power_mode"), end.get("power_mode")) if m]
    if len(set(seen)) > 1:
        return [_flag("power_mode_changed", f"power mode set {expected}, read {start.get('power_mode')} before and "
                                            f"{end.get('power_mode')} after the measurement")]
    return []


def sample_count_flag(count: int, window_s: float, interval_ms: float) -> list[dict]:
    expected = window_s * 1000.0 / interval_ms if interval_ms else 0
    if count < MIN_SAMPLES or count < expected / 2:
        return [_flag("few_samples", f"{count} samples in a {window_s:.3g} s window (one every {interval_ms:g} ms "
                                     f"expected): too few for the window's statistics")]
    return []


# Other processes busy for more than this share of one CPU on average during the window: the measurement
# shared the board. A quiet lab board shows under 0.05 (sshd, the sampler's own tool, the kernel); one busy
# loop elsewhere shows 1.0.
CONTENDED_CPU_SHARE = 0.25


def other_processes(records: list[dict], window: dict) -> dict | None:
    """What processes other than the measurement did during the window (the sampler's "others" records,
    each covering the interval that ends at its time, weighted by its overlap with the window): CPU
    seconds and share of one CPU, the busiest processes, the highest 1-minute load average; and, where the
    sampler could look, the other processes holding the GPU in those records ("gpu", with their largest
    GPU memory) or why it could not ("gpu_errors")."""
    start, end = window["start_s"], window["end_s"]
    cpu_s, by_process, load1, seen = 0.0, {}, None, False
    gpu, gpu_errors, gpu_seen = {}, [], False
    for r in records:
        if r.get("kind") != "others":
            continue
        begins = r["t"] - r["interval_s"]
        overlap = min(r["t"], end) - max(begins, start)
        if overlap <= 0 or r["interval_s"] <= 0:
            continue
        seen, weight = True, overlap / r["interval_s"]
        cpu_s += r["cpu_s"] * weight
        for comm, pid, used in r["top"]:
            by_process[(comm, pid)] = by_process.get((comm, pid), 0.0) + used * weight
        if r.get("load1") is not None:
            load1 = max(load1 or 0.0, r["load1"])
        if "gpu" in r:
            gpu_seen = True
            for name, pid, mb in r["gpu"]:
                known = gpu.get((name, pid))
                gpu[(name, pid)] = mb if known is None else max(known, mb or 0.0)
        elif r.get("gpu_error") and r["gpu_error"] not in gpu_errors:
            gpu_errors.append(r["gpu_error"])
    if not seen:
        return None
    window_s = max(end - start, 1e-9)
    top = sorted(by_process.items(), key=lambda item: -item[1])[:5]
    summary = {"cpu_s": round(cpu_s, 3), "cpu_share": round(cpu_s / window_s, 3), "load1_max": load1,
               "top": [{"process": comm, "pid": pid, "cpu_s": round(used, 3)} for (comm, pid), used in top]}
    if gpu_seen:
        summary["gpu"] = [{"process": name, "pid": pid, "memory_mb": mb}
                          for (name, pid), mb in sorted(gpu.items(), key=lambda item: -(item[1] or 0.0))]
    if gpu_errors:
        summary["gpu_errors"] = gpu_errors
    return summary


def contention_flag(others: dict) -> list[dict]:
    if others["cpu_share"] <= CONTENDED_CPU_SHARE:
        return []
    names = ", ".join(f"{p['process']} ({p['pid']}) {p['cpu_s']:g} s" for p in others["top"][:3])
    return [{"code": "contended", "detail": (
        f"other processes used {others['cpu_share']:.2f} CPUs on average during the timed window (over "
        f"{CONTENDED_CPU_SHARE}); busiest: {names}"), "figures": others}]


def gpu_shared_flag(others: dict) -> list[dict]:
    """Another process held the GPU around the window: a CUDA context on a desktop GPU (it may have been
    idle: nvidia-smi cannot say per process at this rate), GPU memory through nvmap on a Jetson (the
    desktop's Xorg and compositor are there too, and do draw on the GPU)."""
    if not others.get("gpu"):
        return []
    names = ", ".join(f"{p['process']} ({p['pid']})" + (f" {p['memory_mb']:g} MB" if p["memory_mb"] is not None
                                                        else "") for p in others["gpu"][:3])
    more = f" and {len(others['gpu']) - 3} more" if len(others["gpu"]) > 3 else ""
    return [{"code": "gpu_shared", "detail": f"other processes held the GPU during the timed window: {names}{more}",
             "figures": {"gpu": others["gpu"]}}]


def in_window(samples: list[Reading], window: dict) -> list[Reading]:
    return [s for s in samples if window["start_s"] <= s.t <= window["end_s"]]


def per_gpu(records: list[dict], window: dict, gpus: list[int]) -> dict:
    """Each of `gpus`' utilization (mean and max) and memory used (peak) over the window, from nvidia-smi's
    samples of it: keyed by the GPU index as text (JSON keys)."""
    nvidia = [r for r in records if r.get("kind") in ("start", "nvidia-smi")]
    out = {}
    for gpu in gpus:
        stats = stats_of(in_window(readings(nvidia, None, gpu), window))
        out[str(gpu)] = {"samples": stats.n, "gpu_load_pct": _mean_max(stats.gpu_load),
                         "gpu_mem_peak_mb": stats.gpu_mem_max}
    return out


def ran_on_host_cpu(settings: dict) -> bool:
    """Whether the item's work ran on the host's CPU (PyTorch, LibTorch and ONNX Runtime say so in their
    settings: processor "cpu", or ONNX Runtime's CPU provider alone)."""
    return settings.get("processor") == "cpu" or settings.get("providers") == ["CPUExecutionProvider"]


def energy_not_attributed(summary: dict) -> None:
    """An item that ran on a desktop's CPU while the board total is nvidia-smi's power.draw (the GPU board
    alone): that power is the idle GPU's, not the work's, so no energy per inference is given, and why."""
    energy = summary.get("energy")
    if energy:
        energy.update(per_inference_j=None, inferences_per_j=None,
                      not_attributed="the item ran on the host's CPU; the power measured is the GPU board's alone")


def summarize(records: list[dict], window: dict | None, *, inferences: int | None, power_total: str | None,
              state: dict, interval_ms: float, errors: list[str]) -> tuple[dict, list[dict]]:
    """The window's statistics (empty without a window) and the result's validity flags."""
    start = next((r for r in records if r.get("kind") == "start"), {})
    flags = []
    if errors:
        flags.append(_flag("telemetry_incomplete", "; ".join(errors)))
    if window is None:
        return {}, flags + [_flag("no_timed_window", "the backend reported no timed window: no telemetry summary")]
    trip_points = start.get("trip_points_c") or {}
    near, blocks = _to_parse(records, window, interval_ms / 1000.0, throttle_trips(trip_points))
    samples = in_window(readings(near, power_total), window)
    # In time order, each block at its first line's: what came first is added first, as without blocks.
    stats, run = Stats(), []
    for _, sample_or_block in sorted([(s.t, s) for s in samples] + blocks, key=lambda item: item[0]):
        if isinstance(sample_or_block, Stats):
            stats.merge(stats_of(run))
            stats.merge(sample_or_block)
            run = []
        else:
            run.append(sample_or_block)
    stats.merge(stats_of(run))
    if any(r.get("kind") == "nvidia-smi" for r in records):
        power_total = NVIDIA_SMI_POWER_TOTAL
    summary = window_statistics(stats, window, inferences=inferences, power_total=power_total)
    others = other_processes(records, window)
    if others is not None:
        summary["others"] = others
        flags += contention_flag(others) + gpu_shared_flag(others)
    flags += sample_count_flag(stats.n, summary["window_s"], interval_ms)
    flags += clock_flags(stats, state)
    flags += throttle_flags(stats, samples, trip_points)
    flags += power_mode_flag(state)
    return summary, flags


def _to_parse(records: list[dict], window: dict, margin: float,
              trips: dict[str, float]) -> tuple[list[dict], list[tuple[float, Stats]]]:
    """The records to parse for the window's statistics, and the sampler's blocks that stand for the rest,
    each with its first line's time. Only records near the window are parsed (parsing is most of the host's
    telemetry cost in a large lab): tegrastats and /proc samples are timed by the record; nvidia-smi's carry
    their own timestamps (in_window judges them) and the start record holds what converts those.

    A block (board_sampler.py) stands for the tegrastats lines written since the previous one, when they all
    lie in the window and it reads back whole (Stats.from_record) with as many lines as there are. A block
    whose temperatures come near a trip point is parsed all the same: the thermal flag names each reading."""
    start, end = window["start_s"] - margin, window["end_s"] + margin
    near, blocks, lines = [], [], []

    def parse(pending: list[dict]) -> None:
        near.extend(r for r in pending if start <= r["t"] <= end)

    for record in records:
        kind = record.get("kind")
        if kind == "tegrastats":
            lines.append(record)
        elif kind == "block":
            stats = Stats.from_record(record.get("stats")) if record.get("lines") == len(lines) else None
            if (stats is not None and lines and all(window["start_s"] <= r["t"] <= window["end_s"] for r in lines)
                    and not near_trip(stats.temps_max, trips)):
                blocks.append((lines[0]["t"], stats))
            else:
                parse(lines)
            lines = []
        elif kind != "proc" or start <= record["t"] <= end:
            near.append(record)
    parse(lines)
    return near, blocks
