"""The Caffe backend's timed window: caffe's own glog times of "*** Benchmark begins/ends ***" (real logs in
tests/parsers/logs/caffe_time), placed on the board's epoch clock with `date +"%Y %z %s"`."""
import calendar
from pathlib import Path

import pytest

from edgeprof.backends.caffe.runner import timed_window
from edgeprof.parsers.caffe_time import benchmark_stamps, glog_epoch

LOGS = Path(__file__).parent.parent / "parsers" / "logs" / "caffe_time"
# 2026-11-23 19:24:56 UTC, the lab run the bullseye logs come from.
RUN = calendar.timegm((2026, 11, 23, 19, 24, 56, 0, 0, 0))


def read(name: str) -> str:
    return (LOGS / name).read_text()


def test_window_of_a_real_run():
    log = read("bullseye_cpu_small224.log")
    assert benchmark_stamps(log) == ("1123 19:24:56.235836", "1123 19:24:56.371284")
    window = timed_window(log, f"2026 +0000 {RUN}\n")
    assert window["start_s"] == pytest.approx(RUN + 0.235836)
    assert window["end_s"] - window["start_s"] == pytest.approx(0.135448)
    # "Total Time: 135 ms." in the same log: the window is the timed iterations.
    assert "Total Time: 135 ms." in log


def test_local_time_is_converted_with_the_board_offset():
    log = read("bullseye_cpu_small224.log")
    # The same local time on a board at UTC-05:30 is 5.5 hours later in epoch seconds.
    window = timed_window(log, f"2026 -0530 {RUN + 19800}")
    assert window["start_s"] == pytest.approx(RUN + 19800 + 0.235836)


def test_a_tabs_lost_copy_gives_the_same_window():
    assert timed_window(read("bullseye_cpu_small224_tabs_expanded.log"), f"2026 +0000 {RUN}") == \
        timed_window(read("bullseye_cpu_small224.log"), f"2026 +0000 {RUN}")


@pytest.mark.parametrize("name", ["bullseye_cpu_small224_no_glog_prefix.log",   # no times to read
                                  "weiliu89_ssd_issue33_priorbox_abort.log",     # aborted: no "ends"
                                  "bullseye_cpu_argmax_no_backward.log"])
def test_no_window_when_the_log_cannot_tell(name):
    assert timed_window(read(name), f"2026 +0000 {RUN}") is None


def test_a_run_across_new_year():
    new_year = calendar.timegm((2027, 1, 1, 0, 0, 1, 0, 0, 0))
    # glog's line was written just before midnight, `date` read just after it: the stamp belongs to 2026.
    assert glog_epoch("1231 23:59:59.5", year=2027, utc_offset_s=0, near_s=new_year) == new_year - 1.5
    # `date` read just before midnight, the line written just after it: 2027.
    assert glog_epoch("0101 00:00:02", year=2026, utc_offset_s=0, near_s=new_year - 1) == new_year + 1
    # 29 February: only the leap year is a candidate.
    leap = calendar.timegm((2028, 2, 29, 12, 0, 0, 0, 0, 0))
    assert glog_epoch("0229 12:00:00", year=2028, utc_offset_s=3600, near_s=leap) == leap - 3600
    # A newer glog prints the year itself.
    assert glog_epoch("20261123 19:24:56.25", year=1999, utc_offset_s=0, near_s=0) == RUN + 0.25
