"""The board lease: one edgeprof run per board at a time, and a guard that undoes its changes if the host
disappears.

On the board, `/var/tmp/edgeprof/lease/` is the lock (mkdir is atomic) and holds:
- `owner`: who holds it (host, pid, run id); `expires`: board-clock epoch seconds, renewed by the host;
- `restore.sh`: the commands that put the board back (written from quoted argument vectors);
- `guard.pid`: the guard, a detached shell loop that, once `expires` passes, runs restore.sh and renames
  the folder to `interrupted.<time>.<pid>`, which releases the lock and leaves a record.
The next edgeprof contact reports and clears those records, and also restores a lease left with no live
guard (a reboot killed it). /var/tmp survives reboots; nvpmodel's mode does too, so that matters.
"""
from __future__ import annotations

import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..transport import Transport, TransportError
from ..transport.sudo import Sudo

BOARD_DIR = "/var/tmp/edgeprof"
LEASE_DIR = f"{BOARD_DIR}/lease"

_ACQUIRE = r'''d=$1 lease=$2 owner=$3
mkdir -p "${d%/*}" 2>/dev/null && chmod 1777 "${d%/*}" 2>/dev/null
for r in "${d%/*}"/interrupted.*; do
  [ -d "$r" ] || continue
  echo "interrupted $(cat "$r/restored_at" 2>/dev/null) $(cat "$r/owner" 2>/dev/null)"
  rm -rf "$r"
done
if mkdir "$d" 2>/dev/null; then
  # Each file appears whole (written aside, then renamed): a reader never sees an empty `expires`.
  printf '%s\n' "$owner" > "$d/owner.new" && mv "$d/owner.new" "$d/owner"
  echo $(( $(date +%s) + lease )) > "$d/expires.new" && mv "$d/expires.new" "$d/expires"
  echo acquired; exit 0
fi
now=$(date +%s); expires=$(cat "$d/expires" 2>/dev/null); guard=$(cat "$d/guard.pid" 2>/dev/null)
# A lease without `expires` is being taken this very moment (its taker writes it right after mkdir): busy,
# not stale, unless it has been like that for a minute.
young=$(( now - $(stat -c %Y "$d" 2>/dev/null || echo "$now") < 60 ))
if { [ -z "$expires" ] && [ "$young" = 1 ]; } || [ "$now" -le "${expires:-0}" ] \
   || { [ -n "$guard" ] && [ -d "/proc/$guard" ]; }; then
  echo "busy $(cat "$d/owner" 2>/dev/null || echo '(being taken)')"; exit 3
fi
echo "stale $(cat "$d/owner" 2>/dev/null)"; exit 4'''

# Runs detached (setsid, no terminal, stdio closed) so it outlives the SSH session that started it. It guards
# its own lease only: once the lease's owner is not its own (released, and maybe already taken by the next
# run, whose `expires` may not be written yet), it leaves.
_GUARD = r'''d=$1 owner=$2
echo $$ > "$d/guard.pid"
while [ "$(cat "$d/owner" 2>/dev/null)" = "$owner" ]; do
  now=$(date +%s); expires=$(cat "$d/expires" 2>/dev/null || echo 0)
  if [ "$now" -gt "$expires" ]; then
    [ -f "$d/restore.sh" ] && sh "$d/restore.sh" > "$d/restore.log" 2>&1
    date +%s > "$d/restored_at"
    mv "$d" "${d%/*}/interrupted.$now.$$"
    exit 0
  fi
  sleep 1
done'''
_LAUNCH = 'setsid sh -c "$1" edgeprof-guard "$2" "$3" </dev/null >/dev/null 2>&1 &'
_RENEW = 'echo $(( $(date +%s) + $2 )) > "$1/expires.new" && mv "$1/expires.new" "$1/expires"'
_RESTORE_STALE = r'''d=$1
[ -f "$d/restore.sh" ] && sh "$d/restore.sh" > "$d/restore.log" 2>&1
date +%s > "$d/restored_at"; mv "$d" "${d%/*}/interrupted.$(date +%s).stale"'''


class BoardBusy(TransportError):
    """Another edgeprof run holds the board."""


