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
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from . import backends as backend_registry
from . import concurrency, limits, validity
from .backends import BackendUnavailable, Options
from .board import Board, BoardPolicy, now, open_board, probe
from .devices import Device, get_device
from .errors import BoardControlError, InputError
from .models import ModelSource, resolve, set_batch
from .power import POLICIES, PowerControl, needs_root, power_session
from .power.sweep import ModeSweep, check_sweep
from .result import Result
from .storage import SQLStore, open_store
from .telemetry import BoardTelemetry
from .telemetry.window_log import WindowFeed, fill_from_windows
from .transport import TransportError
from .transport.reconnecting import ConnectionReplaced

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
    repeat: int = 1     # runs in fresh processes; more than one adds a summary result (edgeprof.validity)
    power_mode: str | None = None   # --power-modes: the nvpmodel mode to measure it in (edgeprof.power.sweep)
    jobs: int = 1       # concurrent processes per GPU (or on the CPU); more adds an aggregate (edgeprof.concurrency)
    gpus: tuple[int, ...] | str | None = None   # GPU indexes, or "all"; None: the backend's default device


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
            batches: Sequence[int] = (1,), options: Options = Options(), repeat: int = 1, jobs: int = 1,
            gpus: tuple[int, ...] | str | None = None, **session) -> list[Result]:
    """Measure every model x backend x batch on one device with the same options (backend by backend),
    each `repeat` times in fresh processes (then also one summary result per item), each as `jobs`
    concurrent processes per GPU of `gpus` (then also one aggregate, edgeprof.concurrency); see measure_jobs
    for the rest of the arguments, what is guaranteed and what is raised."""
    if not batches:
        raise MeasureError("no batch size given")
    limits.integer("measure", "repeat", repeat, limits.REPEAT, MeasureError)
    limits.integer("measure", "jobs", jobs, limits.JOBS, MeasureError)
    return measure_jobs(device, [Job(model, backend, batch, options, repeat=repeat, jobs=jobs, gpus=gpus)
                                 for backend in backends for model in models for batch in batches], **session)


def measure_devices(devices: Sequence[str], models: Sequence[str], **measuring) -> list[Result]:
    """measure() on each device in turn, with the same models and arguments (what `edgeprof compare
    --device A --device B MODEL...` measures before comparing); the first error stops it."""
    return [result for device in devices for result in measure(device, models, **measuring)]


def measure_jobs(device: str | Device, jobs: Sequence[Job], *, store: SQLStore | None = None,
                 inventory: str | None = None, accept_new_host_key: bool = False, clocks: str | None = None,
                 sudo_password_env: str | None = None, lease_s: int = 180, wait_s: float = 0,
                 cooldown_s: float = 0, take_over_dead: bool = False, quiet_board: bool = False,
                 start_below_c: float | None = None, power_modes: Sequence[str] = (),
                 should_stop: Callable[[], bool] | None = None,
                 should_run: Callable[[Job], bool] | None = None,
                 on_result: Callable[[Result], None] | None = None,
                 on_status: Callable[[str], None] | None = None,
                 on_window: Callable[[dict], None] | None = None) -> list[Result]:
    """Make every job on one device, in order; every result is stored as soon as it exists.

    clocks: "max", "leave" or "lock" (default: the device family's policy, see edgeprof.power). The board is
    held exclusively for the whole call (another run waits up to wait_s) and its power state is restored at
    the end, or by the board itself lease_s seconds after this process died (take_over_dead: a lease whose
    run died on this host is restored and taken at once instead of waited for; quiet_board: before each job,
    wait up to wait_s for the board's other processes to go quiet, else that job fails saying what kept the
    board busy; start_below_c: likewise for its hottest thermal zone to cool below that). cooldown_s: a pause
    between
    jobs, so that one job's heat does not bias the next. power_modes: on a Jetson, every job measured in each
    of these nvpmodel modes (["all"]: every mode of the board's conf; edgeprof.power.sweep). should_stop:
    asked before each job; when it says yes, the jobs left are not run (and not stored) and the board is
    restored as usual. should_run: asked before each job while the board is held; no: that job is skipped
    (not run, not stored), e.g. because another host's run of the same plan measured it while this one waited
    for the board. on_window: called (from a thread of its own) with each window of a --duration item as it
    ends, {"index", "start_s", "end_s", "iterations", "times_ms"} (edgeprof.telemetry.window_log); on Ctrl-C
    during such an item, the windows done are stored as its result, flagged interrupted, before
    KeyboardInterrupt goes on.

    Raises an InputError (MeasureError, UnknownModel, PrototxtError, DeviceError) before touching the board
    when the input is bad, BoardUnreachable (TransportError) or BoardControlError (SudoDenied, BoardBusy,
    PowerModeError, LeaseUnsafe) before measuring anything when the device cannot be reached or controlled.
    Once measuring, a board-control failure fails the item it happened in; a lost connection stores the items
    left as failed with the reason.
    """
    if clocks is not None and clocks not in POLICIES:
        raise MeasureError(f"unknown clocks policy {clocks!r}; use one of {', '.join(POLICIES)}")
    policy = BoardPolicy(accept_new_host_key=accept_new_host_key, clocks=clocks,
                         sudo_password_env=sudo_password_env, lease_s=lease_s, wait_s=wait_s, cooldown_s=cooldown_s,
                         take_over_dead=take_over_dead, quiet_board=quiet_board, start_below_c=start_below_c)
    return measure_with_policy(device, jobs, policy, store=store, inventory=inventory, power_modes=power_modes,
                               should_stop=should_stop, should_run=should_run, on_result=on_result,
                               on_status=on_status, on_window=on_window)


