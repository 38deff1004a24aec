"""Measuring on one device: connect, probe, run every model x backend x batch, store each result at once.

`measure()` is the library call behind `edgeprof measure`. What can be checked without the board (model
names, prototxt syntax, batch sizes, backend names) is checked before connecting, so bad input costs nothing
on the board. Once measuring, a failing item becomes a stored failed Result and the sweep goes on; only a
lost connection ends it, and the items it could not run are stored as failed with the reason.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Mapping, Sequence

from . import backends as backend_registry
from .backends import BackendUnavailable, Options
from .devices import Device, connect, get_device
from .errors import BoardControlError, InputError
from .models import ModelSource, resolve, set_batch
from .power import POLICIES, power_session
from .result import Result
from .storage import SQLStore, open_store
from .telemetry import BoardTelemetry
from .transport import CommandResult, Transport, TransportError, make_temp_dir, remove_tree

# One round trip collects what every result records about the board. A constant script: nothing from
# the user is ever pasted into it.
_PROBE = r'''echo "hostname=$(hostname)"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
[ -r /etc/os-release ] && . /etc/os-release && echo "os=$PRETTY_NAME"
[ -r /etc/nv_tegra_release ] && echo "l4t=$(head -n 1 /etc/nv_tegra_release)"
[ -r /proc/device-tree/model ] && echo "board_model=$(tr -d '\0' < /proc/device-tree/model)"
echo "cpus=$(nproc 2>/dev/null)"
echo "mem_total_kb=$(awk '/^MemTotal/ {print $2}' /proc/meminfo 2>/dev/null)"
echo "python3=$(python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)"
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
elif [ -e /dev/nvhost-ctrl-gpu ]; then echo "gpu=integrated (Tegra)"; fi
exit 0'''


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def probe(transport: Transport) -> dict:
    result = transport.run(["sh", "-c", _PROBE], timeout=60)
    facts = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and value.strip():
            facts[key] = value.strip()
    for key in ("cpus", "mem_total_kb"):
        if facts.get(key, "").isdigit():
            facts[key] = int(facts[key])
    return facts


@contextlib.contextmanager
def open_board(device: Device, *, run_id: str, accept_new_host_key: bool = False) -> Iterator["Board"]:
    """A connected, probed Board; on leaving, its work folder (if one was made) is removed and the
    connection closed, whatever happened."""
    transport = connect(device, accept_new_host_key=accept_new_host_key)
    board = Board(device, transport, run_id=run_id)
    try:
        board.facts = probe(transport)
        yield board
    finally:
        try:
            if board.workdir:
                remove_tree(transport, board.workdir)
        except TransportError:
            pass  # the connection is gone; /tmp on the board is cleaned at its next boot
        transport.close()


@dataclass
class Board:
    """One device during one measure call: its open transport, probed facts and private work folder."""
    device: Device
    transport: Transport
    run_id: str
    facts: dict = field(default_factory=dict)
    backend_facts: dict = field(default_factory=dict)
    power_state: dict | None = None   # what edgeprof.power recorded and applied; None until then
    workdir: str = ""

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None,
            record_in: Result | None = None) -> CommandResult:
        result = self.transport.run(argv, env=env, timeout=timeout)
        if record_in is not None:
            record_in.commands.append(result.to_dict())
        return result

    def put_text(self, path: str, text: str) -> None:
        self.transport.put_text(path, text)

    def put_bytes(self, path: str, data: bytes) -> None:
        self.transport.put_bytes(path, data)

    def get_bytes(self, path: str) -> bytes:
        return self.transport.get_bytes(path)

    def new_result(self, model: ModelSource, backend: str, batch: int) -> Result:
        return Result(
            device=self.device.name, model=model.name, backend=backend, batch=batch, run_id=self.run_id,
            device_facts={"family": self.device.profile.family, **self.facts},
            model_info={"path": model.path, "sha256": model.sha256, "catalog": model.catalog,
                        "kind": model.kind},
            state={k: v for k, v in (self.power_state or {}).items() if k != "original"}
            | {"state_before": (self.power_state or {}).get("original")},
            started_at=_now())


class MeasureError(InputError):
    """Nothing was measured: the input cannot be used. The message says what to fix."""


@dataclass(frozen=True)
class Job:
    """One measurement to make. `plan` is stored with its results (edgeprof.lab: plan hash and item key)."""
    model: str
    backend: str
    batch: int
    options: Options = Options()
    plan: dict | None = field(default=None, hash=False, compare=False)


def prepare_jobs(jobs: Sequence[Job]) -> dict[str, ModelSource]:
    """Resolve the models, check every prototxt can be set to its batches and every backend can run its
    models' kinds, before touching a board. Returns the sources by the name the jobs use."""
    sources: dict[str, ModelSource] = {}
    for job in jobs:
        if job.backend not in backend_registry.names():
            raise MeasureError(f"unknown backend {job.backend!r}; available: {', '.join(backend_registry.names())}")
        if job.batch < 1:
            raise MeasureError(f"batch sizes must be positive integers, got {job.batch}")
        if job.model not in sources:
            sources[job.model] = resolve(job.model)
        source = sources[job.model]
        if source.kind == "prototxt":
            set_batch(source.text, job.batch, source.path)
        if source.kind not in backend_registry.get(job.backend).model_kinds:
            able = [backend for backend in backend_registry.names()
                    if source.kind in backend_registry.get(backend).model_kinds]
            raise MeasureError(f"{source.name} is a {source.kind} model, which {job.backend} cannot run; use "
                               f"--backend {','.join(able)}")
    return sources


