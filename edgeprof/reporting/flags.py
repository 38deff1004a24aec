"""What each validity flag means, once, for the footnotes under tables and the README's "when to trust a
number". A flag's own `detail` says what was seen in that result; this says why it matters."""
from __future__ import annotations

from collections.abc import Iterable

from ..result import Result

MEANINGS = {
    # the timing itself (edgeprof.validity)
    "not_converged": "the stop rule hit its time cap before the median's interval reached its target",
    "high_spread": "iterations disagree: IQR above 25 % of the median",
    "deadline_missed": "--arrival: some queries were not done before the next one arrived",
    "not_steady": "--duration: the last three windows disagree by over 10 % (no steady state)",
    "interrupted": "--duration: stopped by Ctrl-C; the figures are the finished windows' only",
    # the board during the timed window (edgeprof.telemetry.summary)
    "contended": "other processes used over a quarter of a CPU during the timed window",
    "gpu_shared": "another process held the GPU (a CUDA context, or Jetson GPU memory) during the timed window",
    "clocks_moved": "a clock changed during the timed window",
    "clocks_below_pinned": "a clock ran below the value edgeprof pinned",
    "thermal_throttle": "the board throttled for heat, or a sensor came near its trip point",
    "power_throttle": "the GPU was held by its power cap or power brake",
    "hw_slowdown": "NVML reported a hardware slowdown",
    "power_mode_changed": "the power mode or power limit changed around the measurement",
    "few_samples": "too few telemetry samples in the window for its statistics",
    "telemetry_incomplete": "the telemetry sampler failed in part",
    "no_timed_window": "the backend reported no timed window: no telemetry summary",
    "clocks_end_unknown": "the clocks could not be read after the measurement",
    # concurrent jobs (edgeprof.concurrency)
    "jobs_not_overlapping": "concurrent jobs timed apart for part of the window: their summed throughput overstates "
                            "what they do together",
    # the results database (edgeprof.storage: parts of a stored document that could not be read)
    "unusable_stored_data": "part of the stored result was unreadable and left out",
    # the backend
    "provider_fallback": "ONNX Runtime ran on another execution provider than the one asked for",
    "int8_uncalibrated": "int8 engine with placeholder scales: a timing, not a usable model",
    "opset_above_parser": "the ONNX file's opset is above what the board's TensorRT parser documents (--opset): "
                          "a node may have been imported with an older opset's meaning",
}


def flag_codes(results: Iterable[Result]) -> list[str]:
    """Every flag code among the results, in first-seen order, as the tables show them (result.Flag)."""
    return list(dict.fromkeys(flag.code for r in results for flag in r.flag_list))


def footnotes(results: Iterable[Result]) -> list[str]:
    """One line per flag seen, saying what it means (the result's own detail: `edgeprof results show ID`)."""
    codes = flag_codes(results)
    if not codes:
        return []
    return ["! flagged: do not compare these figures with unflagged ones before reading why "
            "(edgeprof results show ID)"] + [f"  {code}: {MEANINGS.get(code, 'see the result')}" for code in codes]


__all__ = ["MEANINGS", "flag_codes", "footnotes"]
