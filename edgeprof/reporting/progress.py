"""Live views: a lab run (one row per board, items done, failed and left, and the time still to go), and a
--duration item as its windows end (elapsed of asked, the last window's median, the hottest sensor)."""
from __future__ import annotations

import time
from dataclasses import dataclass

from rich.progress_bar import ProgressBar
from rich.table import Table

from ..lab import LabRun
from ..onboard.timing import percentile
from .terminal import styled


def lab_progress(lab_run: LabRun | None) -> Table:
    table = Table("board", "state", "done", "failed", "skipped", "left", "now", title_justify="left")
    if lab_run is None:
        table.title = "starting"
        return table
    boards = lab_run.boards.values()
    left = sum(b.left for b in boards)
    eta = lab_run.eta_s()
    elapsed = (lab_run.finished or time.monotonic()) - lab_run.started
    table.title = (f"plan {lab_run.plan.name} ({lab_run.plan_hash}): {len(lab_run.results)} stored, {left} left, "
                   f"{elapsed:.0f} s" + (f", about {eta:.0f} s to go" if eta is not None and left else "")
                   + (" — stopping after the items in flight" if lab_run.stopping else ""))
    for b in boards:
        style = {"failed": "red", "finished": "green", "measuring": "yellow"}.get(b.state, "dim")
        table.add_row(b.device, styled((b.state, style)), str(b.done), str(b.failed), str(b.skipped), str(b.left),
                      b.error or b.current or "")
    return table


@dataclass
class DurationProgress:
    """A --duration item as the session hands on its windows (on_window, edgeprof.telemetry.window_log);
    update() runs in the window feed's thread, the live display reads the fields. A window 0 starts a new
    item."""
    asked_s: float
    first_start_s: float | None = None
    last: dict | None = None

    def update(self, window: dict) -> None:
        if window["index"] == 0 or self.first_start_s is None:
            self.first_start_s = window["start_s"]
        self.last = window


def duration_progress(progress: DurationProgress) -> Table | None:
    """One line: a bar of the seconds done (the board's clock, from the first window's start to the last's end)
    of those asked, the window count, the last window's median and the hottest sensor then; None before the
    first window ended."""
    last = progress.last
    if last is None:
        return None
    done_s = min(last["end_s"] - progress.first_start_s, progress.asked_s)
    times = sorted(last["times_ms"])
    median = f"median {percentile(times, 50):.4g} ms" if times else "no iteration ended"
    hottest = f", hottest {last['temp_max_c']:g} C" if last.get("temp_max_c") is not None else ""
    line = Table.grid(padding=(0, 1))
    line.add_row(ProgressBar(total=progress.asked_s, completed=done_s, width=30),
                 styled(f"{done_s:.0f}/{progress.asked_s:g} s, window {last['index'] + 1}: {median}{hottest}"))
    return line