def measure(device: str | Device, models: Sequence[str], *, backends: Sequence[str] = ("caffe",),
            batches: Sequence[int] = (1,), options: Options = Options(), **session) -> list[Result]:
    """Measure every model x backend x batch on one device with the same options (backend by backend);
    see measure_jobs for the rest of the arguments, what is guaranteed and what is raised."""
    if not batches:
        raise MeasureError("no batch size given")
    return measure_jobs(device, [Job(model, backend, batch, options)
                                 for backend in backends for model in models for batch in batches], **session)


def measure_jobs(device: str | Device, jobs: Sequence[Job], *, store: SQLStore | None = None,
                 inventory: str | None = None, accept_new_host_key: bool = False, clocks: str | None = None,
                 sudo_password_env: str | None = None, lease_s: int = 180, wait_s: float = 0,
                 cooldown_s: float = 0, should_stop: Callable[[], bool] | None = None,
                 should_run: Callable[[Job], bool] | None = None,
                 on_result: Callable[[Result], None] | None = None,
                 on_status: Callable[[str], None] | None = None) -> list[Result]:
    """Make every job on one device, in order; every result is stored as soon as it exists.

    clocks: "max", "leave" or "lock" (default: the device family's policy, see edgeprof.power). The board is
    held exclusively for the whole call (another run waits up to wait_s) and its power state is restored at
    the end, or by the board itself lease_s seconds after this process died. cooldown_s: a pause between
    jobs, so that one job's heat does not bias the next. should_stop: asked before each job; when it says
    yes, the jobs left are not run (and not stored) and the board is restored as usual. should_run: asked
    before each job while the board is held; no: that job is skipped (not run, not stored), e.g. because
    another host's run of the same plan measured it while this one waited for the board.

    Raises MeasureError (or UnknownModel, PrototxtError, DeviceError, TransportError, SudoDenied, BoardBusy)
    before measuring anything when the input is bad or the device cannot be reached or controlled.
    """
    status = on_status or (lambda message: None)
    if clocks is not None and clocks not in POLICIES:
        raise MeasureError(f"unknown clocks policy {clocks!r}; use one of {', '.join(POLICIES)}")
    sources = prepare_jobs(jobs)
    if isinstance(device, str):
        device = get_device(device, inventory)
    store = store or open_store()
    results: list[Result] = []
    finished: set[int] = set()

    def keep(result: Result) -> None:
        result.finished_at = result.finished_at or _now()
        store.add(result)
        results.append(result)
        if on_result:
            on_result(result)

    status(f"connecting to {device.name} ({device.address})")
    with open_board(device, run_id=uuid.uuid4().hex[:12], accept_new_host_key=accept_new_host_key) as board:
        try:
            with power_session(device, board.transport, run_id=board.run_id, policy=clocks,
                               sudo_password_env=sudo_password_env, lease_s=lease_s, wait_s=wait_s,
                               status=status) as (power, recorded, lease):
                board.power_state = recorded
                board.workdir = make_temp_dir(board.transport)
                # If this process dies, the board's guard stops what still runs from the work folder and
                # removes it.
                lease.write_restore(stop_work=board.workdir)
                _sweep(board, power, jobs, sources, keep, status, finished, cooldown_s, should_stop, should_run)
        except TransportError as e:
            if board.power_state is None:
                raise  # nothing started: a clear error, no results
            for index, job in enumerate(jobs):
                if index not in finished:
                    keep(_new_result(board, sources, job).fail(f"not run: {e}"))
    return results


