"""A stored row as a Result that every reader can use, whatever the row holds.

edgeprof writes each document from a Result (SQLStore.add), but a shared PostgreSQL database takes rows from
any writer with the database's own client, and a SQLite file can be edited or damaged. A document may then be
no JSON object at all, hold a list where a name goes or text where a figure goes, or hold strings that no
UTF-8 output can encode: JSON allows a lone UTF-16 surrogate ("\\ud800", RFC 8259 section 8.2,
https://www.rfc-editor.org/rfc/rfc8259#section-8.2) and Python decodes it as one. The readers (results
list/show/export, compare, report) rely on the types of edgeprof.result.Result, so those are checked once,
here, as each row is loaded:

- a document that cannot be used at all, or whose run, device, model, backend, batch, status, span or latency
  is unusable, becomes a failed result whose error says what was wrong; the row's indexed columns name it
  where the document cannot (the batch is None where neither can);
- any other unusable part is left out, and the result carries the flag UNUSABLE_FLAG saying what;
- text that is not valid Unicode keeps its readable part: each lone surrogate becomes U+FFFD, noted alike.
"""
from __future__ import annotations

import json
import math
import re

from ..result import LATENCY_KEYS, Result

UNUSABLE_FLAG = "unusable_stored_data"
# How much of an unusable value an error quotes, and how many places a note names.
QUOTED_CHARS = 60
PLACES_NAMED = 5

_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON text holds one as an escape (\ud800), or as itself where it was decoded from bytes that were not
# UTF-8 (_decoded; SQLStore's text_factory): then the text is not ASCII, which edgeprof's own JSON always is
# (json.dumps escapes the rest). Most documents hold neither, and are not walked for them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_OPTIONAL_DICTS = ("latency_ci95_ms", "latency_unbounded", "method", "state", "device_facts", "model_info",
                   "settings")
# Read from the row by load_result's caller (SQLStore), in this order.
COLUMNS = ("id", "run_id", "device", "model", "backend", "batch", "status", "error", "doc", "commands", "raw_log",
           "prototxt_diff")


def is_number(value) -> bool:
    """A finite int or float, not a bool (JSON's true is a Python int)."""
    try:
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:       # an int beyond any float
        return False


def _number_or_none(value) -> bool:
    return value is None or is_number(value)


def _text_or_none(value) -> bool:
    return value is None or isinstance(value, str)


def _kind(value) -> str:
    """What a JSON value is, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _quoted(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS - 1] + "…"


def _listed(places: list[str]) -> str:
    shown = ", ".join(places[:PLACES_NAMED])
    return shown + (f" and {len(places) - PLACES_NAMED} more" if len(places) > PLACES_NAMED else "")


def _decoded(value) -> str:
    """A text column's value as text: SQLite hands over a BLOB as bytes (and, with SQLStore's text_factory,
    undecodable text as lone surrogates, cleaned later with everything else)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else str(value)


class _Loading:
    """One row on its way to a Result: what makes it unusable, and what was left out of it."""

    def __init__(self):
        self.problems: list[str] = []
        self.left_out: list[str] = []
        self.replaced: list[str] = []       # places where lone surrogates became U+FFFD

    def text(self, value: str, place: str) -> str:
        cleaned, count = _SURROGATE.subn("\ufffd", value)
        if count:
            self.replaced.append(place)
        return cleaned

    def decoded_json(self, text, place: str):
        """The JSON value of a column's `text`, every string in it (keys too) cleaned of lone surrogates.
        ValueError: not JSON, or an integer of more digits than Python converts; RecursionError: nested
        deeper than the decoder goes (about 1000 levels)."""
        text = _decoded(text)
        value = json.loads(text)
        if not (_SURROGATE_ESCAPE.search(text) or not text.isascii() and _SURROGATE.search(text)):
            return value
        # Iterative (JSON nested as deep as the decoder allows would exhaust Python's stack when recursing),
        # in document order: each container's items go on the stack last first.
        root = [value]
        stack = [(root, 0, place)]
        while stack:
            parent, key, where = stack.pop()
            value = parent[key]
            if isinstance(value, str):
                parent[key] = self.text(value, where)
            elif isinstance(value, dict):
                items = list(value.items())
                value.clear()
                value.update((self.text(k, f"{where}.{k}".lstrip(".")), v) for k, v in items)
                stack += [(value, k, f"{where}.{k}".lstrip(".")) for k in reversed(value)]
            elif isinstance(value, list):
                stack += [(value, i, f"{where}[{i}]") for i in reversed(range(len(value)))]
        return root[0]

    def drop(self, container: dict, key: str, place: str, why: str) -> None:
        del container[key]
        self.left_out.append(f"{place} ({why})")