def measure_with_policy(device: str | Device, jobs: Sequence[Job], policy: BoardPolicy, *,
                        store: SQLStore | None = None, inventory: str | None = None,
                        power_modes: Sequence[str] = (), should_stop: Callable[[], bool] | None = None,
                        should_run: Callable[[Job], bool] | None = None,
                        on_result: Callable[[Result], None] | None = None,
                        on_status: Callable[[str], None] | None = None,
                        on_window: Callable[[dict], None] | None = None,
                        keep_results: bool = True) -> list[Result]:
    """measure_jobs with the board settings as one BoardPolicy (what a lab passes for all its boards).
    keep_results=False: each result is let go once stored and given to on_result, and [] is returned (a lab
    keeps its own summaries, edgeprof.lab.runner; a sweep's raw telemetry and logs would otherwise stay in
    memory until its last item)."""
    status = on_status or (lambda message: None)
    sources = prepare_jobs(jobs)
    if isinstance(device, str):
        device = get_device(device, inventory)
    if power_modes:
        check_sweep(device, policy)
    store = store or open_store()
    results: list[Result] = []

    def keep(result: Result) -> None:
        result.finished_at = result.finished_at or now()
        store.add(result)
        if keep_results:
            results.append(result)
        if on_result:
            on_result(result)

    status(f"connecting to {device.name} ({device.address})")
    with open_board(device, run_id=uuid.uuid4().hex[:12], accept_new_host_key=policy.accept_new_host_key,
                    on_reconnect=status, sudo=needs_root(device, policy)) as board:
        sweep, swept = None, False
        try:
            # If this process dies, the board's guard stops what still runs from the work folder and removes it.
            with power_session(device, board.transport, run_id=board.run_id, policy=policy, workdir=board.workdir,
                               root_by=board.root_by, status=status) as (power, recorded, _):
                board.power_state = recorded
                modes = ModeSweep(power, board, status) if power_modes else None
                if modes:
                    jobs = [replace(job, power_mode=mode) for mode in power.sweep_modes(list(power_modes))
                            for job in jobs]
                sweep = Sweep(board, power, jobs, sources, keep, status, policy.cooldown_s, should_stop, should_run,
                              modes, quiet_wait_s=policy.wait_s if policy.quiet_board else None,
                              start_below_c=policy.start_below_c, wait_s=policy.wait_s, on_window=on_window)
                sweep.run()
                swept = True
            # The lease's release removed the work folder (Restore.stop_work): open_board need not.
            board.workdir = ""
        except TransportError as e:
            if sweep is None:
                raise  # nothing started: a clear error, no results
            if swept:
                raise TransportError(
                    f"{e}. Every item's result is stored, but restoring the board was not confirmed: its lease's guard "
                    f"restores it when the lease runs out (within {policy.lease_s} s)", command=e.command,
                    command_status=e.command_status, stderr=e.stderr) from None
            for index, job in enumerate(jobs):
                if index not in sweep.finished:
                    keep(sweep.new_result(job).fail(f"not run: {e}"))
    return results