def _new_result(board: Board, sources: dict[str, ModelSource], job: Job) -> Result:
    result = board.new_result(sources[job.model], job.backend, job.batch)
    result.plan = job.plan
    return result


def _sweep(board: Board, power, jobs: Sequence[Job], sources: dict[str, ModelSource], keep, status,
           finished: set[int], cooldown_s: float, should_stop: Callable[[], bool] | None,
           should_run: Callable[[Job], bool] | None) -> None:
    # tegrastats shows clocks and rails only to root; sudo is there (and checked) exactly when the board's
    # power control needed it, which on a Jetson it always does.
    telemetry = BoardTelemetry(board, sudo=power.sudo if power.needs_root() else None)
    prepared: dict[str, object] = {}   # backend name -> the backend, or why it is unavailable
    measured = 0
    last_clocks = None  # the previous item's end readings: the next one's start when nothing ran in between
    for index, job in enumerate(jobs):
        if should_stop and should_stop():
            status(f"{board.device.name}: stopping, {len(jobs) - index} item(s) not run")
            return
        if should_run and not should_run(job):
            finished.add(index)
            continue
        source = sources[job.model]
        if job.backend not in prepared:
            backend = backend_registry.get(job.backend)
            status(f"{board.device.name}: looking for {job.backend}")
            try:
                board.backend_facts[job.backend] = backend.prepare(board)
                prepared[job.backend] = backend
            except BackendUnavailable as e:
                prepared[job.backend] = e
        backend = prepared[job.backend]
        if isinstance(backend, BackendUnavailable):
            keep(_new_result(board, sources, job).fail(str(backend)))
            finished.add(index)
            continue
        # --best: each variant the backend has for this board is a result of its own.
        variants = backend.variants(board, job.options) if job.options.best and hasattr(backend, "variants") \
            else [job.options]
        for options in variants:
            if measured and cooldown_s:
                status(f"{board.device.name}: cooling down {cooldown_s:g} s")
                time.sleep(cooldown_s)
                last_clocks = None
            status(f"{board.device.name}: {job.backend} {source.name} batch {job.batch}")
            started = time.monotonic()
            try:
                clocks_start = last_clocks or power.snapshot()
            except BoardControlError as e:
                # The board answers but refused to show its clocks: this item has no trustworthy state, the
                # next one may (only a lost connection ends the sweep).
                keep(_new_result(board, sources, job).fail(f"not run: reading the clocks before it failed: {e}"))
                continue
            with telemetry.sampling() as recording:
                try:
                    result = backend.measure(board, source, job.batch, options)
                except TransportError as e:
                    keep(_new_result(board, sources, job).fail(str(e)))
                    finished.add(index)
                    raise
            try:
                last_clocks = power.snapshot()
            except BoardControlError as e:
                last_clocks = None
                result.flags.append({"code": "clocks_end_unknown",
                                     "detail": f"reading the clocks after the timed window failed: {e}"})
            result.state.update(clocks_start=clocks_start, clocks_end=last_clocks)
            recording.attach(result)
            result.wall_s = time.monotonic() - started
            result.plan = job.plan
            keep(result)
            measured += 1
        finished.add(index)


__all__ = ["Board", "Job", "open_board", "MeasureError", "measure", "measure_jobs", "prepare_jobs", "probe"]
