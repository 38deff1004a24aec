"""A transport that reconnects when its connection to the board dies, for the rest of a sweep.

A lab's SSH links drop now and then (a board's sshd restarted, a switch flapped, a handshake storm on a busy
host). The command that was running when the link died has an unknown outcome, so it is never retried here:
its caller gets ConnectionReplaced (still a BoardUnreachable) once a new connection is up, and decides (the
sweep reruns the item whose result did not come back). Only when every attempt to reconnect fails does the
caller get the original BoardUnreachable, as without this wrapper.

Attempts: RETRY_DELAYS_S between them (1 + 3 + 8 s, so a board that is back within about 15 s is kept); each
attempt is a full connect with the device's usual timeout. A command timing out (CommandTimeout) and the board's
answer that a file cannot be read or written (RemoteFileError) are not a lost connection and pass through
untouched.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Mapping, Sequence

from . import BoardUnreachable, CommandResult, CommandTimeout, RemoteFileError, Transport

RETRY_DELAYS_S = (1.0, 3.0, 8.0)


class ConnectionReplaced(BoardUnreachable):
    """The connection died during this call and a new one is up: the call's outcome is unknown."""


class ReconnectingTransport:
    def __init__(self, connect: Callable[[], Transport], *, on_reconnect: Callable[[str], None] = lambda m: None,
                 delays_s: Sequence[float] = RETRY_DELAYS_S):
        self._connect = connect
        self._inner = connect()
        self.name = self._inner.name
        self._on_reconnect = on_reconnect
        self._delays_s = tuple(delays_s)
        self._lock = threading.Lock()
        self._generation = 0      # which connection is current: the lease's renewal thread shares this object
        self.reconnects = 0

    def _call(self, method: str, *args, **kwargs):
        generation = self._generation
        try:
            return getattr(self._inner, method)(*args, **kwargs)
        except (CommandTimeout, RemoteFileError):
            raise
        except BoardUnreachable as lost:
            self._replace(generation, lost)
            raise ConnectionReplaced(f"{self.name}: the connection dropped ({lost}); reconnected, but what was "
                                     f"running then has an unknown outcome") from None

    def _replace(self, generation: int, lost: BoardUnreachable) -> None:
        """A new connection, unless another thread made one since `generation` failed; raise `lost` when
        every attempt fails."""
        with self._lock:
            if generation != self._generation:
                return
            for attempt, delay in enumerate(self._delays_s, 1):
                time.sleep(delay)
                try:
                    fresh = self._connect()
                except BoardUnreachable as e:
                    self._on_reconnect(f"{self.name}: reconnect attempt {attempt} of {len(self._delays_s)} "
                                       f"failed: {e}")
                    continue
                try:
                    self._inner.close()
                except Exception:   # the old connection is already broken; closing it is a courtesy
                    pass
                self._inner, self._generation = fresh, self._generation + 1
                self.reconnects += 1
                self._on_reconnect(f"{self.name}: the SSH connection dropped ({lost}); reconnected "
                                   f"(attempt {attempt})")
                return
        raise lost

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None,
            stdin: str | None = None) -> CommandResult:
        return self._call("run", argv, env=env, timeout=timeout, stdin=stdin)

    def put_bytes(self, path: str, data: bytes) -> None:
        self._call("put_bytes", path, data)

    def get_bytes(self, path: str) -> bytes:
        return self._call("get_bytes", path)

    def put_text(self, path: str, text: str) -> None:
        self._call("put_text", path, text)

    def get_text(self, path: str) -> str:
        return self._call("get_text", path)

    def close(self) -> None:
        self._inner.close()


__all__ = ["ConnectionReplaced", "ReconnectingTransport", "RETRY_DELAYS_S"]
