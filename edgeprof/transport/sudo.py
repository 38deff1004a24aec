"""Running commands as root on a board through sudo.

Passwordless sudo is used silently. Otherwise the password comes from an environment variable the user
names, or is asked once at the terminal (not echoed); it lives only in this process's memory and reaches the
board on sudo's standard input (`sudo -S`), never on a command line, in a file or in a log.
"""
from __future__ import annotations

import getpass
import os
import threading
from typing import Callable, Mapping, Sequence

from ..errors import BoardControlError

from . import CommandResult, Transport


class SudoDenied(BoardControlError):
    """sudo refused: wrong password, or the user may not use sudo on the board."""


# Boards of a lab connect in parallel: one password prompt at a time on the terminal.
_PROMPT = threading.Lock()


class Sudo:
    def __init__(self, transport: Transport, *, password_env: str | None = None,
                 ask: Callable[[str], str] = getpass.getpass, passwordless: bool | None = None):
        """passwordless: whether `sudo -n true` succeeded on the board just now (the board's probe runs it
        where sudo will be used: edgeprof.board.probe); None: check() runs it."""
        self.transport = transport
        self.password_env = password_env
        self._ask = ask
        self._passwordless = passwordless
        self._password: str | None = None
        self._checked = False

    def check(self) -> None:
        """Make sure sudo works before anything on the board is changed; raises SudoDenied."""
        if self._checked:
            return
        if self._passwordless is None:
            self._passwordless = self.transport.run(["sudo", "-n", "true"], timeout=30).ok
        if self._passwordless:
            self._checked = True
            return
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise SudoDenied(f"{self.transport.name}: sudo needs a password and ${self.password_env} is not set")
        else:
            try:
                if self._ask is getpass.getpass and not os.isatty(0):
                    raise EOFError  # getpass would read the password from a pipe, echoed
                with _PROMPT:
                    password = self._ask(f"sudo password for {self.transport.name}: ")
            except EOFError:
                raise SudoDenied(f"{self.transport.name}: sudo needs a password and there is no terminal to ask "
                                 f"on; name an environment variable that holds it with --sudo-password-env. "
                                 f"Nothing on the board was changed.") from None
        probe = self.transport.run(["sudo", "-S", "-p", "", "-k", "true"], stdin=password + "\n", timeout=30)
        if not probe.ok:
            reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.exit_status}"
            raise SudoDenied(
                f"{self.transport.name}: sudo refused ({reason}). Nothing on the board was changed. Check the "
                f"password{' in $' + self.password_env if self.password_env else ''}, or that the login user may "
                f"use sudo (or run with --clocks leave).")
        self._password = password
        self._checked = True

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float | None = None) -> CommandResult:
        self.check()
        # env goes through sudo's own VAR=value arguments: sudo resets the environment otherwise.
        assignments = [f"{k}={v}" for k, v in (env or {}).items()]
        if self._password is None:
            return self.transport.run(["sudo", "-n", *assignments, "--", *argv], timeout=timeout)
        # -k: always read the password, so it never reaches the command's own stdin.
        return self.transport.run(["sudo", "-S", "-k", "-p", "", *assignments, "--", *argv],
                                  stdin=self._password + "\n", timeout=timeout)