def _document(text, loading: _Loading) -> dict | None:
    """The stored document as a cleaned dict, or None with the reason among the problems."""
    try:
        doc = loading.decoded_json(text, "")
    except RecursionError:
        loading.problems.append("its document nests too deep to decode")
        return None
    except ValueError as e:
        loading.problems.append(f"its document is not JSON ({loading.text(str(e), 'the JSON error')})")
        return None
    if not isinstance(doc, dict):
        loading.problems.append(f"its document is {_kind(doc)}, not a JSON object")
        return None
    return doc


def _identity(doc: dict, columns: dict, loading: _Loading) -> dict:
    """run_id, device, model, backend, batch and status: from the document; where it has no usable value, a
    problem, and the row's column instead."""
    fields = {}
    for name in ("run_id", "device", "model", "backend"):
        value = doc.get(name)
        if not isinstance(value, str):
            loading.problems.append(f"{name} {_quoted(value)} is not text")
            value = loading.text(_decoded(columns[name]), name)
        fields[name] = value
    batch = doc.get("batch")
    if type(batch) is not int:
        loading.problems.append(f"batch {_quoted(batch)} is not a whole number")
        batch = columns["batch"] if type(columns["batch"]) is int else None
    fields["batch"] = batch
    status = doc.get("status")
    if status not in ("ok", "failed"):
        loading.problems.append(f"status {_quoted(status)} is neither \"ok\" nor \"failed\"")
        status = "failed"
    fields["status"] = status
    return fields


def _latency(doc: dict, loading: _Loading) -> dict:
    latency = doc.get("latency_ms")
    if not isinstance(latency, dict):
        loading.problems.append(f"latency_ms is {_kind(latency)}, not an object of figures")
        return {k: None for k in LATENCY_KEYS}
    for key, value in latency.items():
        if not _number_or_none(value):
            loading.problems.append(f"latency_ms.{key} {_quoted(value)} is not a number")
            latency[key] = None
    return latency


def _figures(doc: dict, backend: str, loading: _Loading) -> dict:
    """The backend's own figures (stored under its name) that readers use: times_ms, ci95_ms, variant."""
    figures = doc.get(backend, {})
    if not isinstance(figures, dict):
        loading.left_out.append(f"{backend} figures ({_kind(figures)}, not an object)")
        return {}
    times = figures.get("times_ms")
    if times is not None and not (isinstance(times, list) and all(is_number(t) for t in times)):
        loading.drop(figures, "times_ms", f"{backend}.times_ms", "not a list of numbers")
    interval = figures.get("ci95_ms")
    if interval is not None and not (isinstance(interval, list) and len(interval) == 2
                                     and all(is_number(v) for v in interval)):
        loading.drop(figures, "ci95_ms", f"{backend}.ci95_ms", "not two numbers")
    if not _text_or_none(figures.get("variant")):
        loading.drop(figures, "variant", f"{backend}.variant", "not text")
    # Per-layer figures (edgeprof.reporting.layers skips entries that are not a name and a time).
    if figures.get("layers") is not None and not isinstance(figures["layers"], list):
        loading.drop(figures, "layers", f"{backend}.layers", "not a list")
    per_layer = figures.get("per_layer")
    if per_layer is not None and not (isinstance(per_layer, dict) and isinstance(per_layer.get("layers", []), list)):
        loading.drop(figures, "per_layer", f"{backend}.per_layer", "not an object with a list of layers")
    return figures


def _number_list(value) -> bool:
    return value is None or (isinstance(value, list) and all(_number_or_none(v) for v in value))


