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
printing ``-nan``; terminal pastes with the prompt and ``caffe time`` command line before the output, and
several runs one after another (each an invocation; the last run with any figure or error is the record).
"""

from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .lines import lines_of
from .paste import Invocation, command_pattern, is_command

# Caffe streams doubles with operator<<, so values may be integers ("135"), scientific notation
# (MSVC prints three exponent digits: "3.68935e+011") or, with -iterations 0, "-nan".
_NUM = r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
# Counts longer than 18 digits are not counts (and int() refuses strings past 4300 digits).
_COUNT = r"\d{1,18}"

# glog prefix "I1123 18:36:11.468 25697 caffe.cpp:408] ". Everything before the "file:line] " is
# optional because copies lose the leading letter ("0228 11:53:41..."), quote lines with "> ", and
# newer glog can put the year in ("I20261123 ...", google/glog#530); forks differ in file:line only.
# The prefix ends at the line's first "]", looked for in the first _GLOG_HEAD_MAX characters only (a
# prefix is about 45), so reading it costs the same on any line.
_GLOG_HEAD_MAX = 256
_GLOG_HEAD = re.compile(r"[\s>]*(?P<severity>[IWEF](?=\d))?.*?(?P<source>[^\s\]]+:\d+)")
# The whole prefix as glog writes it, tried first because it is read without backtracking.
_GLOG_FULL = re.compile(r"(?P<severity>[IWEF])\d{4,8} [\d:.]+ +\d+ (?P<source>[^\s\]]+:\d+)")
# A stack frame inside a layer ("@ 0x7f50e194499b  caffe::ArgMaxLayer<>::Backward_cpu()"): names the layer
# type that failed when the F line's message ("Not Implemented Yet") does not.
_LAYER_FRAME = re.compile(r"^@\s+0x[0-9a-f]+\s+(caffe::\w+Layer<[^>]*>::\w+)\(\)")

# What a line must contain to matter at all: Lines.select passes over every other line (net setup, the
# prototxt dump) without a Python step. " ms" finds every figure ("Average Forward pass: X ms.", "Total Time",
# iterations, layers), "Iteration:" the wrapped iteration lines, "\nF" and "> F" glog FATAL lines ("F1123 ..."
# at the start of a line or quoted), "@" their stack frames, " time -" a pasted "caffe time -model ..." line.
# Each keyword costs one scan of the text, so there are few, and long ones where possible.
_KEYWORDS = (" ms", "Testing for", "Iteration:", "***", "Use CPU", "Use GPU", "Initializing net", " time -",
             "Aborted", "Segmentation fault", "Killed", "Bus error", "Floating point exception",
             "Illegal instruction", "\nF", "> F", "@")
_FORWARD = re.compile(rf"Average Forward pass:\s*({_NUM})\s*ms")
_BACKWARD = re.compile(rf"Average Backward pass:\s*({_NUM})\s*ms")
_FORWARD_BACKWARD = re.compile(rf"Average Forward-Backward:\s*({_NUM})\s*ms")
_TOTAL = re.compile(rf"Total Time:\s*({_NUM})\s*ms")
_TESTING_FOR = re.compile(rf"Testing for\s+({_COUNT})\s+iterations")
# "time: X ms." is not required: copies wrap this long line after "forward-backward".
_ITERATION = re.compile(rf"Iteration:\s*({_COUNT})\s+forward-backward")
# One timed iteration's line exactly as glog prints it, every part bounded. A long run's log is mostly these
# (LeNet on the lab's TX2s: thousands a second), and reading each one costs the host more than carrying it
# over SSH; in a stretch of them whose numbers count up by one only the first and the last tell anything (the
# run's last iteration, and that no run started over inside), so `invocations` reads just those two.
_GLOG_ITERATION_LINE = (r"I\d{4,8} [\d:.]{8,21} {1,16}\d{1,10} [^\s\]]{1,256}:\d{1,9}\] "
                        rf"Iteration: {_COUNT} forward-backward time: {_NUM} ms\.\r?")
_ITERATION_STRETCH = re.compile(rf"^{_GLOG_ITERATION_LINE}(?:\n{_GLOG_ITERATION_LINE})+$", re.MULTILINE)
_ITERATION_NUMBER = re.compile(rf"\] Iteration: ({_COUNT}) ")
# "<name><TAB>forward: X ms.": names are right-aligned with setw(10) and followed by a tab that copies turn
# into spaces, so the separator is any whitespace; names themselves may hold '/', '-' and '.'. The name is
# everything before the separator, found by searching for the one whitespace character before
# "forward:"/"backward:" (a pattern that scanned the name would go quadratic on long lines).
_LAYER = re.compile(rf"\s(?P<direction>forward|backward):\s*(?P<value>{_NUM})\s*ms")
# No real layer name comes near this; a record keeps at most _MAX_LAYERS layers (the largest real nets,
# ResNet-152 with BatchNorm and Scale as layers of their own, have under 1,000), so memory stays bounded.
_MAX_NAME = 1024
_MAX_LAYERS = 10_000
# Where a run starts: "Use CPU." / "Use GPU with device ID 0" (tools/caffe.cpp) and "Initializing net from
# parameters:" (net.cpp); a second one in the same invocation means the next run was pasted below.
_RUN_START = re.compile(r"Use CPU\.|Use GPU with device ID|Initializing net from parameters")
_COMMAND = command_pattern(r"caffe", r"\s+time\b")

# Fatal signs when no F line survived (a crash, or a copy that kept only the tail), best first: the
# inside of "*** ... ***" banners, then the shell's report.
_SIGNAL_BLOCK = re.compile(r"SIG\w+ ")
_STACK_OR_LIBC = re.compile(r"Check failure stack trace:|Error in ")
_ABORTED_AT = re.compile(r"Aborted at ")
# The shell's report: "Aborted (core dumped)" or "/bin/bash: line 1: 14412 Aborted   <command>".
_SHELL_SIGNAL = re.compile(
    r"(?:\S*sh: (?:line \d+: )?\d+\s+)?"
    r"(Aborted|Segmentation fault|Killed|Bus error|Floating point exception|Illegal instruction)"
    r"( \(core dumped\))?"
)
_BANNER_RANKS = ((0, _SIGNAL_BLOCK), (1, _STACK_OR_LIBC), (2, _ABORTED_AT))
_SHELL_RANK = 3

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
        # What asdict gives, without its deep copy of every number: a lab stores one an item.
        return {**vars(self), "layers": [dict(vars(layer)) for layer in self.layers]}


def _ms(text: str) -> float | None:
    # "-nan" (from -iterations 0) is not a time; None keeps it out of JSON and statistics.
    value = float(text)
    return value if math.isfinite(value) else None


def _glog_prefix(line: str) -> tuple[str | None, str | None, int]:
    """(severity letter, "file:line", where the message starts) of a glog line; (None, None, 0) for others."""
    close = line.find("]", 0, _GLOG_HEAD_MAX)
    if close < 0:
        return None, None, 0
    head = _GLOG_FULL.fullmatch(line, 0, close) or _GLOG_HEAD.fullmatch(line, 0, close)
    if not head:
        return None, None, 0
    return head.group("severity"), head.group("source"), close + 1


def _banner(body: str) -> str | None:
    """The inside of "*** X ***" (glog's signal handler, check failures, glibc), or None."""
    if body.startswith("*** ") and body.endswith("***") and len(body) > 7:
        return body[4:-3].strip()
    return None


class _Run:
    """One `caffe time` invocation as far as the lines show it."""

    def __init__(self, first_line: int, command: str | None = None) -> None:
        self.report = CaffeTimeReport(None, None, None, None, None)
        self.layers: dict[str, LayerTime] = {}
        self.declared_iterations: int | None = None
        self.last_iteration: int | None = None
        self.error_rank = _SHELL_RANK + 1  # lower is better; an F line is -1
        self.in_fatal_stack = False
        self.started: set[str] = set()  # the run-start lines seen
        self.benchmark = 0  # 0 before "Benchmark begins"/"Testing for"/iterations, 1 during, 2 at the figures
        self.glog = False
        self.first_line = self.last_line = first_line
        self.command = command

    def empty(self) -> bool:
        return not (self.started or self.benchmark or self.layers or self.report.error or self.command
                    or self.report.total_ms is not None or self.report.forward_ms is not None
                    or self.report.backward_ms is not None or self.report.forward_backward_ms is not None)

    def invocation(self, number: int) -> Invocation:
        self.report.iterations = (self.declared_iterations if self.declared_iterations is not None
                                  else self.last_iteration)
        self.report.layers = list(self.layers.values())
        form = "caffe time, glog lines" if self.glog else "caffe time, lines without glog prefixes"
        return Invocation(number, self.first_line, self.last_line, self.command, form, self.report)


class _Parser:
    def __init__(self) -> None:
        self.run = _Run(1)
        self.count = 0
        self.done: list[Invocation] = []

    def next_run(self, number: int, command: str | None = None) -> None:
        if not self.run.empty():
            self.count += 1
            self.done.append(self.run.invocation(self.count))
        self.run = _Run(number, command)

    def line(self, number: int, line: str) -> None:
        run = self.run
        if run.in_fatal_stack and number != run.last_line + 1:
            run.in_fatal_stack = False  # another line came between: the stack is over
        severity, source, start = _glog_prefix(line)
        body = line[start:].strip()
        if severity == "F":
            run.glog = True
            run.last_line = number
            if run.error_rank > -1:
                run.report.error, run.error_rank = f"{body} (at {source})", -1
                run.in_fatal_stack = True
            return
        if run.in_fatal_stack:
            # Only the stack printed right after the F line belongs to it (logs may hold several runs).
            if frame := _LAYER_FRAME.match(body):
                run.report.error = f"{run.report.error[:-1]}, in {frame.group(1)}())"
                run.in_fatal_stack = False
            elif not (body.startswith("@") or body.startswith("*** Check failure stack trace")):
                run.in_fatal_stack = False
            run.last_line = number
        if source is None and is_command(_COMMAND, line):
            self.next_run(number, line.strip())
            return
        if source is not None:
            run.glog = True
        self.message(number, body, glog=source is not None)

    def message(self, number: int, body: str, glog: bool) -> None:
        run = self.run
        report = run.report
        # Layer lines first: they are most of the lines that get here. No other line has "forward:" or
        # "backward:" after a space ("forward-backward time:", "Average Forward pass:").
        if (m := _LAYER.search(body)) and 0 < m.start() <= _MAX_NAME:
            name = body[:m.start()].rstrip()
            layer = run.layers.get(name)
            if layer is None and len(run.layers) < _MAX_LAYERS:
                layer = run.layers[name] = LayerTime(name, None, None)
            if layer is not None:
                setattr(layer, f"{m.group('direction')}_ms", _ms(m.group("value")))
            run.benchmark = 2
        elif start := _RUN_START.match(body):
            if start.group() in run.started or run.benchmark or report.error:
                self.next_run(number)
                run = self.run
            run.started.add(start.group())
        elif m := _FORWARD.search(body):
            run = self.figures_of(number, report.forward_ms)
            run.report.forward_ms = _ms(m.group(1))
        elif m := _BACKWARD.search(body):
            run = self.figures_of(number, report.backward_ms)
            run.report.backward_ms = _ms(m.group(1))
        elif m := _FORWARD_BACKWARD.search(body):
            run = self.figures_of(number, report.forward_backward_ms)
            run.report.forward_backward_ms = _ms(m.group(1))
        elif m := _TOTAL.search(body):
            run = self.figures_of(number, report.total_ms)
            run.report.total_ms = _ms(m.group(1))
        elif m := _TESTING_FOR.search(body):
            if run.declared_iterations is not None or run.benchmark > 1:
                self.next_run(number)
                run = self.run
            run.declared_iterations, run.benchmark = int(m.group(1)), max(run.benchmark, 1)
        elif m := _ITERATION.search(body):
            iteration = int(m.group(1))
            if run.benchmark > 1 or (run.last_iteration is not None and iteration <= run.last_iteration):
                self.next_run(number)  # iterations count from 1 again: the next run
                run = self.run
            run.last_iteration, run.benchmark = iteration, max(run.benchmark, 1)
        elif marker := _BENCHMARK.match(body):
            if marker.group(1) == "begins":
                if run.benchmark:
                    self.next_run(number)
                    run = self.run
                run.benchmark = 1
        elif not glog:
            # Shell and signal-handler lines carry no glog prefix; an INFO line that merely mentions
            # "Aborted" is not a failure.
            self.fatal_sign(body)
            if run.report.error is None:
                return
        else:
            return
        run.last_line = number

    def figures_of(self, number: int, current: float | None) -> _Run:
        """The run a summary figure belongs to: a new one when this one already printed that figure."""
        if current is not None:
            self.next_run(number)
        self.run.benchmark = 2
        return self.run

    def fatal_sign(self, body: str) -> None:
        run = self.run
        inside = _banner(body)
        if inside is not None:
            for rank, pattern in _BANNER_RANKS:
                if rank < run.error_rank and pattern.match(inside):
                    run.report.error, run.error_rank = inside, rank
                    return
        elif _SHELL_RANK < run.error_rank and (found := _SHELL_SIGNAL.match(body)):
            run.report.error, run.error_rank = "".join(part for part in found.groups() if part), _SHELL_RANK

    def finish(self) -> Iterator[Invocation]:
        yield from self.done
        self.done.clear()


def _thinned(text: str) -> str:
    """`text` with the lines inside each stretch of glog iteration lines numbered k, k+1, ... emptied (their
    line ends kept, so every line keeps its number): what the parser makes of the stretch is unchanged."""
    pieces, kept_to = [], 0
    for stretch in _ITERATION_STRETCH.finditer(text):
        numbers = _ITERATION_NUMBER.findall(stretch.group())
        first = int(numbers[0])
        if numbers != list(map(str, range(first, first + len(numbers)))):
            continue  # a run starts over inside (or numbers with leading zeros): every line is read
        first_end = text.index("\n", stretch.start())
        last_start = text.rindex("\n", 0, stretch.end()) + 1
        pieces += [text[kept_to:first_end], "\n" * (len(numbers) - 1)]
        kept_to = last_start
    return "".join(pieces) + text[kept_to:] if pieces else text


def invocations(source: str | Iterable[str]) -> Iterator[Invocation]:
    """Every `caffe time` run in `source` (text or lines), in order, each as soon as the next one begins.

    Runs are told apart by a pasted ``caffe time`` command line, a second run-start line ("Use CPU.", "Use
    GPU with device ID", "Initializing net from parameters"), a second "Benchmark begins" or "Testing for N
    iterations", iteration numbers starting over, or a summary figure printed twice.
    """
    if isinstance(source, str):
        source = _thinned(source)
    parser = _Parser()
    for number, line, _ in lines_of(source).select(_KEYWORDS):
        parser.line(number, line)
        if parser.done:
            yield from parser.finish()
    parser.next_run(0)
    yield from parser.finish()


def choose(found: Iterable[Invocation]) -> Invocation | None:
    """The invocation `parse` reports: the last one with a figure, a layer or an error (a run cut off before
    any, such as the end of a log still being written, is passed over), else the last one."""
    last = last_with_output = None
    for last in found:
        report = last.record
        if report.layers or report.error or report.iterations is not None or any(
                value is not None for value in (report.forward_ms, report.backward_ms, report.forward_backward_ms,
                                                report.total_ms)):
            last_with_output = last
    return last_with_output or last


def parse(source: str | Iterable[str]) -> CaffeTimeReport:
    """Read the figures and the failure, if any, out of ``caffe time`` output: the last run in it.

    A figure the text does not contain is None. ``iterations`` is N from "Testing for N
    iterations." or else the highest "Iteration: N" seen, so a copy that kept only the last
    iterations still tells how many ran. ``error`` is the message of the run's first glog F line, or
    the best other fatal sign (signal block, check-failure banner, glibc error, shell "Aborted").
    """
    chosen = choose(invocations(source))
    return chosen.record if chosen else CaffeTimeReport(None, None, None, None, None)


def benchmark_stamps(text: str) -> tuple[str | None, str | None]:
    """The glog times ("1123 19:24:56.235836") of "*** Benchmark begins ***" and of the first "*** Benchmark
    ends ***" after it: the timed iterations lie between them. None where a line or its glog prefix is
    missing (copies that lost the prefix, a run that aborted)."""
    begins = None
    for marker in _BENCHMARK.finditer(text):
        line_start = max(text.rfind("\n", 0, marker.start()), text.rfind("\r", 0, marker.start())) + 1
        stamp = _GLOG_TIME.match(text[line_start:marker.start()])
        if not stamp:
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
