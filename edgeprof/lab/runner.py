"""Running a plan over a lab: every board in parallel, each board one measurement at a time.

Each board gets a thread that holds one SSH connection and the board's lease for its whole share of the plan
(edgeprof.session.measure_jobs), so boards never wait for each other and two plans never overlap on a
board. Every finished item is stored at once with the plan's hash and the item's key; running the same plan
again skips the items stored ok and measures the rest (failed ones included). A board that cannot be reached
or controlled fails alone; the others go on.

Several hosts may run the same plan into one shared database (PostgreSQL) at once: each item is measured
once. A plan item names one board, measuring it needs that board's lease, and its result is committed
before the lease is released; so each board thread asks the database again, while it holds the board,
whether the item is already stored ok (by a run that held the board while this one waited), and skips it.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..board import BoardPolicy
from ..concurrency import parse_gpus
from ..devices import Device
from ..errors import EdgeprofError
from ..result import Result
from ..session import Job, measure_with_policy
from ..storage import open_store
from .plan import Item, Plan

# A board thread's database connection only adds its results and asks which of its items are stored: it
# needs no cache, and a lab holds one connection a board.
BOARD_STORE_CACHE_KIB = 64

class _WritesInTurn:
    """A board thread's store whose writes take turns with the other board threads of this process (`turn`,
    which its opening holds too: that checks the schema in a write transaction). SQLite lets one writer in
    at a time and has the others wait up to 30 s (sqlite.ResultStore); with 128 boards on the 2-core build VM
    (load average 188) writers that held the lock waited that long for the CPU, and 46 boards failed with
    "database is locked". Queued here they wait without a deadline; other processes still get SQLite's wait."""

    def __init__(self, store, turn: threading.Lock):
        self._store, self._turn = store, turn

    def add(self, result: Result) -> int:
        with self._turn:
            return self._store.add(result)

    def plan_items_ok(self, plan_hash: str, device: str | None = None) -> set[str]:
        return self._store.plan_items_ok(plan_hash, device)


# What ends one board's share: unreachable, busy (BoardBusy), sudo denied (SudoDenied), connection lost,
# results database unreachable.
# The items it did not finish stay to do for the next run of the plan.


@dataclass
class BoardProgress:
    device: str
    total: int
    skipped: int = 0          # stored ok by an earlier run of the same plan
    done: int = 0
    failed: int = 0
    state: str = "waiting"    # waiting, measuring, finished, failed
    error: str | None = None
    current: str | None = None
    started: float | None = None

    @property
    def left(self) -> int:
        return self.total - self.skipped - self.done - self.failed


def summary_only(result: Result) -> Result:
    """What a LabRun keeps of a stored result: all but its raw parts (telemetry samples and sampler
    commands, raw log, commands, prototxt diff, per-iteration times), which stay in the database (store.get).
    Kept whole, a hundred boards' results would grow the host's memory with every board-second measured."""
    kept = copy.copy(result)
    kept.raw_log, kept.commands, kept.prototxt_diff = "", [], ""
    kept.figures = {key: value for key, value in result.figures.items() if key != "times_ms"}
    if result.telemetry:
        kept.telemetry = {key: value for key, value in result.telemetry.items() if key not in ("samples", "commands")}
    return kept


