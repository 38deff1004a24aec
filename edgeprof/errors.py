"""One error tree for everything edgeprof raises on purpose; each message says what happened and what to do.

    EdgeprofError
    ├── InputError          a model, prototxt, device, inventory, plan or option that cannot be used
    ├── BoardUnreachable    the connection is gone or cannot be made (transport.TransportError is this)
    ├── BoardControlError   the board refused a change: power mode, clocks, sudo, its lease (busy or unsafe)
    ├── BackendUnavailable  the board or host lacks a backend's tool or package
    ├── RunnerFailed        a board runner gave no result or reported an error
    ├── StoreError          the results database
    └── ReportError         a report or export cannot be written

Only BoardUnreachable ends a sweep (the next item could not reach the board either); a BoardControlError
between items fails that item and the sweep goes on (session.py). Like labgrid's ExecutionError, an error
about a command carries it as fields, so callers and logs get the command, its exit status and the tail of
its stderr without parsing the message.

Exit statuses of the `edgeprof` command (the CLI maps errors through `exit_status`):
0 everything asked for was done; 1 it ran, and some results are failed (they are stored, with the reason);
2 an EdgeprofError stopped the command (the message says which and what to do; usage errors are click's 2
too); 3 with --strict (measure, run, compare): some result carries a validity flag; 130 interrupted (Ctrl-C;
finished results are kept). Every EdgeprofError maps to 2 because scripts have
relied on 2 for "the command could not do its job" since the first release; the class is in the message.
"""
from __future__ import annotations

STDERR_TAIL = 2000  # characters of a failing command's stderr kept on the error
EXIT_FLAGGED = 3


class EdgeprofError(Exception):
    exit_status = 2

    def __init__(self, message: str = "", *, command: str | None = None, command_status: int | None = None,
                 stderr: str | None = None):
        super().__init__(message)
        self.command = command
        self.command_status = command_status
        self.stderr = stderr[-STDERR_TAIL:] if stderr else stderr

    def to_dict(self) -> dict:
        return {"error": str(self), "kind": type(self).__name__, "command": self.command,
                "command_status": self.command_status, "stderr": self.stderr}


class InputError(EdgeprofError, ValueError):
    """A model, prototxt, device, inventory, plan or option that cannot be used as given."""


class BoardUnreachable(EdgeprofError):
    """A board could not be reached, or the connection to it is gone."""


class BoardControlError(EdgeprofError):
    """The board refused a change edgeprof needs (power mode, clocks, sudo, its lease); nothing about the
    connection."""


class BackendUnavailable(EdgeprofError):
    """The board lacks the backend's tool or package; the message says how to install it."""


class RunnerFailed(EdgeprofError):
    """A board runner gave no result (killed, crashed, timed out) or reported an error; the message says which."""


class StoreError(EdgeprofError):
    """The results database cannot be opened, read or written."""


class ReportError(EdgeprofError):
    """A report or export cannot be made."""


def exit_status(error: BaseException) -> int:
    return error.exit_status if isinstance(error, EdgeprofError) else 1


__all__ = ["EdgeprofError", "InputError", "BoardUnreachable", "BoardControlError", "BackendUnavailable",
           "RunnerFailed", "StoreError", "ReportError", "exit_status"]
