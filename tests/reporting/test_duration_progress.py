"""The live line of a --duration item (edgeprof.reporting.progress): seconds done of asked on the board's
clock, the last window's median and the hottest sensor, a new item starting over at its window 0."""
from rich.console import Console

from edgeprof.reporting.progress import DurationProgress, duration_progress


def shown(progress: DurationProgress) -> str:
    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(duration_progress(progress))
    return console.export_text()


def window(index, times, temp=None, start=1000.0):
    return {"index": index, "start_s": start + 2 * index, "end_s": start + 2 * index + 2, "iterations": len(times),
            "times_ms": times, "temp_max_c": temp}


def test_nothing_before_the_first_window_then_the_last_one():
    progress = DurationProgress(asked_s=30.0)
    assert duration_progress(progress) is None
    progress.update(window(0, [30.0, 10.0, 20.0], temp=48.5))
    assert "2/30 s, window 1: median 20 ms, hottest 48.5 C" in shown(progress)
    progress.update(window(3, [7.0], temp=None))
    assert "8/30 s, window 4: median 7 ms" in shown(progress) and "hottest" not in shown(progress)
    # The next item's first window starts the count again; an empty window says so.
    progress.update(window(0, [], start=5000.0))
    assert "2/30 s, window 1: no iteration ended" in shown(progress)
