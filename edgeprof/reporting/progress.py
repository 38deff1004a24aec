"""The live view of a lab run: one row per board, items done, failed and left, and the time still to go."""
from __future__ import annotations

import time

from rich.table import Table

from ..lab import LabRun
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
