"""Power-mode sweeps (edgeprof.power.sweep) read back: one row per mode, the Pareto front of latency against
board power, and the two budget questions users ask ("the fastest mode under W watts", "the lowest-power
mode meeting L ms").

A sweep is the results of one device, model, backend, batch and variant that carry state.power_sweep; where
a mode was measured more than once, the latest result is used. Each figure is the result's own:

- latency: its median, or its mean where the backend times only a mean (Caffe), said in the row;
- board power: the mean of the board-total rail (telemetry.power_total: VDD_IN on a TX2) over the samples in
  the timed window; energy per inference: that mean x the window / inferences (telemetry.energy). A window
  too short for a sample has neither, and its mode is left out of the front and the budget answers (said);
- clocks reached: the highest GPU, EMC and CPU clock tegrastats saw in the window, else the reading after it;
- throttling: the result's flags that say a clock was held below what the mode allows (clocks_below_pinned,
  thermal_throttle, power_throttle, hw_slowdown; edgeprof.telemetry).

A mode is on the front when no other mode of the sweep is at least as fast at no more power and better in
one of the two. The answers compare point figures (no intervals): a mode within a few percent of a budget
may fall on either side of it in another run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.table import Table

from ..result import Result
from ..storage.documents import is_number
from .table import headline, power_figures

THROTTLING_FLAGS = ("clocks_below_pinned", "thermal_throttle", "power_throttle", "hw_slowdown")


@dataclass
class ModePoint:
    result: Result
    mode: str
    latency_ms: float | None
    statistic: str             # and span, e.g. "median, compute"
    power_w: float | None
    energy_j: float | None
    clocks_mhz: dict            # "GPU", "EMC", "CPU" -> the highest reached, where known
    throttling: list[str]
    pareto: bool = False

    @property
    def usable(self) -> bool:
        return self.latency_ms is not None and self.power_w is not None


@dataclass
class PowerModeSweep:
    device: str
    model: str
    backend: str
    batch: int
    variant: str | None
    points: list[ModePoint] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)     # mode -> why it was not measured

    @property
    def label(self) -> str:
        return (f"{self.model} {self.backend}{'/' + self.variant if self.variant else ''} batch {self.batch} on "
                f"{self.device}")

    def fastest_under(self, watts: float) -> ModePoint | None:
        within = [p for p in self.points if p.usable and p.power_w <= watts]
        return min(within, key=lambda p: (p.latency_ms, p.power_w)) if within else None

    def lowest_power_meeting(self, ms: float) -> ModePoint | None:
        meeting = [p for p in self.points if p.usable and p.latency_ms <= ms]
        return min(meeting, key=lambda p: (p.power_w, p.latency_ms)) if meeting else None


def _clocks(result: Result) -> dict:
    """The highest clock of each unit in the timed window (tegrastats), else as read right after it. Stored
    state is not checked on loading (edgeprof.storage.documents): only numbers are taken from it."""
    reached = {}
    for unit, key in (("GPU", "gpu_freq_mhz"), ("EMC", "emc_freq_mhz"), ("CPU", "cpu_freq_mhz")):
        seen = (result.telemetry or {}).get(key)
        if isinstance(seen, dict) and is_number(seen.get("max")):
            reached[unit] = seen["max"]
    end = result.state.get("clocks_end")
    if not isinstance(end, dict):
        return reached
    for unit, key in (("GPU", "gpu"), ("EMC", "emc")):
        if unit not in reached and isinstance(end.get(key), dict) and is_number(end[key].get("cur_hz")):
            reached[unit] = end[key]["cur_hz"] / 1e6
    cpus = end.get("cpus") if isinstance(end.get("cpus"), list) else []
    online = [c["cur_hz"] for c in cpus if isinstance(c, dict) and c.get("online") and is_number(c.get("cur_hz"))]
    if "CPU" not in reached and online:
        reached["CPU"] = max(online) / 1e6
    return reached


def _point(result: Result, mode: str) -> ModePoint:
    return ModePoint(result, mode, *headline(result), *power_figures(result), _clocks(result),
                     [flag.code for flag in result.flag_list if flag.code in THROTTLING_FLAGS])


def mark_pareto(points: list[ModePoint]) -> None:
    """Mark the points no other usable point beats on both latency and power (ties on both: all kept)."""
    usable = [p for p in points if p.usable]
    for point in usable:
        point.pareto = not any(other.latency_ms <= point.latency_ms and other.power_w <= point.power_w
                               and (other.latency_ms < point.latency_ms or other.power_w < point.power_w)
                               for other in usable)


def power_mode_sweeps(results: list[Result]) -> list[PowerModeSweep]:
    """The sweeps among `results`, in the order first seen; each mode's latest result (highest id, else last)."""
    found: dict[tuple, PowerModeSweep] = {}
    latest: dict[tuple, dict[str, Result]] = {}
    for result in sorted(results, key=lambda r: (r.id is not None, r.id or 0)):
        swept = result.state.get("power_sweep")
        if not isinstance(swept, dict) or not isinstance(swept.get("mode_name"), str) or result.repeat:
            continue
        variant = result.figures.get("variant")
        key = (result.device, result.model, result.backend, result.batch, variant)
        found.setdefault(key, PowerModeSweep(*key))
        latest.setdefault(key, {})[swept["mode_name"]] = result
    for key, sweep in found.items():
        for mode, result in latest[key].items():
            if result.status == "ok":
                sweep.points.append(_point(result, mode))
            else:
                sweep.refused[mode] = result.error or "failed"
        mark_pareto(sweep.points)
    return list(found.values())


