"""The `local` transport: the host itself, same contract as SSH, no network."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

from . import CommandResult, CommandTimeout, TransportError, shell_command


class LocalTransport:
    def __init__(self, name: str = "local"):
        self.name = name

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        command = shell_command(argv, env)
        started = time.monotonic()
        try:
            # Own session so that a timeout or Ctrl-C can stop the command and everything it started.
            proc = subprocess.Popen([str(a) for a in argv], env={**os.environ, **(env or {})},
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except FileNotFoundError:
            return CommandResult(command, 127, "", f"{argv[0]}: command not found\n",
                                 time.monotonic() - started)
        try:
            out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.communicate()
            raise CommandTimeout(f"local: `{command}` did not finish within {timeout:g} s (stopped it)")
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        # Shell convention, as the SSH transport reports it: killed by signal N -> 128 + N.
        status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return CommandResult(command, status, out.decode(errors="replace"), err.decode(errors="replace"),
                             time.monotonic() - started)

    def put_bytes(self, path: str, data: bytes) -> None:
        Path(path).write_bytes(data)

    def get_bytes(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as e:
            raise TransportError(f"local: cannot read {path}: {e.strerror}") from None

    def put_text(self, path: str, text: str) -> None:
        self.put_bytes(path, text.encode())

    def get_text(self, path: str) -> str:
        return self.get_bytes(path).decode(errors="replace")

    def close(self) -> None:
        pass
