"""Live progress of a --duration run on the lab: the session hands each window to on_window while the item
still runs (before its result exists), from the runner's window log on the board, with the sampler's latest
temperature on sim-tx2's simulated tegrastats; every window of the stored timeline is handed on once."""
import time

import pytest

from edgeprof.backends import Options
from edgeprof.session import measure
from edgeprof.storage import open_store

pytestmark = pytest.mark.lab


def test_windows_arrive_while_the_item_runs(tmp_path, lab_inventory):
    arrived, arrived_at = [], []

    def on_window(window):
        arrived.append(window)
        arrived_at.append(time.time())

    with open_store(tmp_path / "results.sqlite") as store:
        [result] = measure("sim-tx2", ["alexnet"], backends=("pytorch",), options=Options(duration_s=6.0, window_s=2.0),
                           store=store, inventory=str(lab_inventory), wait_s=600,
                           on_window=on_window)
    assert result.status == "ok", result.error
    timeline = result.timeline["windows"]
    assert [w["index"] for w in arrived] == [w["index"] for w in timeline]
    assert [w["iterations"] for w in arrived] == [w["iterations"] for w in timeline]
    # The first window was handed on while the runner still ran: before its timed window ended, 4 s after the
    # first window's end (the lab's boards share this host's clock).
    assert len(arrived) >= 3 and arrived_at[0] < result.timed_window["end_s"]
    assert all(w["temp_max_c"] is not None and 30 < w["temp_max_c"] < 60 for w in arrived)
