"""How edgeprof reaches a board: one small contract, one module per transport.

`ssh.SSHTransport` talks to a board over SSH (paramiko); `local.LocalTransport` runs on the host itself.
Both take a command as an argument vector and quote every argument themselves, so no caller ever builds a
shell string out of user text.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from ..errors import BoardUnreachable


# The connection is gone or cannot be made; the name predates edgeprof.errors and stays for callers.
TransportError = BoardUnreachable


class CommandTimeout(BoardUnreachable):
    pass


class RemoteFileError(BoardUnreachable):
    """The board answered that a file cannot be read or written (no such file, no permission): the connection
    itself is fine. A TransportError, as a file read that fails has always been, for its callers."""


@dataclass
class CommandResult:
    command: str          # the exact shell text that ran on the board
    exit_status: int      # 128 + signal number when the command was killed by a signal (abort -> 134)
    stdout: str
    stderr: str
    duration_s: float     # host-timed, from sending the command to its exit status arriving

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def to_dict(self) -> dict:
        return {"command": self.command, "exit_status": self.exit_status, "duration_s": self.duration_s}


def shell_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The shell text for argv with env set, every piece quoted."""
    if not argv:
        raise ValueError("empty command")
    words = [shlex.quote(str(a)) for a in argv]
    if env:
        words = ["env"] + [shlex.quote(f"{k}={v}") for k, v in env.items()] + words
    return " ".join(words)


class Transport(Protocol):
    name: str

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float | None = None, stdin: str | None = None) -> CommandResult: ...

    def put_bytes(self, path: str, data: bytes) -> None: ...

    def get_bytes(self, path: str) -> bytes: ...

    def put_text(self, path: str, text: str) -> None: ...

    def get_text(self, path: str) -> str: ...

    def close(self) -> None: ...


# A run's private work folder on a board (mktemp -d: mode 0700, a name nobody can guess beforehand); the
# board's probe makes it (edgeprof.board.probe), so does make_temp_dir. WORKDIR: what mktemp makes of it.
WORKDIR_TEMPLATE = "/tmp/edgeprof.XXXXXXXX"
WORKDIR = re.compile(r"/tmp/edgeprof\.[A-Za-z0-9]+")


def make_temp_dir(transport: Transport) -> str:
    """A fresh private folder on the board (mktemp -d); shared by both transports."""
    result = transport.run(["mktemp", "-d", WORKDIR_TEMPLATE], timeout=30)
    if not result.ok:
        raise TransportError(f"{transport.name}: could not create a temporary folder: {result.stderr.strip()}")
    return result.stdout.strip()


def remove_tree(transport: Transport, path: str) -> None:
    if not WORKDIR.fullmatch(path):
        raise ValueError(f"refusing to remove {path!r}: not an edgeprof temporary folder")
    transport.run(["rm", "-rf", "--", path], timeout=60)


__all__ = ["CommandResult", "CommandTimeout", "RemoteFileError", "Transport", "TransportError", "WORKDIR",
           "WORKDIR_TEMPLATE", "shell_command", "make_temp_dir", "remove_tree"]
