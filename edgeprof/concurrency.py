"""--jobs K and --gpus: several copies of one measurement at once on one board, each a process of its own, and
one aggregate result for them.

What it measures is throughput under concurrency, the way Triton's perf_analyzer sweeps --concurrency-range
(https://github.com/triton-inference-server/perf_analyzer/blob/main/docs/cli.md) and seed 003 ran "4
single-GPU jobs in parallel": K jobs per GPU (or on the CPU), each its own process with its own warm-up and
stopping rule, started together. Each job's result is stored as measured (result.jobs = {"group", "index",
"of", "gpu"}), then one aggregate (result.jobs = {"aggregate": true, ...}):

    throughput_ips   the sum of the jobs' throughputs (each batch x iterations / its own timed window)
    latency_ms       the slowest job's (highest headline latency), with its interval: what a request sees at
                     worst under this load
    timed_window     from the first job's start to the last one's end (telemetry and energy cover it whole)
    memory           each figure summed over the jobs: separate processes, so the sum of their peaks, an upper
                     bound of the peak they held together
    per GPU          (--gpus) each GPU's jobs' summed throughput (seed 003's per-GPU FPS), and from the
                     telemetry each GPU's utilization and memory over the window (telemetry["per_gpu"])

The sum is the throughput of K jobs running together only while their windows overlap; a job that stops
earlier leaves the others running with less competition. The aggregate carries the overlap (common window /
whole window) and the flag jobs_not_overlapping below OVERLAP_MIN.

GPUs: a job on GPU N runs with that GPU alone visible (CUDA_VISIBLE_DEVICES=N) or, for caffe, with -gpu N,
N counted as nvidia-smi counts (CUDA_DEVICE_ORDER=PCI_BUS_ID; Backend.gpu_env); `all` is every GPU nvidia-smi
lists on the board (the probe's gpu_count).
"""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Sequence

from .board import Board
from .errors import InputError
from .reporting.table import headline
from .result import Result
from .telemetry.summary import per_gpu

ALL = "all"
# Below this share of the whole window spent with every job running, the summed throughput mixes in time
# some jobs ran alone.
OVERLAP_MIN = 0.9


class JobsError(InputError):
    """--jobs / --gpus cannot be run on this board; the message says what to use instead."""


def parse_gpus(text: str | None) -> tuple[int, ...] | str | None:
    """--gpus as given: None, "all", or the GPU indexes (each once, in order)."""
    if text is None:
        return None
    if text.strip() == ALL:
        return ALL
    try:
        gpus = tuple(dict.fromkeys(int(g) for g in text.split(",")))
    except ValueError:
        raise JobsError(f"--gpus {text!r}: GPU indexes as nvidia-smi numbers them, comma-separated (0,1), "
                        f"or all") from None
    if any(g < 0 for g in gpus):
        raise JobsError(f"--gpus {text!r}: GPU indexes start at 0")
    return gpus


def resolve_gpus(gpus: tuple[int, ...] | str | None, facts: dict, device: str) -> list[int | None]:
    """The GPU of each job slot's group: [None] without --gpus (the backend's default device)."""
    if gpus is None:
        return [None]
    count = facts.get("gpu_count") if isinstance(facts.get("gpu_count"), int) else 0
    if not count:
        raise JobsError(f"--gpus {gpus if gpus == ALL else ','.join(map(str, gpus))}: {device} has no GPU that "
                        f"nvidia-smi lists; measure its CPU with --jobs K and without --gpus")
    if gpus == ALL:
        return list(range(count))
    missing = [g for g in gpus if g >= count]
    if missing:
        raise JobsError(f"--gpus: {device} has {count} GPU(s), numbered 0 to {count - 1}; there is no GPU "
                        f"{', '.join(map(str, missing))}")
    return list(gpus)


def slots(gpus: list[int | None], jobs: int) -> list[int | None]:
    """The GPU of every job: `jobs` per GPU."""
    return [gpu for gpu in gpus for _ in range(jobs)]


def job_boards(board: Board, gpus: list[int | None], gpu_env: Callable[[int | None], dict]) -> list[Board]:
    """One Board per job: its own work folder under the run's (files a backend writes there, such as an
    upload's partial file, never collide), its GPU's environment, and the turn they share (Board.turn)."""
    boards = []
    turn = threading.Lock()
    for index, gpu in enumerate(gpus, 1):
        workdir = f"{board.workdir}/job-{index}"
        board.run(["mkdir", "-p", "--", workdir], timeout=60)
        boards.append(replace(board, workdir=workdir, env=gpu_env(gpu), turn=turn))
    return boards


def run_together(boards: Sequence[Board], measure: Callable[[Board], Result]) -> list[Result]:
    """measure(board) for every job's board at once, each on a thread of its own that holds the boards' turn
    except while a command runs on the board, so the runners overlap there and the host's work in between
    takes turns; the results in order, or the first exception raised, once all have ended."""
    def one(board: Board) -> Result:
        with board.turn:
            return measure(board)

    with ThreadPoolExecutor(max_workers=len(boards)) as pool:
        futures = [pool.submit(one, board) for board in boards]
    return [future.result() for future in futures]


def overlap(windows: list[dict]) -> float | None:
    """The share of the whole window (first start to last end) in which every job was in its timed window."""
    if not windows:
        return None
    start, end = min(w["start_s"] for w in windows), max(w["end_s"] for w in windows)
    common = min(w["end_s"] for w in windows) - max(w["start_s"] for w in windows)
    return max(common, 0.0) / (end - start) if end > start else None