def describe_budgets(sweep: PowerModeSweep, budget_w: float | None, budget_ms: float | None) -> list[str]:
    """The answers to --budget-w and --budget-ms, in words."""
    lines = []
    if budget_w is not None:
        best = sweep.fastest_under(budget_w)
        lines.append(f"fastest mode under {budget_w:g} W: " + (
            f"{best.mode} ({best.latency_ms:.4g} ms {best.statistic}, {best.power_w:.3g} W)" if best else
            "none of the measured modes"))
    if budget_ms is not None:
        best = sweep.lowest_power_meeting(budget_ms)
        lines.append(f"lowest-power mode meeting {budget_ms:g} ms: " + (
            f"{best.mode} ({best.power_w:.3g} W, {best.latency_ms:.4g} ms {best.statistic})" if best else
            "none of the measured modes"))
    unusable = [p.mode for p in sweep.points if not p.usable]
    if lines and unusable:
        lines.append(f"not considered (no latency or power figure: timed window shorter than a telemetry sample?): "
                     f"{', '.join(unusable)}")
    return lines


def sweep_table(sweep: PowerModeSweep) -> Table:
    """One row per mode, the front marked; the modes not measured under the table's caption."""
    table = Table(title=f"power modes: {sweep.label}", title_justify="left",
                  caption="* on the Pareto front (no mode faster at no more power); W: mean board power over the "
                          "timed window" + "".join(f"\nnot measured: {mode}: {why}"
                                                   for mode, why in sweep.refused.items()),
                  caption_justify="left")
    for name, justify in (("", "left"), ("mode", "left"), ("latency ms", "right"), ("statistic, span", "left"),
                          ("img/s", "right"), ("W", "right"), ("J/img", "right"), ("clocks reached MHz", "left"),
                          ("throttling", "left"), ("id", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    for p in sorted(sweep.points, key=lambda p: (p.power_w is None, p.power_w or 0)):
        table.add_row("*" if p.pareto else "", p.mode, _number(p.latency_ms), p.statistic,
                      _number(p.result.throughput_ips), _number(p.power_w), _number(p.energy_j),
                      " ".join(f"{unit} {mhz:.0f}" for unit, mhz in p.clocks_mhz.items()) or "-",
                      ", ".join(p.throttling) or "-", str(p.result.id or ""))
    return table


def _number(value: float | None) -> str:
    return f"{value:.4g}" if value is not None else "-"
