"""The board lease: one edgeprof run per board at a time, and a guard that undoes its changes if the host
disappears.

Where it lives. Whatever root runs or reads back must be writable by root alone (jetson-stats keeps its
privileged state the same way), so on a board where edgeprof changes state through sudo the lease is
`/var/lib/edgeprof/lease/`, made and written only by root. Where edgeprof changes nothing (no sudo: a desktop
under `--clocks leave`), it is `/var/tmp/edgeprof-UID/lease/` of the login user, mode 0700 (the per-user
folder in a sticky /var/tmp that tmux uses for its sockets). The folder is the lock (mkdir is atomic) and
holds:
- `owner`: who holds it (host, pid, run id); `expires`: board-clock epoch seconds, renewed by the host;
- `restore`: what puts the board back, as data ("nvpmodel 3", "jetson_clocks", "stop_work /tmp/edgeprof.X",
  "nvpmodel_first 0"):
  the lease script (edgeprof/onboard/lease.sh, sent by the host each time) checks each value and runs a fixed
  command for it; nothing in the folder is ever executed;
- `clocks.conf`: `jetson_clocks --store` output; `guard.pid`: the guard, a detached shell loop that, once
  `expires` passes, restores and renames the folder to `interrupted.<time>.<pid>`, which releases the lock
  and leaves a record.
Before doing anything the script checks that the folder and every file in it are no symbolic links, belong
to root (or, without sudo, to the login user) and are writable by nobody else; otherwise it refuses and the
message says what it found and how to clean up. The next edgeprof contact reports and clears the records,
and restores a lease left with no live guard (a reboot killed it): /var/lib survives reboots, and so does
nvpmodel's mode.

Older edgeprof versions kept the lease in a world-writable /var/tmp/edgeprof; whatever is there is reported
and never run or removed.
"""
from __future__ import annotations

import os
import re
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Callable

from ..errors import BoardControlError
from ..onboard import source

from ..transport import WORKDIR, CommandResult, CommandTimeout, Transport, TransportError
from ..transport.reconnecting import ConnectionReplaced
from ..transport.sudo import Sudo

BOARD_DIR = "/var/lib/edgeprof"
LEASE_DIR = f"{BOARD_DIR}/lease"
LEGACY_DIR = "/var/tmp/edgeprof"
BUSY, STALE, UNSAFE = 3, 4, 5   # lease.sh's exit statuses


def user_lease_dir(uid: int) -> str:
    return f"/var/tmp/edgeprof-{uid}/lease"


def lease_script() -> str:
    return source("lease.sh")


class BoardBusy(BoardControlError):
    """Another edgeprof run holds the board."""


class LeaseUnsafe(BoardControlError):
    """The lease folder is not what edgeprof made (a link, another owner, writable by others): refused."""


@dataclass(frozen=True)
class Restore:
    """What puts the board back, in the order the lease script applies it."""
    stop_work: str | None = None        # the run's work folder: its processes stopped, the folder removed
    # A power-mode sweep may leave the board in a mode with CPUs offline, whose stored frequencies
    # `jetson_clocks --restore` could then not write: this mode (the max one, every CPU online) first, so
    # the restore starts from the state a plain run leaves (tests/lab/jetson_sim/README.md, "Restoring").
    nvpmodel_first: int | None = None
    jetson_clocks: bool = False         # `jetson_clocks --restore` of the clocks stored in the lease
    nvpmodel: int | None = None         # the power mode id to switch back to
    nvidia_smi_rgc: bool = False        # `nvidia-smi -rgc`: unlock the GPU clocks

    def __post_init__(self):
        if self.stop_work is not None and not WORKDIR.fullmatch(self.stop_work):
            raise ValueError(f"not an edgeprof work folder: {self.stop_work!r}")
        for mode in (self.nvpmodel_first, self.nvpmodel):
            if mode is not None and (type(mode) is not int or mode < 0):
                raise ValueError(f"not a power mode id: {mode!r}")

    def text(self) -> str:
        lines = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is True:
                lines.append(f.name)
            elif value is not None and value is not False:   # a mode id 0 (MAXN on most boards) is a step
                lines.append(f"{f.name} {value}")
        return "\n".join(lines)