def label(results: list[Result], gpus: list[int | None]) -> str:
    """A new group's id; every job's result gets its place in it."""
    group = uuid.uuid4().hex[:8]
    for index, (result, gpu) in enumerate(zip(results, gpus), 1):
        result.jobs = {"group": group, "index": index, "of": len(results), "gpu": gpu}
        if gpu is not None:
            result.settings["gpu_index"] = gpu
    return group


def gpu_telemetry(total: Result) -> None:
    """Each GPU's utilization and memory over the aggregate's window (telemetry.summary.per_gpu), beside the
    telemetry's own summary, which is the first GPU's; nothing for jobs on the default device or without
    nvidia-smi samples."""
    gpus = [g for g in dict.fromkeys(total.jobs["gpus"]) if g is not None]
    telemetry = total.telemetry or {}
    if gpus and total.timed_window and any(r.get("kind") == "nvidia-smi" for r in telemetry.get("samples") or []):
        telemetry["per_gpu"] = per_gpu(telemetry["samples"], total.timed_window, gpus)


def merged_flags(flags: list[dict]) -> list[dict]:
    """One flag per code, in first-seen order, its details joined: an aggregate inherits the same flag from
    several jobs and from its own window."""
    merged: dict[str, dict] = {}
    for flag in flags:
        if flag["code"] in merged:
            merged[flag["code"]]["detail"] += f"; {flag.get('detail', '')}"
        else:
            merged[flag["code"]] = {"code": flag["code"], "detail": flag.get("detail", "")}
    return list(merged.values())


def aggregate(results: list[Result], group: str) -> Result:
    """The one result for jobs measured together (module docstring); failed unless every job succeeded."""
    first = results[0]
    gpus = [r.jobs["gpu"] for r in results]
    total = Result(device=first.device, model=first.model, backend=first.backend, batch=first.batch,
                   run_id=first.run_id, span=first.span, method=dict(first.method), state=dict(first.state),
                   device_facts=first.device_facts, model_info=first.model_info,
                   settings={**{k: v for k, v in first.settings.items() if k != "gpu_index"}, "jobs": len(results),
                             "gpus": gpus}, started_at=first.started_at,
                   plan=first.plan)
    total.jobs = {"aggregate": True, "group": group, "jobs": len(results), "gpus": gpus,
                  "result_ids": [r.id for r in results]}
    if first.figures.get("variant"):
        total.figures["variant"] = first.figures["variant"]
    failed = [r for r in results if r.status != "ok"]
    if failed:
        return total.fail(f"{len(failed)} of {len(results)} concurrent jobs failed; job "
                          f"{failed[0].jobs['index']}: {failed[0].error}")
    slowest = max(results, key=lambda r: headline(r)[0] or 0.0)
    total.latency_ms = dict(slowest.latency_ms)
    total.latency_ci95_ms = dict(slowest.latency_ci95_ms)
    throughputs = [r.throughput_ips for r in results]
    total.throughput_ips = sum(throughputs) if None not in throughputs else None
    total.iterations = sum(r.iterations or 0 for r in results)
    windows = [r.timed_window for r in results if r.timed_window]
    if len(windows) == len(results):
        total.timed_window = {"start_s": min(w["start_s"] for w in windows),
                              "end_s": max(w["end_s"] for w in windows)}
    shared = overlap(windows) if len(windows) == len(results) else None
    memory = [r.figures.get("memory") or {} for r in results]
    on_gpus = [g for g in dict.fromkeys(gpus) if g is not None]
    total.figures.update(
        jobs_throughput_ips=throughputs, slowest_job=slowest.jobs["index"], overlap=shared,
        # Seed 003's "per GPU FPS": each GPU's jobs' throughputs summed.
        gpu_throughput_ips={str(g): sum(r.throughput_ips or 0.0 for r in results if r.jobs["gpu"] == g)
                            for g in on_gpus} if None not in throughputs else {},
        memory={key: sum(m[key] for m in memory) for key in memory[0]
                if all(isinstance(m.get(key), (int, float)) for m in memory)})
    where = ", ".join(f"GPU {g}" if g is not None else "the default device" for g in gpus)
    total.method["jobs"] = (
        f"{len(results)} concurrent processes ({where}), started together; throughput: the sum of theirs; "
        f"latency: the slowest job's (job "
        f"{slowest.jobs['index']}); memory: the sum of their peaks")
    if shared is None:
        total.flags.append({"code": "jobs_not_overlapping", "detail": "a job reported no timed window: the overlap "
                                                                      "of the jobs is unknown"})
    elif shared < OVERLAP_MIN:
        total.flags.append({"code": "jobs_not_overlapping", "detail": (
            f"every job was timing during {shared:.0%} of the whole window (under {OVERLAP_MIN:.0%}): the summed "
            f"throughput counts time in which some jobs ran alone, with less competition, so it overstates what "
            f"they do together; more --iterations make the ends weigh less")})
    # A job's flag is the aggregate's too: the aggregate is made of that job.
    total.flags += [dict(f, detail=f"job {r.jobs['index']}: {f.get('detail', '')}") for r in results for f in r.flags]
    return total


__all__ = ["ALL", "JobsError", "OVERLAP_MIN", "aggregate", "gpu_telemetry", "job_boards", "label", "merged_flags",
           "overlap", "parse_gpus", "resolve_gpus", "run_together", "slots"]
