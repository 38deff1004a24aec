"""Parse the text that ``caffe time`` prints (stderr, through glog).

What a run prints, once the net is built (BVLC Caffe 1.0 ``tools/caffe.cpp``; weiliu89's SSD fork,
jkjung-avt's ssd-caffe, Intel clCaffe and OAID Caffe-HRT print the same lines with other glog line
numbers; NVIDIA Caffe's source adds "Average Initialization Forward/Backward pass: X ms.", which is
none of the figures below)::

    I1123 19:24:56.235836 15090 caffe.cpp:365] *** Benchmark begins ***
    I1123 19:24:56.235837 15090 caffe.cpp:366] Testing for 10 iterations.
    I1123 19:24:56.274407 15090 caffe.cpp:394] Iteration: 1 forward-backward time: 38 ms.
    I1123 19:24:56.371241 15090 caffe.cpp:397] Average time per layer:
    I1123 19:24:56.371250 15090 caffe.cpp:400]  conv1/3x3<TAB>forward: 2.2312 ms.
    I1123 19:24:56.371253 15090 caffe.cpp:403]  conv1/3x3<TAB>backward: 2.6724 ms.
    I1123 19:24:56.371273 15090 caffe.cpp:408] Average Forward pass: 7.323 ms.
    I1123 19:24:56.371276 15090 caffe.cpp:410] Average Backward pass: 6.1777 ms.
    I1123 19:24:56.371279 15090 caffe.cpp:412] Average Forward-Backward: 13.5 ms.
    I1123 19:24:56.371280 15090 caffe.cpp:414] Total Time: 135 ms.
    I1123 19:24:56.371284 15090 caffe.cpp:415] *** Benchmark ends ***

A failing run prints a glog ``F`` line (``F0712 20:17:24.123919 22885 prior_box_layer.hpp:62] Not
Implemented Yet``), ``*** Check failure stack trace: ***``, stack frames, and dies of SIGABRT; a crash
prints glog's signal handler block (``*** SIGSEGV (@0x0) received by PID ...; stack trace: ***``) and
the shell adds ``Aborted (core dumped)``.

The variants handled were all seen in real output (tests/parsers/logs/caffe_time/SOURCES.md lists
where each came from): Debian bullseye's caffe 1.0.0 CPU build run in our lab; jkjung-avt's ssd-caffe
on a Jetson TX2 (a copy that lost the leading ``I`` of a line); weiliu89/caffe SSD on a GPU and its
PriorBox "Not Implemented Yet" abort; BVLC issue pastes whose tabs became spaces and whose glog
prefixes were cut off (GoogLeNet names such as ``inception_3a/1x1``); Intel clCaffe lines quoted
with ``> `` and printing ``3.68935e+011``; OAID Caffe-HRT lines wrapped by the copy; ``-iterations 0``
printing ``-nan``.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from dataclasses import asdict, dataclass, field

# Caffe streams doubles with operator<<, so values may be integers ("135"), scientific notation
# (MSVC prints three exponent digits: "3.68935e+011") or, with -iterations 0, "-nan".
_NUM = r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"

# glog prefix "I1123 18:36:11.468 25697 caffe.cpp:408] ". Everything before the "file:line] " is
# optional because copies lose the leading letter ("0228 11:53:41..."), quote lines with "> ", and
# newer glog can put the year in ("I20261123 ...", google/glog#530); forks differ in file:line only.
_GLOG_PREFIX = re.compile(r"^[\s>]*(?P<severity>[IWEF](?=\d))?[^\]]*?(?P<source>[^\s\]]+:\d+)\]\s?")
# A stack frame inside a layer ("@ 0x7f50e194499b  caffe::ArgMaxLayer<>::Backward_cpu()"): names the layer
# type that failed when the F line's message ("Not Implemented Yet") does not.
_LAYER_FRAME = re.compile(r"^@\s+0x[0-9a-f]+\s+(caffe::\w+Layer<[^>]*>::\w+)\(\)")

_FORWARD = re.compile(rf"Average Forward pass:\s*({_NUM})\s*ms")
_BACKWARD = re.compile(rf"Average Backward pass:\s*({_NUM})\s*ms")
_FORWARD_BACKWARD = re.compile(rf"Average Forward-Backward:\s*({_NUM})\s*ms")
_TOTAL = re.compile(rf"Total Time:\s*({_NUM})\s*ms")
_TESTING_FOR = re.compile(r"Testing for\s+(\d+)\s+iterations")
# "time: X ms." is not required: copies wrap this long line after "forward-backward".
_ITERATION = re.compile(r"Iteration:\s*(\d+)\s+forward-backward")
# Names are right-aligned with setw(10) and followed by a tab that copies turn into spaces, so the
# separator is any whitespace; names themselves may hold '/', '-' and '.'.
_LAYER = re.compile(rf"(?P<name>\S.*?)\s+(?P<direction>forward|backward):\s*(?P<value>{_NUM})\s*ms")

# Fatal signs when no F line survived (a crash, or a copy that kept only the tail), best first.
_SIGNAL_BLOCK = re.compile(r"^\*\*\* (SIG\w+ .*?)\s*\*\*\*$")
_STACK_OR_LIBC = re.compile(r"^\*\*\* (Check failure stack trace:|Error in .*?)\s*\*\*\*$")
_ABORTED_AT = re.compile(r"^\*\*\* (Aborted at .*?)\s*\*\*\*$")
# The shell's report: "Aborted (core dumped)" or "/bin/bash: line 1: 14412 Aborted   <command>".
_SHELL_SIGNAL = re.compile(
    r"^(?:\S*sh: (?:line \d+: )?\d+\s+)?"
    r"(Aborted|Segmentation fault|Killed|Bus error|Floating point exception|Illegal instruction)"
    r"( \(core dumped\))?"
)
_FALLBACKS = (_SIGNAL_BLOCK, _STACK_OR_LIBC, _ABORTED_AT, _SHELL_SIGNAL)

# The glog time of a line, "I1123 19:24:56.235836 15090 caffe.cpp:365] ...": the board's local time,
# month and day without the year (newer glog: "I20261123 ...").
_GLOG_TIME = re.compile(r"^[\s>]*[IWEF]?(?P<date>\d{8}|\d{4}) (?P<clock>\d\d:\d\d:\d\d(?:\.\d+)?)\s")
# A copy may cut the closing stars ("*** Benchmark ends **").
_BENCHMARK = re.compile(r"\*\*\* Benchmark (begins|ends)\b")


@dataclass
class LayerTime:
    name: str
    forward_ms: float | None
    backward_ms: float | None


@dataclass
class CaffeTimeReport:
    forward_ms: float | None
    backward_ms: float | None
    forward_backward_ms: float | None
    total_ms: float | None
    iterations: int | None
    layers: list[LayerTime] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _ms(text: str) -> float | None:
    # "-nan" (from -iterations 0) is not a time; None keeps it out of JSON and statistics.
    value = float(text)
    return value if math.isfinite(value) else None


def parse(text: str) -> CaffeTimeReport:
    """Read the figures and the failure, if any, out of ``caffe time`` output.

    A figure the text does not contain is None. ``iterations`` is N from "Testing for N
    iterations." or else the highest "Iteration: N" seen, so a copy that kept only the last
    iterations still tells how many ran. ``error`` is the message of the first glog F line, or the
    best other fatal sign (signal block, check-failure banner, glibc error, shell "Aborted").
    """
    report = CaffeTimeReport(None, None, None, None, None)
    layers: dict[str, LayerTime] = {}
    declared_iterations = None
    last_iteration = None
    error_rank = len(_FALLBACKS)  # lower is better; an F line is -1
    in_fatal_stack = False

    for raw in text.splitlines():
        prefix = _GLOG_PREFIX.match(raw)
        body = (raw[prefix.end():] if prefix else raw).strip()

        if prefix and prefix.group("severity") == "F":
            if error_rank > -1:
                report.error, error_rank = f"{body} (at {prefix.group('source')})", -1
                in_fatal_stack = True
            continue
        if in_fatal_stack:
            # Only the stack printed right after the F line belongs to it (logs may hold several runs).
            if frame := _LAYER_FRAME.match(body):
                report.error = f"{report.error[:-1]}, in {frame.group(1)}())"
                in_fatal_stack = False
            elif not (body.startswith("@") or body.startswith("*** Check failure stack trace")):
                in_fatal_stack = False
        # Shell and signal-handler lines carry no glog prefix; an INFO line that merely mentions
        # "Aborted" is not a failure.
        if not prefix:
            for rank, pattern in enumerate(_FALLBACKS[: max(error_rank, 0)]):
                if found := pattern.match(body):
                    report.error, error_rank = "".join(part for part in found.groups() if part), rank
                    break

        if m := _FORWARD.search(body):
            report.forward_ms = _ms(m.group(1))
        elif m := _BACKWARD.search(body):
            report.backward_ms = _ms(m.group(1))
        elif m := _FORWARD_BACKWARD.search(body):
            report.forward_backward_ms = _ms(m.group(1))
        elif m := _TOTAL.search(body):
            report.total_ms = _ms(m.group(1))
        elif m := _TESTING_FOR.search(body):
            declared_iterations = int(m.group(1))
        elif m := _ITERATION.search(body):
            last_iteration = max(int(m.group(1)), last_iteration or 0)
        elif m := _LAYER.match(body):
            layer = layers.setdefault(m.group("name"), LayerTime(m.group("name"), None, None))
            setattr(layer, f"{m.group('direction')}_ms", _ms(m.group("value")))

    report.iterations = declared_iterations if declared_iterations is not None else last_iteration
    report.layers = list(layers.values())
    return report


def benchmark_stamps(text: str) -> tuple[str | None, str | None]:
    """The glog times ("1123 19:24:56.235836") of "*** Benchmark begins ***" and of the first "*** Benchmark
    ends ***" after it: the timed iterations lie between them. None where a line or its glog prefix is
    missing (copies that lost the prefix, a run that aborted)."""
    begins = None
    for line in text.splitlines():
        marker = _BENCHMARK.search(line)
        stamp = _GLOG_TIME.match(line)
        if not marker or not stamp:
            continue
        if marker.group(1) == "begins" and begins is None:
            begins = f"{stamp.group('date')} {stamp.group('clock')}"
        elif marker.group(1) == "ends" and begins is not None:
            return begins, f"{stamp.group('date')} {stamp.group('clock')}"
    return begins, None


def glog_epoch(stamp: str, *, year: int, utc_offset_s: int, near_s: float) -> float:
    """Epoch seconds of a glog time printed in local time at UTC offset `utc_offset_s`. A stamp without a
    year gets the one (of `year` - 1, `year`, `year` + 1) that puts it nearest `near_s`, so a run across
    New Year's midnight still lands on the right day."""
    date, clock = stamp.split(" ")
    whole, _, fraction = clock.partition(".")
    candidates = []
    for y in [int(date[:4])] if len(date) == 8 else [year - 1, year, year + 1]:
        try:
            local = calendar.timegm(time.strptime(f"{y}{date[-4:]} {whole}", "%Y%m%d %H:%M:%S"))
        except ValueError:
            continue  # 29 February in a year that has none
        candidates.append(local - utc_offset_s)
    return min(candidates, key=lambda t: abs(t - near_s)) + (float(f"0.{fraction}") if fraction else 0.0)
