"""A --duration result's windows as a table, and the one line that sums them up (first window, steady
state, drift); an --arrival result's line (rate, latency from arrival, service time, missed deadlines)."""
from __future__ import annotations

from rich.table import Table

from ..result import Result


def _number(value, fmt: str = ".4g") -> str:
    return "-" if value is None else format(value, fmt)


def timeline_table(result: Result) -> Table:
    timeline = result.timeline or {}
    table = Table("window", "from s", "iterations", "median ms", "p99 ms", "img/s", "GPU MHz min", "EMC MHz min",
                  "CPU MHz min", "max C", "W", "flags",
                  title=f"{result.model} {result.backend} batch {result.batch} on {result.device}: "
                        f"{_number(timeline.get('window_s'), 'g')} s windows", title_justify="left")
    rows = timeline.get("windows") or []
    begin = rows[0]["start_s"] if rows else 0.0
    steady = (timeline.get("steady") or {}).get("windows") or [None, None]
    for row in rows:
        marker = " steady" if steady[0] is not None and steady[0] <= row["index"] <= steady[1] else ""
        table.add_row(f"{row['index'] + 1}{marker}", f"{row['start_s'] - begin:.0f}", str(row["iterations"]),
                      _number(row["median_ms"]), _number(row["p99_ms"]), _number(row["throughput_ips"]),
                      _number(row["gpu_freq_mhz_min"], "g"), _number(row["emc_freq_mhz_min"], "g"),
                      _number(row["cpu_freq_mhz_min"], "g"), _number(row["temp_max_c"], "g"),
                      _number(row["power_mean_w"], ".3g"), ", ".join(row["flags"]))
    return table


def describe_timeline(result: Result) -> str:
    timeline = result.timeline or {}
    first, steady, drift = timeline.get("first") or {}, timeline.get("steady"), timeline.get("drift_rel")
    line = (f"{result.model} {result.backend} batch {result.batch}: first window median "
            f"{_number(first.get('median_ms'))} ms")
    if steady:
        line += (f", steady state {_number(steady['median_ms'])} ms, {_number(steady['throughput_ips'])} img/s "
                 f"(windows {steady['windows'][0] + 1}-{steady['windows'][1] + 1})")
    else:
        line += ", no steady state (not_steady)"
    if drift is not None:
        line += f"; drift first to last window {drift:+.1%}"
    return line


def describe_arrivals(result: Result) -> str:
    arrival = result.figures["arrival"]
    latency = result.latency
    service = arrival.get("service_ms") or {}
    return (f"{result.model} {result.backend} batch {result.batch}: {arrival['scenario']} arrivals at "
            f"{arrival['rate_hz']:g} Hz ({_number(arrival.get('achieved_hz'))} Hz served), {arrival['queries']} "
            f"queries: from arrival median {_number(latency.median)} ms, p90 {_number(latency.p90)} ms; "
            f"the inference alone median {_number(service.get('median'))} ms; "
            f"{arrival['missed_deadlines']} missed deadlines")
