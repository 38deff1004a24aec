"""Parse what ``nvpmodel -q`` (and ``nvpmodel -q --verbose``) prints on a Jetson.

The answer is the mode name on a line of its own and the mode id on the next one::

    NV Power Mode: MAXN
    0

Around those two lines the real tool prints other things, all seen in real output
(tests/parsers/logs/nvpmodel/SOURCES.md lists where each came from):

- ``--verbose`` prefixes the mode line (``NVPM VERB: Current mode: NV Power Mode: MAXP_CORE_ARM``)
  and adds ``NVPM VERB: PARAM ...`` lines after the id;
- a non-root run still prints the mode and id, then ``NVPM ERROR: Error opening ...: 13`` lines
  for the sysfs files it may not read;
- Xavier and Nano releases print ``NV Fan Mode:quiet`` or ``NVPM WARN: fan mode is not set!``
  before the mode line;
- a copy may lose the id line, in which case ``mode_id`` is None;
- pastes: the prompt and ``nvpmodel -q`` (or the snap's ``snap run nvpmodel.nvpmodel --query``) before the
  output, ``nvpmodel -m N`` and ``-q`` again (one report per mode line; the last is the record), a ``# ...``
  note the poster appended to the mode line; a failed ``nvpmodel -m N`` (``NVPM ERROR`` lines only) is no report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from .lines import lines_of
from .paste import Invocation, command_pattern, is_command

# "NV Power Mode: MAXN", possibly after "NVPM VERB: Current mode: " (verbose output). The name is the rest
# of the line without its trailing spaces (stripped after the match: a lazy name before "\s*$" is
# quadratic on a long run of spaces).
_MODE = re.compile(r"NV Power Mode:\s*(?P<name>\S.*)")
# Mode ids are small; a longer run of digits is not an id (and int() refuses strings past 4300 digits).
_ID = re.compile(r"\d{1,9}")
# "nvpmodel.nvpmodel" is the name Canonical's L4T tool snap gives it (paste._LAUNCH cites the snap).
_COMMAND = command_pattern(r"nvpmodel\.nvpmodel|nvpmodel")


@dataclass
class PowerMode:
    mode_name: str | None
    mode_id: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _mode_name(text: str) -> str:
    """The mode name of "MAXN", "MAXN   " or "MAXN # a note the poster added" (seen in pasted notes)."""
    return text.split(" #", 1)[0].rstrip()


def _format(verbose: bool, fan: bool) -> str:
    words = "nvpmodel -q --verbose" if verbose else "nvpmodel -q"
    return words + (", with the fan mode (Xavier, Nano)" if fan else "")


def invocations(source: str | Iterable[str]) -> Iterator[Invocation]:
    """Every mode report in `source` (text or lines), in order: one per "NV Power Mode:" line.

    The id is the first non-blank line after the mode line when that line is a bare number; when
    it is anything else (an NVPM line, the end of a copy that lost the id) the id is None. A pasted
    command line (``$ sudo nvpmodel -q``) goes with the report that follows it; one that printed no mode
    (``nvpmodel -m 0``) is no report.
    """
    count = 0
    command, command_line = None, 0
    verbose = fan = False
    pending: tuple[int, str] | None = None  # (line, name) of a mode line waiting for its id
    for number, line in enumerate(lines_of(source), 1):
        if pending and line.strip():
            found_id = _ID.fullmatch(line.strip())
            count += 1
            yield Invocation(count, command_line or pending[0], number if found_id else pending[0], command,
                             _format(verbose, fan), PowerMode(pending[1], int(found_id.group()) if found_id else None))
            pending, command, command_line, verbose, fan = None, None, 0, False, False
            if found_id:
                continue
        if "NV" not in line and "nvpmodel" not in line:
            continue  # the lines that matter all hold one or the other
        if "nvpmodel" in line and is_command(_COMMAND, line):
            command, command_line, verbose, fan = line.strip(), number, False, False
        elif found := _MODE.search(line):
            verbose = verbose or line.lstrip().startswith("NVPM VERB")
            pending = (number, _mode_name(found.group("name")))
        elif line.startswith("NVPM VERB"):
            verbose = True
        elif line.startswith("NV Fan Mode") or line.startswith("NVPM WARN: fan mode"):
            fan = True
    if pending:
        yield Invocation(count + 1, command_line or pending[0], pending[0], command, _format(verbose, fan),
                         PowerMode(pending[1], None))


def choose(found: Iterable[Invocation]) -> Invocation | None:
    """The invocation `parse` reports: the last one."""
    last = None
    for last in found:
        pass
    return last


def parse(source: str | Iterable[str]) -> PowerMode:
    """The power mode name and id of the last report in `source`; None for what it does not contain."""
    chosen = choose(invocations(source))
    return chosen.record if chosen else PowerMode(None, None)