@dataclass
class Lease:
    transport: Transport
    sudo: Sudo | None                                   # root's lease when set, the login user's otherwise
    lease_s: int
    owner: str                                          # written in the lease; its guard checks it
    path: str = LEASE_DIR
    notices: list[str] = field(default_factory=list)   # what the previous runs left behind, for the user
    restore: Restore = field(default_factory=Restore)
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None

    def write_restore(self, *, store_clocks: bool = False, **steps) -> None:
        """Record how to undo what is about to change (adding to what is recorded); the guard and release()
        both apply it. store_clocks: first `jetson_clocks --store` into the lease folder, the clocks that
        Restore(jetson_clocks=True) puts back (one round trip for both: a lab pays for each on the host)."""
        restore = replace(self.restore, **steps)
        self._checked("record", restore.text(), *(["store-clocks"] if store_clocks else []),
                      what="store the board's clocks and record how to restore them" if store_clocks
                      else "record how to restore the board")
        self.restore = restore

    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew_loop, name="edgeprof-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        # A renewal may take until the lease would run out (a board starved of CPU answers late, and a late
        # renewal still extends the lease); one stopped then, or whose link was replaced, is sent again at once.
        # (A fixed 60 s that ended the renewals when it ran out lost boards mid-run in a 128-board lab on 2 cores:
        # the guards restored them.)
        every = max(1.0, self.lease_s / 4)
        wait = every
        while not self._stop.wait(wait):
            wait = every
            try:
                if _run(self.transport, self.sudo, self.path, "renew", str(self.lease_s), self.owner,
                        timeout=self.lease_s - every).exit_status:
                    return  # not ours any more (or refused): nothing to keep alive
            except (ConnectionReplaced, CommandTimeout):
                wait = 0
            except TransportError:
                return  # the guard restores the board when the lease runs out

    def release(self) -> None:
        """Undo the changes now and free the board."""
        self._stop.set()
        if self._renewer:
            self._renewer.join(timeout=35)
        try:
            self._checked("release", self.owner, what="restore the board's state", timeout=120)
        except ConnectionReplaced:
            # The link died during the release and a new one is up: release again. lease.sh restores only a lease
            # that is still this run's, so a release that went through the first time is not applied twice: the
            # second finds the lease gone, or already another run's ("lost"), the board restored either way.
            again = _run(self.transport, self.sudo, self.path, "release", self.owner, timeout=120)
            said = (again.stdout.strip().splitlines() or [""])[-1]
            if not (again.exit_status == BUSY and (said == "lost" or said.startswith("lost "))):
                _raise_for(again, self.transport, self.path, "restore the board's state")

    def _checked(self, action: str, *args: str, what: str, timeout: float = 60) -> CommandResult:
        done = _run(self.transport, self.sudo, self.path, action, *args, timeout=timeout)
        _raise_for(done, self.transport, self.path, what)
        return done


def _run(transport: Transport, sudo: Sudo | None, path: str, action: str, *args: str,
         timeout: float = 60) -> CommandResult:
    """lease.sh's `action` on the lease at `path`, as root (sudo) or as the login user."""
    return _run_as(transport, sudo, ["sh", "-c", lease_script(), "lease.sh", action, path, *args], timeout)


def _run_as(transport: Transport, sudo: Sudo | None, argv: list[str], timeout: float) -> CommandResult:
    return sudo.run(argv, timeout=timeout) if sudo else transport.run(argv, timeout=timeout)


def _raise_for(done: CommandResult, transport: Transport, path: str, what: str) -> None:
    if done.ok:
        return
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.exit_status == UNSAFE:
        found = last.removeprefix("unsafe ")
        raise LeaseUnsafe(
            f"{transport.name}: edgeprof will not use its lease folder {path}: {found}. Nothing was run from it. "
            f"edgeprof makes that folder itself, owned by {'root' if path == LEASE_DIR else 'the login user'} and "
            f"writable by nobody else; if no edgeprof run is using the board, remove it "
            f"({'sudo ' if path == LEASE_DIR else ''}rm -rf {shlex.quote(path.rsplit('/', 1)[0])}) and run again.", command=done.command, command_status=done.exit_status)
    fields = {"command": done.command, "command_status": done.exit_status, "stderr": done.stderr}
    if done.exit_status == BUSY and last.startswith("lost "):
        raise BoardControlError(f"{transport.name}: this run's board lease was taken over ({last[5:] or 'gone'}); "
                                f"could not {what}", **fields)
    raise BoardControlError(f"{transport.name}: could not {what} (exit {done.exit_status}): "
                            f"{(done.stderr or done.stdout).strip()[-500:]}", **fields)


def owner_label(run_id: str) -> str:
    return f"run {run_id} from {socket.gethostname()} pid {os.getpid()}"


_OWNER = re.compile(r"run \S+ from (?P<host>\S+) pid (?P<pid>\d+)")