def usable_sample(record) -> bool:
    """A sampler record (edgeprof/onboard/board_sampler.py) with what edgeprof.telemetry.summary reads from it,
    of the types it reads (a block's statistics are checked where they are read)."""
    if not isinstance(record, dict):
        return False
    kind = record.get("kind")
    if kind in ("tegrastats", "nvidia-smi"):
        return is_number(record.get("t")) and isinstance(record.get("line"), str)
    if kind == "proc":
        temps = record.get("temps_c")
        return (is_number(record.get("t")) and {"cpu_load_pct", "cpu_freq_mhz", "ram_used_mb"} <= record.keys()
                and _number_list(record["cpu_load_pct"]) and _number_list(record["cpu_freq_mhz"])
                and _number_or_none(record["ram_used_mb"]) and isinstance(temps, dict)
                and all(is_number(v) for v in temps.values()))
    if kind == "start":
        return _number_or_none(record.get("utc_offset_s"))
    if kind == "error":
        return isinstance(record.get("message"), str)
    return True     # end records (nothing in them is read), block records (checked where read) and others


def _telemetry(telemetry, loading: _Loading) -> dict | None:
    if telemetry is None:
        return None
    if not isinstance(telemetry, dict):
        loading.left_out.append(f"telemetry ({_kind(telemetry)}, not an object)")
        return None
    for part, figures in (("power_total", ("mean_w",)), ("energy", ("per_inference_j", "inferences_per_j"))):
        value = telemetry.get(part)
        if value is not None and not (isinstance(value, dict) and all(_number_or_none(value.get(f)) for f in figures)
                                      and _text_or_none(value.get("definition"))):
            loading.drop(telemetry, part, f"telemetry.{part}", "not an object of numbers")
    samples = telemetry.get("samples")
    if samples is not None and not isinstance(samples, list):
        loading.drop(telemetry, "samples", "telemetry.samples", f"{_kind(samples)}, not a list")
    elif samples:
        usable = [record for record in samples if usable_sample(record)]
        if len(usable) < len(samples):
            loading.left_out.append(f"{len(samples) - len(usable)} of {len(samples)} telemetry samples (not a "
                                    f"sampler record of the expected types)")
            telemetry["samples"] = usable
    return telemetry


def _flags(flags, loading: _Loading) -> list[dict]:
    """{"code", "detail"} objects; a bare string, as older results may hold, is its own code."""
    if not isinstance(flags, list):
        loading.left_out.append(f"flags ({_kind(flags)}, not a list)")
        return []
    usable = []
    for index, flag in enumerate(flags):
        if isinstance(flag, str):
            usable.append({"code": flag, "detail": ""})
        elif isinstance(flag, dict) and isinstance(flag.get("code"), str) and _text_or_none(flag.get("detail")):
            usable.append(flag)
        else:
            loading.left_out.append(f"flags[{index}] {_quoted(flag)} (not a flag with a text code)")
    return usable