@dataclass
class LabRun:
    plan: Plan
    plan_hash: str
    boards: dict[str, BoardProgress]
    results: list[Result] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stopping: bool = False    # Ctrl-C: the items in flight finish, no new ones start

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(what, why) for every failed item and every board that could not run."""
        out = [(f"{r.device} {r.model} {r.backend} batch {r.batch}", r.error or "") for r in self.results
               if r.status != "ok"]
        out += [(f"board {b.device}", b.error) for b in self.boards.values() if b.error]
        return out

    def to_dataframe(self):
        """The results as a pandas DataFrame (pandas is optional); see edgeprof.reporting.to_dataframe."""
        from ..reporting import to_dataframe
        return to_dataframe(self.results)

    def eta_s(self) -> float | None:
        """Seconds left at the mean pace so far of the busiest board (boards run in parallel)."""
        estimates = []
        for board in self.boards.values():
            finished = board.done + board.failed
            if board.left and finished and board.started:
                estimates.append((time.monotonic() - board.started) / finished * board.left)
        return max(estimates) if estimates else None


class Lab:
    """A set of boards from the inventory, and plans run over them.

        lab = Lab()             # or Lab(inventory="lab.toml", db="results.sqlite" or "postgresql://host/db")
        run = lab.run(Plan.from_toml("plan.toml"))    # or Plan(devices=["tag:family=tx2"], models=[...])
        run.results, run.failures     # results without their raw parts (summary_only); the store has them
    """

    def __init__(self, inventory: str | None = None, db: str | None = None, *, accept_new_host_key: bool = False,
                 sudo_password_env: str | None = None, take_over_dead: bool = False):
        self.inventory = inventory
        self.db = db
        self.accept_new_host_key = accept_new_host_key
        self.sudo_password_env = sudo_password_env
        self.take_over_dead = take_over_dead

    def run(self, plan: Plan, *, wait_s: float = 0, on_progress: Callable[[LabRun], None] | None = None,
            devices: list[Device] | None = None) -> LabRun:
        """Run `plan`; returns when every board is finished. Raises PlanError/DeviceError/UnknownModel for
        a plan that cannot start (checked before any board is touched). devices: the boards instead of the
        plan's `devices` (labgrid places, edgeprof.labgrid)."""
        plan.validate()
        devices = devices or plan.resolve_devices(self.inventory)
        plan_hash = plan.fingerprint(devices)
        with open_store(self.db) as store:
            stored_ok = store.plan_items_ok(plan_hash)
        items = {d.name: plan.items(d.name) for d in devices}
        lab_run = LabRun(plan, plan_hash, {d.name: BoardProgress(d.name, len(items[d.name])) for d in devices})
        lock = threading.Lock()
        db_turn = threading.Lock()      # the board threads' database writes, one at a time (_WritesInTurn)
        stop = threading.Event()
        policy = BoardPolicy(accept_new_host_key=self.accept_new_host_key, clocks=plan.clocks,
                             sudo_password_env=self.sudo_password_env, lease_s=plan.lease_s, wait_s=wait_s,
                             cooldown_s=plan.cooldown_s, take_over_dead=self.take_over_dead)

        def notify():
            if on_progress:
                with lock:
                    on_progress(lab_run)

        threads = []
        for device in devices:
            todo = [item for item in items[device.name] if item.key not in stored_ok]
            lab_run.boards[device.name].skipped = len(items[device.name]) - len(todo)
            thread = threading.Thread(target=self._board, name=f"edgeprof-{device.name}", daemon=True,
                                      args=(device, plan, plan_hash, todo, policy, lab_run, lock, notify, stop,
                                            db_turn))
            threads.append(thread)
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except KeyboardInterrupt:
            # First Ctrl-C: no new items; those in flight finish and every board is restored. A second
            # Ctrl-C leaves at once; each board then restores itself when its lease runs out.
            stop.set()
            lab_run.stopping = True
            notify()
            for thread in threads:
                thread.join()
        lab_run.finished = time.monotonic()
        notify()
        return lab_run

    def _board(self, device: Device, plan: Plan, plan_hash: str, todo: list[Item], policy: BoardPolicy,
               lab_run: LabRun, lock: threading.Lock, notify, stop: threading.Event,
               db_turn: threading.Lock) -> None:
        progress = lab_run.boards[device.name]
        if not todo:
            progress.state = "finished"
            notify()
            return
        jobs = [Job(item.model, item.backend, item.batch, plan.options(item),
                    plan={"hash": plan_hash, "name": plan.name, "item": item.key}, jobs=item.jobs,
                    gpus=parse_gpus(item.gpus)) for item in todo]

        def on_result(result: Result) -> None:
            with lock:
                lab_run.results.append(summary_only(result))
                if result.status == "ok":
                    progress.done += 1
                else:
                    progress.failed += 1
            notify()

        def on_status(message: str) -> None:
            progress.current = message
            notify()

        def not_stored_yet(job: Job) -> bool:
            # Asked while this run holds the board (see the module docstring).
            if job.plan["item"] not in store.plan_items_ok(plan_hash, device.name):
                return True
            with lock:
                progress.skipped += 1
            notify()
            return False

        progress.state, progress.started = "measuring", time.monotonic()
        notify()
        try:
            # Each board thread has its own database connection (SQLite's WAL: readers never wait for the
            # writer); its writes take turns with the other boards' (_WritesInTurn).
            with db_turn:
                opened = open_store(self.db)
            with opened as store:
                store.cache_at_most(BOARD_STORE_CACHE_KIB)
                measure_with_policy(device, jobs, policy, store=_WritesInTurn(store, db_turn), inventory=self.inventory,
                                    should_stop=stop.is_set, should_run=not_stored_yet, on_result=on_result,
                                    on_status=on_status, keep_results=False)
            progress.state = "finished"
        except EdgeprofError as e:
            progress.state, progress.error = "failed", str(e)
        except Exception as e:
            # A fault of edgeprof's on one board must not take the other boards' runs down with it.
            progress.state, progress.error = "failed", f"internal error: {type(e).__name__}: {e}"
        finally:
            progress.current = None
            notify()


__all__ = ["BoardProgress", "Lab", "LabRun", "summary_only"]