def dead_here(owner: str) -> int | None:
    """The pid of the run that holds a lease, when that run was started on this host and its process is
    gone (SIGKILL, a crash, a reboot of this host); None otherwise, a run of another host included: it
    cannot be checked from here. A reused pid reads as alive, which only means waiting as before."""
    found = _OWNER.fullmatch(owner.strip())
    if not found or found["host"] != socket.gethostname():
        return None
    pid = int(found["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    except PermissionError:
        return None     # alive, another user's
    return None


def _lease_path(transport: Transport, sudo: Sudo | None) -> str:
    if sudo:
        return LEASE_DIR
    uid = transport.run(["id", "-u"], timeout=30)
    if not uid.ok or not uid.stdout.strip().isdigit():
        raise BoardControlError(f"{transport.name}: could not read the login user's id: {uid.stderr.strip()}",
                                command=uid.command, command_status=uid.exit_status, stderr=uid.stderr)
    return user_lease_dir(int(uid.stdout))


def _notice(line: str) -> str | None:
    if line.startswith("interrupted "):
        _, restored_at, *owner = line.split(" ")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(restored_at))) if restored_at.isdigit() \
            else "at an unknown time"
        return (f"a previous edgeprof run ({' '.join(owner) or 'unknown owner'}) was interrupted; the board "
                f"restored its own state at {when}")
    if line.startswith("legacy "):
        return (f"{LEGACY_DIR}/lease is left from an edgeprof before 0.2 (or was planted there: "
                f"{line.removeprefix('legacy ')}); edgeprof no longer uses it and ran nothing from it. If that run "
                f"was interrupted, the board may still be in its performance mode (check `sudo nvpmodel -q`). "
                f"Remove it once no old edgeprof uses the board: sudo rm -rf {LEGACY_DIR}")
    return None


def acquire(transport: Transport, sudo: Sudo | None, *, run_id: str, lease_s: int, wait_s: float,
            take_over_dead: bool = False, restore: Restore = Restore(),
            status: Callable[[str], None] = lambda m: None) -> Lease:
    """Take the board's lease, waiting up to wait_s for another run to finish; raise BoardBusy after that,
    LeaseUnsafe when the lease folder is not edgeprof's own. A lease held by a run of this host whose process
    is gone is restored and taken at once with take_over_dead; without, the error says so.
    The lease comes back guarded and renewed until release(), with `restore` recorded: the board's guard
    and the recorded steps are there from the round trip that took it."""
    notices: list[str] = []
    deadline = time.monotonic() + wait_s
    label = owner_label(run_id)
    path = _lease_path(transport, sudo)
    while True:
        got = _run(transport, sudo, path, "acquire", str(lease_s), label, restore.text(), lease_script(),
                   timeout=30)
        lines = got.stdout.splitlines()
        notices += [n for n in map(_notice, lines) if n and n not in notices]
        last = lines[-1] if lines else ""
        if got.exit_status == 0:
            lease = Lease(transport, sudo, lease_s, label, path, notices, restore)
            lease._start_renewing()
            return lease
        if got.exit_status == STALE:
            # Expired and no guard alive (the board rebooted under it): restore now, then try again.
            fix = _run(transport, sudo, path, "restore-stale", timeout=120)
            _raise_for(fix, transport, path, "restore the state a previous run left")
            notices.append(f"a previous edgeprof run ({last.removeprefix('stale ')}) left a pending restore with "
                           f"no guard (reboot?); edgeprof restored the board's state now")
            continue
        if got.exit_status == BUSY:
            owner = last.removeprefix("busy ")
            dead = dead_here(owner)
            if dead is not None and take_over_dead:
                fix = _run(transport, sudo, path, "take-over", owner, timeout=120)
                _raise_for(fix, transport, path, "take over the lease of a run whose process is gone")
                notices.append(f"the run holding {transport.name} ({owner}) had died on this host; edgeprof "
                               f"restored the board's state now (--take-over-dead) instead of at its lease's end")
                continue
            if time.monotonic() >= deadline:
                hint = (f" Its process (pid {dead}) is gone from this host: pass --take-over-dead to restore the "
                        f"board now and go on, or wait for its lease to end (its guard then restores the board)."
                        if dead is not None else " Wait for it, or pass --wait SECONDS.")
                raise BoardBusy(f"{transport.name} is in use by another edgeprof run ({owner}).{hint}")
            status(f"{transport.name} is busy ({owner}); waiting")
            time.sleep(2)
            continue
        _raise_for(got, transport, path, "take the board lease")