# An item whose connection dropped mid-way is run again on the new connection, up to this many times in all.
ITEM_ATTEMPTS = 2


def _once_more(step: Callable):
    """step(), and once more if the connection was replaced while it ran (a read-only step: probing a
    backend, reading the clocks)."""
    try:
        return step()
    except ConnectionReplaced:
        return step()


@dataclass
class Sweep:
    """One device's jobs, in order, on a board held in a power session. Each job is prepared (its backend
    once), measured with the clocks read around it and telemetry sampled, and kept (stored) at once. A job that
    fails is kept as failed and the sweep goes on; only a lost connection (TransportError) leaves run()."""
    board: Board
    power: PowerControl
    jobs: Sequence[Job]
    sources: dict[str, ModelSource]
    keep: Callable[[Result], None]
    status: Callable[[str], None]
    cooldown_s: float = 0
    should_stop: Callable[[], bool] | None = None
    should_run: Callable[[Job], bool] | None = None
    modes: ModeSweep | None = None                      # --power-modes: the mode the board is in, those refused
    quiet_wait_s: float | None = None                   # --quiet-board: how long to wait for quiet; None: no wait
    start_below_c: float | None = None                  # --start-below: the hottest zone's ceiling to start under
    wait_s: float = 0                                   # how long --start-below waits
    on_window: Callable[[dict], None] | None = None     # each --duration window as it ends (telemetry.window_log)
    finished: set[int] = field(default_factory=set)     # indexes of the jobs done (kept, or skipped)
    _slots: dict = field(default_factory=dict)           # Job.gpus -> the GPUs they are on this board
    _prepared: dict = field(default_factory=dict)        # backend name -> the backend, or why it is unavailable
    _measured: int = 0
    _index: int = 0                                      # the job being run
    _start_check: dict = field(default_factory=dict)   # --start-below / --quiet-board: what the waits found
    # The previous item's end readings (before the first item, those of the power control's own last look):
    # the next item's start readings if nothing ran since.
    _last_clocks: dict | None = None

    def __post_init__(self):
        self._last_clocks = self.power.readings
        # tegrastats shows clocks and rails only to root; sudo is there (and checked) exactly when the board's
        # power control needed it, which on a Jetson it always does.
        self.telemetry = BoardTelemetry(self.board, sudo=self.power.sudo if self.power.needs_root() else None)

    def _lost(self, job: Job, error: TransportError) -> None:
        """The connection is gone for good during `job`: keep it as failed, and end the sweep."""
        self.keep(self.new_result(job).fail(str(error)))
        self.finished.add(self._index)
        raise error

    def new_result(self, job: Job) -> Result:
        result = self.board.new_result(self.sources[job.model], job.backend, job.batch)
        result.plan = job.plan
        return result

    def run(self) -> None:
        # --gpus the board lacks stops the run before anything is measured (JobsError, an input error).
        self._slots = {job.gpus: concurrency.resolve_gpus(job.gpus, self.board.facts, self.board.device.name)
                       for job in self.jobs}
        for index, job in enumerate(self.jobs):
            if self.should_stop and self.should_stop():
                self.status(f"{self.board.device.name}: stopping, {len(self.jobs) - index} item(s) not run")
                return
            self._index = index
            if not self.should_run or self.should_run(job):
                self._run_job(job)
            self.finished.add(index)

    def _backend(self, name: str):
        if name not in self._prepared:
            backend = backend_registry.get(name)
            self.status(f"{self.board.device.name}: looking for {name}")
            try:
                self.board.backend_facts[name] = _once_more(lambda: backend.prepare(self.board))
                self._prepared[name] = backend
            except BackendUnavailable as e:
                self._prepared[name] = e
        return self._prepared[name]

    def _run_job(self, job: Job) -> None:
        if job.power_mode and job.power_mode != self.modes.current:
            self._last_clocks = None    # another mode: the previous item's end readings are not this one's start
            refused = self.modes.enter(job.power_mode)
            if refused:
                failed = self.new_result(job).fail(refused)
                failed.state["power_sweep"] = {"mode_name": job.power_mode, "refused": True}
                self.keep(failed)
                return
            self._last_clocks = self.power.readings     # as entering the mode left them (settled, or None)
        backend = self._backend(job.backend)
        if isinstance(backend, BackendUnavailable):
            self.keep(self.new_result(job).fail(str(backend)))
            return
        # --best: each variant the backend has for this board is a result of its own.
        variants = backend.variants(self.board, job.options) if job.options.best else [job.options]
        for options in variants:
            if job.repeat == 1:
                self._measure(backend, job, options)
                continue
            group = uuid.uuid4().hex[:8]
            runs = [self._measure(backend, job, options, {"group": group, "index": i + 1, "of": job.repeat})
                    for i in range(job.repeat)]
            summary = validity.summarize_repeats(runs)
            summary.repeat = {"group": group, **(summary.repeat or {"summary": True, "runs": job.repeat})}
            self.keep(summary)

    def _measure(self, backend, job: Job, options: Options, repeat: dict | None = None) -> Result:
        """Measure one item (one run of it with `repeat`), keep its result and return it."""
        board = self.board
        if self._measured and self.cooldown_s:
            self.status(f"{board.device.name}: cooling down {self.cooldown_s:g} s")
            time.sleep(self.cooldown_s)
            self._last_clocks = None
        self.status(f"{board.device.name}: {job.backend} {self.sources[job.model].name} batch {job.batch}"
                    + (f" (run {repeat['index']} of {repeat['of']})" if repeat else ""))
        started = time.monotonic()
        if self.start_below_c is not None or self.quiet_wait_s is not None:
            self._last_clocks = None    # a wait may last minutes: the clocks are read after it
        try:
            # What the waits found as the item started, kept in its state (_finish).
            self._start_check = {}
            if self.start_below_c is not None:
                self._start_check["temps_c"] = _once_more(
                    lambda: self.telemetry.wait_until_cool(self.start_below_c, self.wait_s, self.status))
            if self.quiet_wait_s is not None:
                self._start_check["others"] = _once_more(
                    lambda: self.telemetry.wait_until_quiet(self.quiet_wait_s, self.status))
        except BoardControlError as e:
            failed = self.new_result(job).fail(f"not run: {e}")
            failed.repeat = repeat
            self.keep(failed)
            return failed
        try:
            clocks_start = self._last_clocks or _once_more(self.power.snapshot)
        except BoardControlError as e:
            # The board answers but refused to show its clocks: this item has no trustworthy state, the next
            # one may (only a lost connection ends the sweep).
            failed = self.new_result(job).fail(f"not run: reading the clocks before it failed: {e}")
            failed.repeat = repeat
            self.keep(failed)
            return failed
        gpus = concurrency.slots(self._slots[job.gpus], job.jobs)
        boards = concurrency.job_boards(board, gpus, backend.gpu_env) if gpus != [None] else [board]
        gpu_of = {id(on): gpu for on, gpu in zip(boards, gpus)}
        feed, recording = None, None

        def measure(on: Board) -> Result:
            asked = options if feed is None else replace(options, window_log=feed.path)
            return backend.measure(on, self.sources[job.model], job.batch, replace(asked, gpu=gpu_of[id(on)]))

        try:
            for attempt in range(1, ITEM_ATTEMPTS + 1):
                feed = None
                with self.telemetry.sampling() as recording:
                    feed = self._window_feed(options, boards, recording)
                    try:
                        with feed or contextlib.nullcontext():
                            measured = ([measure(board)] if boards == [board]
                                        else concurrency.run_together(boards, measure))
                        break
                    except ConnectionReplaced as e:
                        # The connection died mid-item and a new one is up: the result never came back, so
                        # the item runs again (its lease and work folder on the board are still this run's).
                        if attempt < ITEM_ATTEMPTS:
                            self.status(f"{board.device.name}: {e}; running the item again")
                            continue
                        self._lost(job, e)
                    except TransportError as e:
                        self._lost(job, e)
        except KeyboardInterrupt:
            if feed is not None:
                self._keep_interrupted(job, options, feed, recording, clocks_start, started, repeat)
            raise
        for result in measured:
            validity.assess(result)
        try:
            self._last_clocks = _once_more(self.power.snapshot)
        except (BoardControlError, TransportError) as e:
            # The item is measured: it is kept, flagged. After a lost link the next step on the board reconnects
            # or, when the board is gone for good, ends the sweep.
            self._last_clocks = None
            for result in measured:
                result.flags.append({"code": "clocks_end_unknown",
                                     "detail": f"reading the clocks after the timed window failed: {e}"})
        if len(measured) > 1:
            group = concurrency.label(measured, gpus)
            for result in measured:
                self._complete(result, job, clocks_start, recording, started, None)
                self.keep(result)
            total = concurrency.aggregate(measured, group)
            self._complete(total, job, clocks_start, recording, started, repeat)
            total.flags = concurrency.merged_flags(total.flags)   # its jobs' and its own window's, once a code
            concurrency.gpu_telemetry(total)
            measured = [total]
        else:
            if gpus != [None]:
                measured[0].settings["gpu_index"] = gpus[0]
            self._complete(measured[0], job, clocks_start, recording, started, repeat)
        self.keep(measured[0])
        self._measured += 1
        return measured[0]

    def _window_feed(self, options: Options, boards: list[Board], recording) -> WindowFeed | None:
        """A --duration item of one process follows its runner's window log: each window to on_window as it
        ends (live progress, with the sampler's latest temperature), and the windows done kept on Ctrl-C
        (_keep_interrupted)."""
        if options.duration_s is None or len(boards) != 1:
            return None
        return WindowFeed(self.board, f"{self.board.workdir}/windows-{uuid.uuid4().hex[:8]}.jsonl", self.on_window,
                          samples=recording.out + ".part" if recording.pid is not None else None)

    def _keep_interrupted(self, job: Job, options: Options, feed: WindowFeed, recording, clocks_start,
                          started: float, repeat: dict | None) -> None:
        """Ctrl-C during a --duration item: the transport has stopped the runner (it kills the command's process
        group on the board), and its window log holds every window that ended. Keep those as the item's result,
        flagged interrupted (or failed when none ended); the interrupt then ends the sweep, and the power
        session restores the board as after any run."""
        feed.read()
        result = self.new_result(job)
        if feed.windows:
            fill_from_windows(result, feed.windows, options)
            validity.assess(result)
            result.flags.append(validity.interrupted_flag(feed.windows, options.duration_s))
        else:
            result.fail("interrupted (Ctrl-C) before the first window ended")
        self._last_clocks = None    # not read again: Ctrl-C asks to stop now
        if recording is not None:
            self._complete(result, job, clocks_start, recording, started, repeat)
        self.keep(result)

    def _complete(self, result: Result, job: Job, clocks_start, recording, started: float,
                  repeat: dict | None) -> None:
        """The clocks around the item, telemetry over its window, wall time, plan and repeat."""
        result.state.update(clocks_start=clocks_start, clocks_end=self._last_clocks)
        if self._start_check:
            result.state["start_check"] = self._start_check
        recording.attach(result)
        result.wall_s = time.monotonic() - started
        result.plan = job.plan
        result.repeat = repeat


__all__ = ["Board", "BoardPolicy", "Job", "open_board", "MeasureError", "Sweep", "measure", "measure_jobs",
           "measure_with_policy", "prepare_jobs", "probe"]
