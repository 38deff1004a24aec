"""One device during one measure call: connected, probed, with a private work folder; and the policy that says
how edgeprof may use it.

`open_board()` is what measure, check and compare share: connect (strict host keys unless the policy accepts a
new one), probe the board and make the work folder (edgeprof/onboard/probe.sh, one round trip), and on leaving
remove the work folder (unless the lease's release did) and close the connection, whatever happened.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Mapping, Sequence

from . import limits
from .devices import Device, connect
from .models import ModelSource
from .onboard import source
from .result import Result
from .transport import WORKDIR, WORKDIR_TEMPLATE, CommandResult, Transport, TransportError, remove_tree
from .transport.reconnecting import ReconnectingTransport
from .transport.sudo import ASKS, ROOT_BY


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class BoardPolicy:
    """How edgeprof may use a board, the same for every item of a run (CLI flags, plan keys)."""
    accept_new_host_key: bool = False   # trust and record the host key of a board seen first
    clocks: str | None = None           # max, leave or lock (edgeprof.power); None: the family's default
    sudo_password_env: str | None = None
    lease_s: int = 180                  # the board restores itself this long after the host stops renewing
    wait_s: float = 0                   # how long to queue for another run's lease
    cooldown_s: float = 0               # a pause between items, so one item's heat does not bias the next
    take_over_dead: bool = False        # restore and take a lease whose run died on this host, at once
    quiet_board: bool = False           # before each item, wait (up to wait_s) for other processes to go quiet
    start_below_c: float | None = None  # before each item, wait (up to wait_s) for the hottest zone to cool below

    def __post_init__(self):
        limits.integer("board policy", "lease_s", self.lease_s, limits.LEASE_S)
        limits.number("board policy", "wait_s", self.wait_s, limits.WAIT_S)
        limits.number("board policy", "cooldown_s", self.cooldown_s, limits.COOLDOWN_S)
        if self.start_below_c is not None:
            limits.number("board policy", "start_below_c", self.start_below_c, limits.START_BELOW_C)


def probe(transport: Transport, *, sudo: bool = False) -> tuple[dict, str, str | None]:
    """The board's facts, and a fresh private work folder made in the same round trip; with sudo, also how
    the login gets root there (edgeprof.transport.sudo's ROOT, PASSWORDLESS, ASKS or MISSING; else None)."""
    result = transport.run(["sh", "-c", source("probe.sh"), "probe.sh", WORKDIR_TEMPLATE,
                            *(["sudo"] if sudo else [])], timeout=60)
    first, _, rest = result.stdout.partition("\n")
    workdir = first.removeprefix("workdir=")
    if not first.startswith("workdir=") or not WORKDIR.fullmatch(workdir):
        raise TransportError(f"{transport.name}: could not create a temporary folder: "
                             f"{(result.stderr.strip() or first)[-300:]}", command=result.command,
                             command_status=result.exit_status, stderr=result.stderr)
    root_by = None
    if sudo:
        said, _, rest = rest.partition("\n")
        answer = said.removeprefix("sudo=")
        root_by = answer if answer in ROOT_BY else ASKS
    facts = {}
    for line in rest.splitlines():
        key, sep, value = line.partition("=")
        if sep and value.strip():
            facts[key] = value.strip()
    for key in ("cpus", "mem_total_kb", "gpu_count"):
        if facts.get(key, "").isdigit():
            facts[key] = int(facts[key])
    return facts, workdir, root_by


@contextlib.contextmanager
def open_board(device: Device, *, run_id: str, accept_new_host_key: bool = False,
               on_reconnect: Callable[[str], None] | None = None, sudo: bool = False) -> Iterator["Board"]:
    """A connected, probed Board with its work folder; on leaving, the work folder is removed (unless a caller
    that saw it removed cleared board.workdir) and the connection closed, whatever happened. With
    on_reconnect, a board over SSH reconnects when its connection drops (edgeprof.transport.reconnecting) and
    on_reconnect hears of each attempt. sudo: the run will use sudo, and the probe checks it
    (Board.root_by)."""
    if on_reconnect is None or device.is_local:
        transport = connect(device, accept_new_host_key=accept_new_host_key)
    else:
        transport = ReconnectingTransport(lambda: connect(device, accept_new_host_key=accept_new_host_key),
                                          on_reconnect=on_reconnect)
    board = Board(device, transport, run_id=run_id)
    try:
        board.facts, board.workdir, board.root_by = probe(transport, sudo=sudo)
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
    root_by: str | None = None   # how the login gets root, where the probe was asked (open_board's sudo)
    # Set in every command of this board: a concurrent job's GPU (Backend.gpu_env). A job's Board is a copy
    # of the run's with its own workdir and env (edgeprof.concurrency).
    env: Mapping[str, str] = field(default_factory=dict)
    # Concurrent jobs' copies share this lock; a job's thread holds it except while a command runs on the
    # board (edgeprof.concurrency.run_together). So the jobs' runners overlap on the board while the host's
    # work between them takes turns: torch.onnx.export keeps global state and fails when two threads export at
    # once, and paramiko's SFTP client is one request stream (two threads uploading at once broke the
    # connection: "Server connection dropped"). None: a board of one job.
    turn: threading.Lock | None = field(default=None, repr=False, compare=False)

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None,
            record_in: Result | None = None) -> CommandResult:
        if self.turn is not None:
            self.turn.release()
        try:
            result = self.transport.run(argv, env={**self.env, **(env or {})} or None, timeout=timeout)
        finally:
            if self.turn is not None:
                self.turn.acquire()
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
                        "kind": model.kind, "input_shapes": model.input_shapes(batch)},
            state={k: v for k, v in (self.power_state or {}).items() if k != "original"}
            | {"state_before": (self.power_state or {}).get("original")},
            started_at=now())


__all__ = ["Board", "BoardPolicy", "open_board", "probe"]