@dataclass
class Lease:
    transport: Transport
    sudo: Sudo | None
    lease_s: int
    owner: str                                          # written in the lease; its guard checks it
    notices: list[str] = field(default_factory=list)   # what the previous runs left behind, for the user
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None
    _stop_work: list = field(default_factory=list)
    _restore: list = field(default_factory=list)

    def write_restore(self, commands: Sequence[Sequence[str]]) -> None:
        """Record how to undo what is about to change; the guard and release() both run it."""
        self._restore = list(commands)
        self._write()

    def write_stop_work(self, commands: Sequence[Sequence[str]]) -> None:
        """Record how to stop this run's processes; run before the restore, so no load outlives the lease."""
        self._stop_work = list(commands)
        self._write()

    def _write(self) -> None:
        script = "".join(shlex.join(argv) + "\n" for argv in self._stop_work + self._restore)
        self.transport.put_text(f"{LEASE_DIR}/restore.sh", script)

    def start_guard(self) -> None:
        argv = ["sh", "-c", _LAUNCH, "edgeprof-launch", _GUARD, LEASE_DIR, self.owner]
        started = (self.sudo.run(argv, timeout=30) if self.sudo else self.transport.run(argv, timeout=30))
        if not started.ok:
            raise TransportError(f"{self.transport.name}: could not start the restore guard: {started.stderr.strip()}")
        self._renewer = threading.Thread(target=self._renew_loop, name="edgeprof-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(max(1.0, self.lease_s / 4)):
            try:
                self.transport.run(["sh", "-c", _RENEW, "renew", LEASE_DIR, str(self.lease_s)], timeout=30)
            except TransportError:
                return  # the guard restores the board when the lease runs out

    def release(self) -> None:
        """Undo the changes now (restore.sh) and free the board."""
        self._stop.set()
        if self._renewer:
            self._renewer.join(timeout=35)
        restore = ["sh", "-c", '[ ! -f "$1/restore.sh" ] || sh "$1/restore.sh"', "restore", LEASE_DIR]
        done = self.sudo.run(restore, timeout=120) if self.sudo else self.transport.run(restore, timeout=120)
        remove = ["rm", "-rf", "--", LEASE_DIR]
        (self.sudo.run(remove, timeout=60) if self.sudo else self.transport.run(remove, timeout=60))
        if not done.ok:
            raise TransportError(f"{self.transport.name}: restoring the board's state failed: "
                                 f"{(done.stderr or done.stdout).strip()}")


def owner_label(run_id: str) -> str:
    return f"run {run_id} from {socket.gethostname()} pid {os.getpid()}"


def acquire(transport: Transport, sudo: Sudo | None, *, run_id: str, lease_s: int, wait_s: float,
            status: Callable[[str], None] = lambda m: None) -> Lease:
    """Take the board's lease, waiting up to wait_s for another run to finish; raise BoardBusy after that."""
    notices: list[str] = []
    deadline = time.monotonic() + wait_s
    label = owner_label(run_id)
    while True:
        got = transport.run(["sh", "-c", _ACQUIRE, "acquire", LEASE_DIR, str(lease_s), label], timeout=30)
        lines = got.stdout.splitlines()
        for line in lines:
            if line.startswith("interrupted "):
                _, restored_at, *owner = line.split(" ")
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(restored_at))) if restored_at.isdigit() \
                    else "at an unknown time"
                notices.append(f"a previous edgeprof run ({' '.join(owner) or 'unknown owner'}) was interrupted; "
                               f"the board restored its own state at {when}")
        last = lines[-1] if lines else ""
        if got.exit_status == 0:
            return Lease(transport, sudo, lease_s, label, notices)
        if got.exit_status == 4:
            # Expired and no guard alive (the board rebooted under it): restore now, then try again.
            owner = last.removeprefix("stale ")
            fix = ["sh", "-c", _RESTORE_STALE, "restore-stale", LEASE_DIR]
            (sudo.run(fix, timeout=120) if sudo else transport.run(fix, timeout=120))
            notices.append(f"a previous edgeprof run ({owner}) left a pending restore with no guard (reboot?); "
                           f"edgeprof restored the board's state now")
            continue
        if got.exit_status == 3:
            if time.monotonic() >= deadline:
                raise BoardBusy(f"{transport.name} is in use by another edgeprof run "
                                f"({last.removeprefix('busy ')}). Wait for it, or pass --wait SECONDS.")
            status(f"{transport.name} is busy ({last.removeprefix('busy ')}); waiting")
            time.sleep(2)
            continue
        raise TransportError(f"{transport.name}: could not take the board lease: {(got.stderr or got.stdout).strip()}")
