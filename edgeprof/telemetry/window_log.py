"""Following a --duration run while it runs: the runner's window log.

The board runner appends each finished window to a file in the work folder as one JSON line
(edgeprof/onboard/timing.py, log_window: index, start_s, end_s, iterations and the window's times_ms). The host
reads the file's new bytes every poll_s seconds (`tail -c +OFFSET`, one short command on the connection the
runner's own command waits on; paramiko runs each on a channel of its own) and hands every new window to a
callback: the live progress line of `edgeprof measure`. When the run is stopped (Ctrl-C), the same file still
holds every window that ended, from which the host builds the result of the windows done (session.py).
Only complete lines count: a runner killed while writing leaves at most one partial last line.
"""
from __future__ import annotations

import json
import threading
from typing import Callable

from ..onboard import timing
from ..transport import TransportError
from .summary import readings

POLL_S = 1.0
# The sampler's last lines read for the progress line's temperature: at 100 ms, tegrastats' and /proc's last
# second or so, whatever "others" records lie between.
SAMPLE_LINES = 20
# The keys every window line has (log_window), with times_ms holding `iterations` numbers.
WINDOW_KEYS = ("index", "start_s", "end_s", "iterations", "times_ms")


def parse_windows(text: str) -> tuple[list[dict], int]:
    """The windows of the complete lines in `text`, and how many characters those lines take (what follows
    is a line still being written). A line that is not a window (not JSON, keys missing, times_ms not
    `iterations` numbers) is skipped: progress is best-effort, and the result's windows come from the runner's
    report when it ends."""
    end = text.rfind("\n") + 1
    windows = []
    for line in text[:end].splitlines():
        try:
            window = json.loads(line)
        except ValueError:
            continue
        if (isinstance(window, dict) and all(key in window for key in WINDOW_KEYS)
                and isinstance(window["times_ms"], list) and len(window["times_ms"]) == window["iterations"]
                and all(isinstance(t, (int, float)) for t in window["times_ms"])):
            windows.append(window)
    return windows, end


def hottest(text: str) -> float | None:
    """The hottest sensor of the last sample among the sampler's record lines in `text` (the end of its file
    while it runs), or None where none has a temperature."""
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # the line the sampler is writing
    samples = [r for r in readings([r for r in records if isinstance(r, dict) and "kind" in r], None) if r.temps_c]
    return max(samples[-1].temps_c.values()) if samples else None


class WindowFeed:
    """`with WindowFeed(board, path, on_window):` around the runner's command: reads the window log every
    poll_s in a thread of its own, calls on_window(window) for each new one (in that thread), and keeps them
    all in `windows`. read() reads what is new at once (the caller's last look after the runner stopped).
    With `samples` (the telemetry sampler's file while it runs), each window handed on also carries
    "temp_max_c", the hottest sensor of the latest sample, for the progress line."""

    def __init__(self, board, path: str, on_window: Callable[[dict], None] | None = None, poll_s: float = POLL_S,
                 samples: str | None = None):
        self.board = board
        self.path = path
        self.on_window = on_window
        self.poll_s = poll_s
        self.samples = samples
        self.windows: list[dict] = []
        self._offset = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> list[dict]:
        """The windows written since the last read (also added to `windows`); none where the file is not
        there yet or the board could not be asked."""
        with self._lock:
            try:
                # The transport itself: Board.run would take a concurrent job's turn lock.
                found = self.board.transport.run(["tail", "-c", f"+{self._offset + 1}", self.path], timeout=30)
            except TransportError:
                return []
            if not found.ok:
                return []
            new, used = parse_windows(found.stdout)
            self._offset += used
            self.windows += new
        if new and self.on_window:
            temp = self._hottest()
            for window in new:
                self.on_window(dict(window, temp_max_c=temp))
        return new

    def _hottest(self) -> float | None:
        if self.samples is None:
            return None
        try:
            found = self.board.transport.run(["tail", "-n", str(SAMPLE_LINES), self.samples], timeout=30)
        except TransportError:
            return None
        return hottest(found.stdout) if found.ok else None

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.read()

    def __enter__(self) -> "WindowFeed":
        self._thread = threading.Thread(target=self._follow, name="edgeprof-window-feed", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if kind is None:
            self.read()     # the last window, which ended after the last poll


def fill_from_windows(result, windows: list[dict], options) -> None:
    """A result of the finished windows of a stopped --duration run: the figures the runner would have
    reported over them (timing.timing_report: latency statistics, throughput over the windows' span, every
    time, the window marks), stop reason "interrupted"."""
    times = [t for window in windows for t in window["times_ms"]]
    marks = [{key: window[key] for key in ("start_s", "end_s", "iterations")} for window in windows]
    span = {"start_s": marks[0]["start_s"], "end_s": marks[-1]["end_s"],
            "wall_s": marks[-1]["end_s"] - marks[0]["start_s"], "windows": marks}
    report = timing.timing_report(times, span, "interrupted", None, result.batch)
    result.span = options.span
    result.latency_ms = dict(report["latency_ms"] or {})
    result.throughput_ips = report["throughput_ips"]
    result.iterations = report["iterations"]
    result.timed_window = report["timed_window"]
    result.settings.update(duration_s=options.duration_s, window_s=options.window_s, span=options.span,
                           precision=options.precision)
    result.figures.update({key: report.get(key) for key in ("ci95_ms", "ci_rel", "stop_reason", "times_ms",
                                                            "windows")})
    result.method = {"iterations_policy": f"duration: {options.duration_s} s in windows of {options.window_s} s, "
                                          f"stopped (Ctrl-C) after {len(marks)} windows",
                     "statistic": "median and percentiles of per-iteration times; 95 % CI of the median from "
                                  "order statistics"}