def _rest(doc: dict, loading: _Loading) -> dict:
    """Every other field a reader formats, of its type or left out (None, or empty)."""
    fields = {}
    error = doc.get("error")
    if not _text_or_none(error):
        loading.left_out.append(f"error as stored ({_kind(error)}; shown as JSON)")
        error = _quoted(error)
    fields["error"] = error
    span = doc.get("span")
    if not _text_or_none(span):
        loading.problems.append(f"span {_quoted(span)} is not text")
        span = None
    fields["span"] = span
    for name in ("throughput_ips", "wall_s"):
        value = doc.get(name)
        if not _number_or_none(value):
            loading.left_out.append(f"{name} {_quoted(value)} (not a number)")
            value = None
        fields[name] = value
    iterations = doc.get("iterations")
    if iterations is not None and type(iterations) is not int:
        loading.left_out.append(f"iterations {_quoted(iterations)} (not a whole number)")
        iterations = None
    fields["iterations"] = iterations
    for name in _OPTIONAL_DICTS:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            loading.left_out.append(f"{name} ({_kind(value)}, not an object)")
            value = {}
        fields[name] = value
    if not _text_or_none(fields["settings"].get("processor")):
        loading.drop(fields["settings"], "processor", "settings.processor", "not text")
    for name in ("started_at", "finished_at"):
        value = doc.get(name)
        if not _text_or_none(value):
            loading.left_out.append(f"{name} {_quoted(value)} (not text)")
            value = None
        fields[name] = value
    window = doc.get("timed_window")
    if window is not None and not (isinstance(window, dict) and is_number(window.get("start_s"))
                                   and is_number(window.get("end_s"))):
        loading.left_out.append("timed_window (not start_s and end_s numbers)")
        window = None
    fields["timed_window"] = window
    plan = doc.get("plan")
    if plan is not None and not (isinstance(plan, dict)
                                 and all(isinstance(plan.get(k), str) for k in ("hash", "item"))):
        loading.left_out.append("plan (not an object with a text hash and item)")
        plan = None
    fields["plan"] = plan
    repeat = doc.get("repeat")
    if repeat is not None and not (isinstance(repeat, dict) and isinstance(repeat.get("group"), str)
                                   and all(type(repeat.get(k)) is int for k in ("runs",) if repeat.get("summary"))
                                   and all(type(repeat.get(k)) is int for k in ("index", "of")
                                           if not repeat.get("summary"))):
        loading.left_out.append("repeat (not a --repeat group with its run numbers)")
        repeat = None
    fields["repeat"] = repeat
    jobs = doc.get("jobs")
    if jobs is not None and not (isinstance(jobs, dict) and isinstance(jobs.get("group"), str)
                                 and all(type(jobs.get(k)) is int for k in (("jobs",) if jobs.get("aggregate")
                                                                            else ("index", "of")))):
        loading.left_out.append("jobs (not a --jobs group with its job numbers)")
        jobs = None
    fields["jobs"] = jobs
    timeline = doc.get("timeline")
    if timeline is not None and not (isinstance(timeline, dict) and isinstance(timeline.get("windows"), list)
                                     and all(isinstance(w, dict) and is_number(w.get("start_s"))
                                             and is_number(w.get("end_s")) and type(w.get("iterations")) is int
                                             for w in timeline["windows"])):
        loading.left_out.append("timeline (not --duration windows with their span and iterations)")
        timeline = None
    fields["timeline"] = timeline
    if not all(isinstance(v, list) and len(v) == 2 and all(map(is_number, v))
               for v in fields["latency_ci95_ms"].values()):
        loading.left_out.append("latency_ci95_ms (not [low, high] number pairs)")
        fields["latency_ci95_ms"] = {}
    fields["telemetry"] = _telemetry(doc.get("telemetry"), loading)
    fields["flags"] = _flags(doc.get("flags", []), loading)
    return fields


def _commands(text, loading: _Loading) -> list:
    try:
        commands = loading.decoded_json(text, "commands")
    except (ValueError, RecursionError):
        commands = None
    if not isinstance(commands, list):
        loading.left_out.append("commands (not a JSON list)")
        return []
    return commands


def load_result(row: dict) -> Result:
    """The Result of one stored row (its COLUMNS by name): see the module docstring."""
    loading = _Loading()
    doc = _document(row["doc"], loading)
    if doc is None:
        # Nothing in the document can be trusted: the row's columns say what the result was.
        fields = {name: loading.text(_decoded(row[name]), name) for name in ("run_id", "device", "model", "backend")}
        fields["batch"] = row["batch"] if type(row["batch"]) is int else None
        fields["error"] = None if row["error"] is None else loading.text(_decoded(row["error"]), "error")
        result = Result(**fields, status="failed")
    else:
        fields = _identity(doc, row, loading)
        fields.update(_rest(doc, loading))
        fields["latency_ms"] = _latency(doc, loading)
        figures = _figures(doc, fields["backend"], loading)
        known = {k: v for k, v in doc.items() if k in Result.__dataclass_fields__}
        result = Result(**{**known, **fields, "figures": figures})
    result.id = row["id"]
    result.commands = _commands(row["commands"], loading)
    result.raw_log = loading.text(_decoded(row["raw_log"]), "raw_log")
    result.prototxt_diff = loading.text(_decoded(row["prototxt_diff"]), "prototxt_diff")
    if loading.problems:
        stored = f" (stored error: {result.error})" if result.error else ""
        result.fail(f"unusable stored result: {'; '.join(loading.problems)}{stored}")
    notes = loading.left_out + ([f"invalid text (lone UTF-16 surrogates) shown as U+FFFD in "
                                 f"{_listed(loading.replaced)}"] if loading.replaced else [])
    if notes:
        result.flags = result.flags + [{"code": UNUSABLE_FLAG,
                                        "detail": "left out or replaced on loading: " + "; ".join(notes)}]
    return result


__all__ = ["COLUMNS", "UNUSABLE_FLAG", "is_number", "load_result"]
