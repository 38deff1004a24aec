"""Parse what TensorRT's ``trtexec`` prints, and the JSON files its ``--exportTimes`` and ``--exportProfile`` write.

The text summary changed with almost every TensorRT major version (sources: the trtexec/sampleReporting
sources and the real logs listed in tests/parsers/logs/trtexec/SOURCES.md):

* TensorRT 1 to 5 (``giexec`` up to 3.x, then its own ``trtexec.cpp``) print one line per iteration, each the
  mean of ``--avgRuns`` runs: ``Average over 10 runs is 1.17613 ms.`` (1.x to 3.x),
  ``Average over 10 runs is 3.06995 ms (percentile time is 3.08531).`` (4.0) and
  ``Average over 10 runs is 55.2518 ms (host walltime is 55.3944 ms, 99% percentile time is 59.9569).`` (5.x).
  The first figure is GPU time between CUDA events around ``enqueue`` (``--hostTime`` makes it host time around
  ``execute``, which the output does not say); the host walltime brackets the same enqueue plus the
  synchronisation. There is no per-run minimum or percentile over the whole run.
* TensorRT 6/7 (``sampleReporting.cpp``) print trace lines ``Average on 10 runs - GPU latency: ... - Host
  latency: ... (end to end ..., enqueue ...)`` and then blocks: ``Host Latency`` / ``min: X ms (end to end Y
  ms)`` ... ``percentile: X ms at 99%`` / ``throughput: X qps`` / ``walltime: X s`` / ``Enqueue Time`` /
  ``GPU Compute`` ... ``total compute time: X s``.
* TensorRT 8.0-8.2: ``=== Performance summary ===`` with ``Throughput:``, ``Latency: min = ..., percentile(99%) =
  ...``, ``End-to-End Host Latency:``, ``Enqueue Time:``, ``H2D Latency:``, ``GPU Compute Time:``, ``D2H Latency:``.
  8.4 dropped the End-to-End line (TensorRT CHANGELOG, 8.4.1); later versions print several percentiles
  (``--percentile=90,95,99`` by default in the 10.x help). Throughput goes through ``operator<<``, so large
  values come out in scientific notation (``Throughput: 2.54521e+06 qps``).

"Latency" (TensorRT 6+) is the host latency of one query: H2D + GPU compute + D2H. It is reported as
``latency_ms``; the GPU compute alone is ``gpu_compute_ms``. For TensorRT 1-5 the only figures are the
per-iteration means, so ``gpu_compute_ms.mean`` is their mean (every line covers the same number of runs) and
``latency_ms.mean`` the mean host walltime (5.x). Up to 4.x the tool copies nothing to or from the GPU (giexec.cpp
and 4.0's trtexec.cpp allocate device buffers only and time ``enqueue`` on them), so a query's latency is that
same figure and ``latency_ms.mean`` is the same mean. The other statistics stay None rather than be made up.

Each invocation's ``format`` names the layout recognized (TensorRT 1-3 giexec, 4, 5, 6-7, 8.0-8.2, 8.4, 8.5+)
and the version the log states, if any.

Real copies are messy: timestamps and ``[I]`` may be missing, lines quoted with ``#`` or ``>``, ``=`` signs
lost, several summary lines run together, summary headers missing, several runs pasted one after another.
The report describes the last complete run.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

from .lines import lines_of
from .paste import Invocation

# operator<< writes doubles as "18392", "0.0386963", "2.54521e+06", and an empty trace as "inf"/"nan".
_NUM = r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|inf|nan)"

# "[07/14/2023-11:55:18] [I] " (sample logger), optionally quoted ("# ", "> ") or indented by the copy;
# the month can be 00 in a real Xavier log (NVIDIA/retinanet-examples#118), so digits are not range-checked.
_PREFIX = re.compile(
    r"^[\s#>`]*(?:\[\d{2}/\d{2}/\d{4}-\d{2}:\d{2}:\d{2}\]\s*)?(?:\[(?P<severity>[IWEVF])\]\s*)?(?:\[TRT\]\s*)?"
)
# Version codes and parts are short; longer digit runs are not versions (int() refuses past 4300 digits).
_BANNER = re.compile(r"&&&& (?P<state>RUNNING|PASSED|FAILED) TensorRT\.trtexec(?: \[TensorRT v(?P<code>\d{1,9})\])?")
# "TensorRT version: 8.2.1"; TensorRT 8.0 printed the integer NV_TENSORRT_VERSION instead ("8001").
_VERSION_LINE = re.compile(r"TensorRT version:\s*(?P<version>\d{1,9}(?:\.\d{1,9})*)(?!\d)")

_TRT5_AVERAGE = re.compile(
    rf"Average over (?P<runs>\d+) runs is (?P<gpu>{_NUM}) ms(?: \(host walltime is (?P<host>{_NUM}) ms)?"
)
_TRACE = re.compile(r"Average on \d+ runs - GPU latency:")
# TensorRT 1-3 called the tool giexec.
_COMMAND = re.compile(r"(?:^|[\s/$])(?:trtexec|giexec)(?:\.exe)?\s+-")

# TensorRT 8+ summary labels, longest first so that "Host Latency" is not read as "Latency".
_SUMMARY_LABEL = re.compile(
    r"(?<![\w-])(?P<label>End-to-End Host Latency|Host Latency|H2D Latency|D2H Latency|GPU Compute Time"
    r"|Enqueue Time|Total Host Walltime|Total GPU Compute Time|Latency|Throughput):"
)
_SUMMARY_FIELD = {"Latency": "latency_ms", "Host Latency": "latency_ms", "Enqueue Time": "enqueue_ms",
                  "H2D Latency": "h2d_ms", "GPU Compute Time": "gpu_compute_ms", "D2H Latency": "d2h_ms"}
# Copies lose the "=" ("max 6.19507 ms", beyondli/Yolo_on_Jetson#4), so it is optional.
_STAT = {name: re.compile(rf"\b{name}\s*=?\s*(?P<value>{_NUM})\s*ms") for name in ("min", "max", "mean", "median")}
_PERCENTILE = re.compile(rf"percentile\(\s*(?P<p>{_NUM})\s*%\)\s*=?\s*(?P<value>{_NUM})\s*ms")
_THROUGHPUT = re.compile(rf"(?i:throughput):\s*(?P<value>{_NUM})\s*qps")

# TensorRT 6/7 blocks: a header line, then "name: value ms" lines. These three are all 7.x prints.
_BLOCK_HEADER = {"Host Latency": "latency_ms", "Enqueue Time": "enqueue_ms", "GPU Compute": "gpu_compute_ms"}
_BLOCK_STAT = re.compile(rf"^(?P<name>min|max|mean|median):\s*(?P<value>{_NUM})\s*ms")
_BLOCK_PERCENTILE = re.compile(rf"^percentile:\s*(?P<value>{_NUM})\s*ms at (?P<p>{_NUM})%")

# Error lines that name the cause, best first; any other [E] line comes after them.
_STRONG_ERRORS = (
    re.compile(r"Error\[\d+\]|Error Code \d+"),
    re.compile(r"(?i)could not parse|CaffeParser|UffParser|Parameter check failed|unsupported"),
    re.compile(r"Unknown (?:option|argument)"),
)
# TensorRT 4/5 print failures without a severity tag.
_UNTAGGED_ERROR = re.compile(
    r"^(?:Unknown argument: .*|ERROR: .*|could not parse layer type .*|Parameter check failed at: .*"
    r"|Engine could not be created|Segmentation fault.*)$"
)

# What a line must contain to matter at all: Lines.select passes over every other line without a Python step.
# " ms" and "qps" find every figure (summaries, TensorRT 6/7 block lines, TensorRT 4/5 averages); the rest are
# banners, versions, command lines, block headers and error lines. Each keyword costs one scan of the text.
_KEYWORDS = ("&&&&", "trtexec", "giexec", "TensorRT version", " ms", "qps", "Performance summary", "Host Latency",
             "Enqueue Time", "GPU Compute", "[E]", "[F]", "ERROR", "Unknown ", "could not", "Parameter check",
             "Segmentation fault")
# A line with " ms" matters only with one of these too (one search; the parsing of a line costs ten).
_RELEVANT = re.compile(r"min|max|mean|median|percentile|Average o|qps|&&&&|trtexec|giexec|TensorRT version"
                       r"|Performance summary|Host Latency|Enqueue Time|GPU Compute|\[[EF]\]|ERROR|Unknown |could not"
                       r"|Parameter check|Segmentation fault")

_STATS_FIELDS = ("latency_ms", "gpu_compute_ms", "h2d_ms", "d2h_ms", "enqueue_ms")


@dataclass
class Stats:
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None

    def empty(self) -> bool:
        return all(value is None for value in asdict(self).values())


@dataclass
class TrtexecReport:
    trt_version: str | None = None
    throughput_qps: float | None = None
    latency_ms: Stats = field(default_factory=Stats)
    gpu_compute_ms: Stats = field(default_factory=Stats)
    h2d_ms: Stats = field(default_factory=Stats)
    d2h_ms: Stats = field(default_factory=Stats)
    enqueue_ms: Stats = field(default_factory=Stats)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def version_from_code(code: int) -> str:
    """NV_TENSORRT_VERSION as trtexec prints it in its banner ("v8201", "v101600") or 8.0's version line.

    TensorRT 8 defines it as major*1000 + minor*100 + patch, TensorRT 10 on as major*10000 + minor*100 +
    patch (NvInfer.h / NvInferVersion.h of those releases), so five or more digits mean the newer scheme.
    """
    if code >= 10000:
        return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
    return f"{code // 1000}.{code // 100 % 10}.{code % 100}"


def _number(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _percentile_key(p: float) -> str | None:
    return {90.0: "p90", 95.0: "p95", 99.0: "p99"}.get(p)


@dataclass
class _Run:
    """One trtexec invocation as far as the text shows it."""

    version: str | None = None
    report: TrtexecReport = field(default_factory=TrtexecReport)
    # TensorRT 4/5 per-iteration means: running sums, so that a log of any length takes the same memory.
    trt5_gpu_sum: float = 0.0
    trt5_gpu_count: int = 0
    trt5_host_sum: float = 0.0
    trt5_host_count: int = 0
    best_error: tuple[int, str] | None = None  # (rank, message): lower rank wins, the first of a rank stays
    failed: bool = False
    layout: str | None = None  # the summary layout seen, as the TensorRT versions that print it
    first_line: int = 0
    last_line: int = 0
    command: str | None = None

    def has_figures(self) -> bool:
        r = self.report
        return (r.throughput_qps is not None or self.trt5_gpu_count > 0
                or any(not getattr(r, name).empty() for name in _STATS_FIELDS))

    def has_anything(self) -> bool:
        return (self.has_figures() or self.best_error is not None or self.failed or self.version is not None
                or self.command is not None)

    def add_error(self, message: str, tagged: bool) -> None:
        for rank, pattern in enumerate(_STRONG_ERRORS):
            if pattern.search(message):
                break
        else:
            rank = len(_STRONG_ERRORS) if tagged else len(_STRONG_ERRORS) + 1
        if self.best_error is None or rank < self.best_error[0]:
            self.best_error = (rank, message)

    def finish(self, number: int) -> Invocation:
        report = self.report
        report.trt_version = self.version
        if self.trt5_gpu_count:
            report.gpu_compute_ms.mean = self.trt5_gpu_sum / self.trt5_gpu_count
        if self.trt5_host_count:
            report.latency_ms.mean = self.trt5_host_sum / self.trt5_host_count
        elif self.trt5_gpu_count:
            report.latency_ms.mean = report.gpu_compute_ms.mean  # TensorRT 1-4: no copies (module text)
        if self.best_error and (self.failed or not self.has_figures()):
            report.error = self.best_error[1]
        elif self.failed:
            report.error = "trtexec reported FAILED"
        words = f"trtexec, {self.layout or 'no summary'}"
        words += f", version {self.version} stated" if self.version else ""
        return Invocation(number, self.first_line, self.last_line, self.command, words, report)


def complete(report: TrtexecReport) -> bool:
    """Whether a run's summary is all there: every format ends it with the GPU compute figures (or, for
    TensorRT 4/5, is nothing but them)."""
    return report.gpu_compute_ms.mean is not None


class _Parser:
    def __init__(self) -> None:
        self.run = _Run()
        self.block: str | None = None  # current TensorRT 6/7 block
        self.previous_was_average = False
        self.number = 0  # the line being read
        self.count = 0  # invocations finished
        self.done: list[Invocation] = []

    def new_run(self, command: str | None = None) -> None:
        # A run without a banner (a second summary pasted below the first) comes from the same install.
        if self.run.has_anything():
            self.count += 1
            self.done.append(self.run.finish(self.count))
        self.run = _Run(version=self.run.version, first_line=self.number, last_line=self.number, command=command)
        self.block = None

    def start_if_filled(self, filled: bool) -> None:
        if filled:
            self.new_run()

    def line(self, number: int, raw: str, passed: bool) -> None:
        if passed:
            self.previous_was_average = False  # other output came between
        if not _RELEVANT.search(raw):
            return  # a figure of some other tool ("forward: 2.2 ms." of caffe time)
        prefix = _PREFIX.match(raw)
        severity = prefix.group("severity")
        body = raw[prefix.end():].strip()
        if not body:
            return
        self.number = number
        self.run.first_line = self.run.first_line or number
        self.run.last_line = number

        if banner := _BANNER.search(body):
            self.banner(banner)
            return
        if _COMMAND.search(body):
            # A pasted shell command ("$ ./bin/trtexec --deploy=...") opens the next run's output.
            if self.run.has_figures() or self.run.best_error is not None or self.run.command is not None:
                self.new_run(command=raw.strip())
            else:
                self.run.command = raw.strip()
            self.previous_was_average = False
            return
        if version := _VERSION_LINE.search(body):
            text = version.group("version")
            self.run.version = version_from_code(int(text)) if text.isdigit() else text
            return

        if average := _TRT5_AVERAGE.search(body):
            if not self.previous_was_average and self.run.trt5_gpu_count:
                self.new_run()
            self.previous_was_average = True
            self.run.trt5_gpu_sum += float(average.group("gpu"))
            self.run.trt5_gpu_count += 1
            if average.group("host"):
                self.run.trt5_host_sum += float(average.group("host"))
                self.run.trt5_host_count += 1
                self.run.layout = "TensorRT 5 (Average over N runs, host walltime)"
            elif "percentile time is" in body:
                self.run.layout = "TensorRT 4 (Average over N runs, percentile)"
            else:
                self.run.layout = "TensorRT 1-3 giexec (Average over N runs)"
            return
        self.previous_was_average = False

        if severity in ("E", "F"):  # the samples' logger tags internal errors [F]
            self.run.add_error(body, tagged=True)
            return
        if severity is None and _UNTAGGED_ERROR.match(body):
            self.run.add_error(body, tagged=False)
            return
        if severity in ("W", "V") or _TRACE.search(body):
            return
        if body.startswith("=== Performance summary ==="):
            self.start_if_filled(self.run.has_figures())
            self.summary(body[len("=== Performance summary ==="):])
            return
        if body in _BLOCK_HEADER:
            self.start_if_filled(not getattr(self.run.report, _BLOCK_HEADER[body]).empty())
            self.block = _BLOCK_HEADER[body]
            self.run.layout = "TensorRT 6-7 (Host Latency / GPU Compute blocks)"
            return
        if self.block and self.block_line(body):
            return
        self.summary(body)

    def banner(self, banner: re.Match) -> None:
        state, code = banner.group("state"), banner.group("code")
        if state == "RUNNING":
            if self.run.has_figures() or self.run.best_error is not None or self.run.failed:
                self.new_run()
            self.run.version = None
        if code:
            self.run.version = version_from_code(int(code))
        if state == "FAILED":
            self.run.failed = True
        self.block = None

    def block_line(self, body: str) -> bool:
        stats = getattr(self.run.report, self.block)
        if stat := _BLOCK_STAT.match(body):
            setattr(stats, stat.group("name"), _number(stat.group("value")))
            return True
        if percentile := _BLOCK_PERCENTILE.match(body):
            if key := _percentile_key(float(percentile.group("p"))):
                setattr(stats, key, _number(percentile.group("value")))
            return True
        return False

    def summary(self, text: str) -> None:
        if throughput := _THROUGHPUT.search(text):
            self.start_if_filled(self.run.report.throughput_qps is not None)
            self.run.report.throughput_qps = _number(throughput.group("value"))
        labels = list(_SUMMARY_LABEL.finditer(text))
        for label, following in zip(labels, labels[1:] + [None]):
            if label.group("label") == "End-to-End Host Latency":
                self.run.layout = _summary_layout(self.run.layout, label.group("label"), Stats())
            name = _SUMMARY_FIELD.get(label.group("label"))
            if name is None:
                continue
            segment = text[label.end():following.start() if following else len(text)]
            parsed = Stats()
            for stat, pattern in _STAT.items():
                if found := pattern.search(segment):
                    setattr(parsed, stat, _number(found.group("value")))
            for found in _PERCENTILE.finditer(segment):
                if key := _percentile_key(float(found.group("p"))):
                    setattr(parsed, key, _number(found.group("value")))
            if parsed.empty():
                continue  # prose that names a metric ("Latency: the summation of ..."), not a figure
            # A label seen twice without a new header: the next run was pasted below.
            self.start_if_filled(not getattr(self.run.report, name).empty())
            setattr(self.run.report, name, parsed)
            self.run.layout = _summary_layout(self.run.layout, label.group("label"), parsed)


def _summary_layout(known: str | None, label: str, stats: Stats) -> str:
    """The TensorRT versions whose Performance summary looks like this (module text), most specific first."""
    if label == "End-to-End Host Latency":
        return "TensorRT 8.0-8.2 (Performance summary with End-to-End Host Latency)"
    if known and known.startswith("TensorRT 8.0"):
        return known
    if stats.p90 is not None or stats.p95 is not None:
        return "TensorRT 8.5+ (Performance summary, p90/p95/p99)"
    return known if known and known.startswith("TensorRT 8.5") else "TensorRT 8.4 (Performance summary)"


def invocations(source: str | Iterable[str]) -> Iterator[Invocation]:
    """Every trtexec run in `source` (text or lines), in order, each as soon as the next one begins.

    A run begins at a RUNNING banner, a pasted trtexec command line, or a summary (or summary figure) that
    the current run already has.
    """
    parser = _Parser()
    for number, line, passed in lines_of(source).select(_KEYWORDS):
        parser.line(number, line, passed)
        if parser.done:
            yield from parser.done
            parser.done.clear()
    parser.new_run()
    yield from parser.done


def parse(source: str | Iterable[str]) -> TrtexecReport:
    """Read throughput, latency statistics, TensorRT version and failure out of trtexec's text output.

    Figures the text does not contain are None. With several runs in one text, the last run whose GPU
    compute figures are all there is reported; if none is complete, the last run with a throughput or latency
    figure, else the last that has any figure or an error. ``error`` is set when the run printed ``&&&& FAILED``
    or has no figures but error lines: the message of the most telling error line (``Error[N]``/``Error Code``,
    then parser and "unsupported" messages, then unknown options, then any other ``[E]`` line).
    """
    chosen = choose(invocations(source))
    return chosen.record if chosen else TrtexecReport()


def choose(found: Iterable[Invocation]) -> Invocation | None:
    """The invocation `parse` reports: the last complete run, else the last with a throughput or latency
    figure, else the last with any figure or an error, else the last.

    The middle step is for copies that stop before the GPU compute figures: a copy that goes on with the
    start of its last line again ("Enqueue Time: min = 0.345459 ms, max = 0.399", the next copy cut off) makes
    a second run of one figure, which must not hide the run before it (meta-tegra-community PR 113's excerpt,
    tests/parsers/logs/trtexec/SOURCES.md)."""
    last_complete = last_headline = last_with_output = last = None
    for invocation in found:
        report = invocation.record
        last = invocation
        if complete(report):
            last_complete = invocation
        if report.throughput_qps is not None or not report.latency_ms.empty():
            last_headline = invocation
        if report.error is not None or report.throughput_qps is not None or any(
                not getattr(report, name).empty() for name in _STATS_FIELDS):
            last_with_output = invocation
    return last_complete or last_headline or last_with_output or last


# --- --exportTimes ----------------------------------------------------------------------------------------

@dataclass
class TimesReport:
    iterations: int
    throughput_qps: float | None
    latency_ms: Stats
    gpu_compute_ms: Stats
    h2d_ms: Stats
    d2h_ms: Stats
    enqueue_ms: Stats

    def to_dict(self) -> dict:
        return asdict(self)


def _f32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def trtexec_stats(values: list[float]) -> Stats:
    """min/max/mean/median/p90/p95/p99 picked the way trtexec's sampleReporting.cpp picks them.

    Median: the middle value, or the mean of the two middle ones. Percentile p: with n sorted values,
    exclude = int((1 - p/100) * n), evaluated in float as the C++ does (in double, (1 - 0.9) * 100 truncates
    to 9, in float to 10), and the value is sorted[max(n - 1 - exclude, 0)]. Choosing the same elements keeps
    edgeprof's figures comparable with the summaries trtexec prints; the mean is summed in double.
    """
    if not values:
        return Stats()
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def percentile(p: float) -> float:
        exclude = int(_f32(_f32(1 - _f32(_f32(p) / 100)) * n))
        return ordered[max(n - 1 - exclude, 0)]

    return Stats(min=ordered[0], max=ordered[-1], mean=sum(ordered) / n, median=median,
                 p90=percentile(90), p95=percentile(95), p99=percentile(99))


def _finite_json(text: str, what: str):
    """JSON whose every number is finite: json.loads takes NaN and Infinity, which are no times."""
    def refuse(constant: str):
        raise ValueError(f"{what}: {constant} is not a time")
    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not JSON: {e}") from None


def export_time_records(text: str, warmup_ms: float | None = None) -> list[dict[str, float]]:
    """The per-query records of a ``trtexec --exportTimes=F`` file, each a dict of its numbers, checked (a
    JSON list of objects whose values are finite numbers, each with startComputeMs), without those whose
    compute started before ``warmup_ms`` when it is given (see parse_export_times). ValueError otherwise."""
    what = "trtexec --exportTimes file"
    records = _finite_json(text, what)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"not a {what} (expected a JSON list of records)")
    for number, record in enumerate(records, 1):
        if "startComputeMs" not in record:
            raise ValueError(f"{what}: record {number} has no startComputeMs")
        for key, value in record.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{what}: record {number}: {key} is {value!r}, not a number")
    if warmup_ms is not None:
        records = [r for r in records if r["startComputeMs"] >= warmup_ms]
    return records


def parse_export_times(text: str, warmup_ms: float | None = None, batch: int = 1) -> TimesReport:
    """Statistics of the per-iteration records ``trtexec --exportTimes=F`` writes.

    Field names: TensorRT 8+ write startEnqMs/endEnqMs/startH2dMs/.../h2dMs/computeMs/d2hMs/latencyMs
    (sampleReporting.cpp exportJSONTrace); TensorRT 7 wrote startInMs/endInMs/startComputeMs/endComputeMs/
    startOutMs/endOutMs/inMs/computeMs/outMs/latencyMs/endToEndMs (samples/opensource/trtexec/tracer.py), without
    enqueue times. Both are read.

    Older exporters (8.2's exportJSONTrace, for one) write the warm-up iterations too. trtexec itself drops
    the records whose compute started before the warm-up time (isNotWarmup: computeStart >= warmupMs); pass
    the ``--warmUp`` value as ``warmup_ms`` to do the same. Exporters that already skip warm-ups are unaffected.

    Throughput follows trtexec: queries over the span from the first kept H2D start to the last D2H end;
    ``batch`` multiplies it for implicit-batch engines, as trtexec's ``--batch`` does.
    """
    records = export_time_records(text, warmup_ms)

    def column(*names: str) -> list[float]:
        for name in names:
            if records and name in records[0]:
                return [float(r[name]) for r in records]
        return []

    enqueue = [float(r["endEnqMs"]) - float(r["startEnqMs"]) for r in records if "startEnqMs" in r]
    throughput = None
    start = column("startH2dMs", "startInMs")
    end = column("endD2hMs", "endOutMs")
    if start and end and end[-1] > start[0]:
        throughput = batch * len(records) / (end[-1] - start[0]) * 1000
    return TimesReport(
        iterations=len(records),
        throughput_qps=throughput,
        latency_ms=trtexec_stats(column("latencyMs")),
        gpu_compute_ms=trtexec_stats(column("computeMs")),
        h2d_ms=trtexec_stats(column("h2dMs", "inMs")),
        d2h_ms=trtexec_stats(column("d2hMs", "outMs")),
        enqueue_ms=trtexec_stats(enqueue),
    )


# --- --exportProfile --------------------------------------------------------------------------------------

@dataclass
class LayerProfile:
    name: str
    time_ms: float
    average_ms: float
    median_ms: float | None
    percentage: float


@dataclass
class ProfileReport:
    iterations: int | None
    layers: list[LayerProfile]

    def to_dict(self) -> dict:
        return asdict(self)


def parse_export_profile(text: str) -> ProfileReport:
    """Per-layer times from ``trtexec --exportProfile=F``.

    The file is ``[{"count": N}, {"name", "timeMs", "averageMs", "percentage"}, ...]``; exporters from the
    8.5-era sampleReporting.cpp on add "medianMs" (None where absent). ``timeMs`` is the layer's total over
    the N profiled iterations.
    """
    what = "trtexec --exportProfile file"
    entries = _finite_json(text, what)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"not a {what} (expected a JSON list of objects)")

    def number(entry: dict, key: str) -> float:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{what}: layer {entry.get('name')!r}: {key} is {value!r}, not a number")
        return float(value)

    iterations = None
    layers = []
    for entry in entries:
        if "count" in entry:
            iterations = int(number(entry, "count"))
            continue
        if not isinstance(entry.get("name"), str):
            raise ValueError(f"{what}: an entry without a layer name: {str(entry)[:80]}")
        layers.append(LayerProfile(name=entry["name"], time_ms=number(entry, "timeMs"),
                                   average_ms=number(entry, "averageMs"),
                                   median_ms=number(entry, "medianMs") if "medianMs" in entry else None,
                                   percentage=number(entry, "percentage")))
    return ProfileReport(iterations=iterations, layers=layers)
