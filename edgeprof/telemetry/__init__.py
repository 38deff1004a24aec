"""Telemetry during the measured window: utilization, clocks, memory, temperatures, power, energy, validity.

While a backend measures, a sampler runs on the board (board_sampler.py: Python 3.6+, standard library
only): `tegrastats` on Jetsons, `nvidia-smi --query-gpu=... -lms MS` plus /proc on desktops with an NVIDIA
GPU, /proc alone elsewhere. Each sample carries the board's epoch clock; backends report their timed window
on the same clock (`Result.timed_window`), and the summary covers that window only (summary.py).

The contract, as the measure session uses it (session._sweep):

    telemetry = BoardTelemetry(board, sudo=...)     # once per board and measure call
    with telemetry.sampling() as recording:          # starts the sampler; stops it however the block ends
        result = backend.measure(board, source, batch, options)
    recording.attach(result)                         # result.telemetry, result.flags

`result.telemetry` holds the window's statistics (gpu_load_pct, gpu/emc/cpu_freq_mhz, ram_peak_mb,
temps_max_c, rails_mean_mw, power_total, energy...), the sampler's `errors`, its start/stop `commands` and
the raw `samples` (every record, inside the window or not).

A backend's only part is to set `result.timed_window = {"start_s": ..., "end_s": ...}` (board epoch
seconds) and `result.iterations`. Sampling never fails a measurement: what went wrong with it is in
`result.telemetry["errors"]` and the `telemetry_incomplete` flag.

Flags (`Result.flags`, a list of {"code", "detail"}), for results that succeeded: clocks_moved,
clocks_below_pinned, thermal_throttle, power_throttle, hw_slowdown, power_mode_changed, few_samples,
no_timed_window, telemetry_incomplete.
"""
from .sampler import DEFAULT_INTERVAL_MS, BoardTelemetry, Recording
from .summary import summarize

__all__ = ["BoardTelemetry", "DEFAULT_INTERVAL_MS", "Recording", "summarize"]
