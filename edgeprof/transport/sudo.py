"""Running commands as root on a board through sudo.

A root login runs them itself (it needs no sudo, and a minimal image may have none). Passwordless sudo is
used silently. Otherwise the password comes from an environment variable the user names, or is asked once at
the terminal (not echoed); it lives only in this process's memory and reaches the board on sudo's standard
input (`sudo -S`), never on a command line, in a file or in a log.
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

# How a board's login gets root, as its probe answers (edgeprof/onboard/probe.sh): it is root; sudo asks no
# password; sudo asks one; there is no sudo.
ROOT, PASSWORDLESS, ASKS, MISSING = "root", "passwordless", "asks", "missing"
ROOT_BY = (ROOT, PASSWORDLESS, ASKS, MISSING)


class Sudo:
    def __init__(self, transport: Transport, *, password_env: str | None = None,
                 ask: Callable[[str], str] = getpass.getpass, root_by: str | None = None):
        """root_by: one of ROOT_BY, as the board's probe found just now (it asks where sudo will be used:
        edgeprof.board.probe, which tells all four apart); None: check() runs `sudo -n true` itself, which tells
        only PASSWORDLESS from ASKS."""
        self.transport = transport
        self.password_env = password_env
        self._ask = ask
        self._root_by = root_by
        self._password: str | None = None
        self._checked = False

    def check(self) -> None:
        """Make sure sudo works before anything on the board is changed; raises SudoDenied."""
        if self._checked:
            return
        if self._root_by is None:
            self._root_by = PASSWORDLESS if self.transport.run(["sudo", "-n", "true"], timeout=30).ok else ASKS
        if self._root_by in (ROOT, PASSWORDLESS):
            self._checked = True
            return
        if self._root_by == MISSING:
            raise SudoDenied(f"{self.transport.name}: this run needs root there (power mode and clocks) and the "
                             f"board has no sudo. Nothing on the board was changed. Install sudo and let the login "
                             f"user use it, or log in as root (the device's `user`); on a desktop, --clocks leave "
                             f"needs no root.")
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
        if self._root_by == ROOT:
            return self.transport.run(argv, env=env, timeout=timeout)
        # env goes through sudo's own VAR=value arguments: sudo resets the environment otherwise.
        assignments = [f"{k}={v}" for k, v in (env or {}).items()]
        if self._password is None:
            return self.transport.run(["sudo", "-n", *assignments, "--", *argv], timeout=timeout)
        # -k: always read the password, so it never reaches the command's own stdin.
        return self.transport.run(["sudo", "-S", "-k", "-p", "", *assignments, "--", *argv],
                                  stdin=self._password + "\n", timeout=timeout)
