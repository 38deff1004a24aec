"""The range of every setting, in one place for the CLI, plans and inventories, and the typed checks that
turn a TOML value into a setting or a clear error naming where it came from.

TOML gives booleans where a number is expected (`iterations = true`; Python's bool is an int) and strings
where a list is (`tags = "site=lab2"`, which would otherwise become a list of characters): both are refused.
"""
from __future__ import annotations

from typing import Sequence

from .errors import InputError

BATCH = (1, 65536)
ITERATIONS = (1, 10_000_000)
LEASE_S = (5, 86400)           # the board restores itself this long after the host stops renewing
WAIT_S = (0.0, 7 * 86400.0)
COOLDOWN_S = (0.0, 3600.0)
SEED = (0, 2**63 - 1)
PORT = (1, 65535)
RESULT_ID = (1, 2**63 - 1)     # SQLite and PostgreSQL bigint
REPEAT = (1, 100)
DURATION_S = (1.0, 86400.0)    # --duration: a soak of up to a day
WINDOW_S = (0.5, 3600.0)
START_BELOW_C = (0.0, 150.0)   # --start-below: degrees C, below any chip's shutdown point
JOBS = (1, 64)                 # concurrent processes per GPU (or CPU) of one item
IMAGES = (1, 100_000_000)      # --images: end to end over a dataset (seed 003: 206,268 images)
PREFETCH = (0, 4096)           # --prefetch: images decoded ahead of the net, held in the board's memory


def _fail(error: type[InputError], where: str, key: str, wanted: str, value) -> InputError:
    return error(f"{where}: `{key}` must be {wanted}, got {value!r}")


def integer(where: str, key: str, value, bounds: tuple[int, int], error: type[InputError] = InputError) -> int:
    lo, hi = bounds
    if type(value) is not int or not lo <= value <= hi:
        raise _fail(error, where, key, f"an integer from {lo} to {hi}", value)
    return value


def number(where: str, key: str, value, bounds: tuple[float, float], error: type[InputError] = InputError) -> float:
    lo, hi = bounds
    if type(value) not in (int, float) or not lo <= value <= hi:
        raise _fail(error, where, key, f"a number from {lo:g} to {hi:g}", value)
    return float(value)


def flag(where: str, key: str, value, error: type[InputError] = InputError) -> bool:
    if type(value) is not bool:
        raise _fail(error, where, key, "true or false", value)
    return value


def text(where: str, key: str, value, error: type[InputError] = InputError,
         choices: Sequence[str] | None = None) -> str:
    if type(value) is not str or not value or (choices is not None and value not in choices):
        raise _fail(error, where, key, f"one of {', '.join(choices)}" if choices else "a non-empty string", value)
    return value


def texts(where: str, key: str, value, error: type[InputError] = InputError,
          choices: Sequence[str] | None = None, may_be_empty: bool = False) -> list[str]:
    """A list of strings (of `choices` when given), non-empty unless may_be_empty."""
    if type(value) is not list or not (value or may_be_empty):
        raise _fail(error, where, key, "a list of strings" if may_be_empty else "a non-empty list of strings", value)
    return [text(where, key, v, error, choices) for v in value]


def integers(where: str, key: str, value, bounds: tuple[int, int], error: type[InputError] = InputError) -> list[int]:
    if type(value) is not list or not value:
        raise _fail(error, where, key, f"a non-empty list of integers from {bounds[0]} to {bounds[1]}", value)
    return [integer(where, key, v, bounds, error) for v in value]
