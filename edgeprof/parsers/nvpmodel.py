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
- a copy may lose the id line, in which case ``mode_id`` is None.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# "NV Power Mode: MAXN", possibly after "NVPM VERB: Current mode: " (verbose output).
_MODE = re.compile(r"NV Power Mode:\s*(?P<name>\S.*?)\s*$")
_ID = re.compile(r"^\s*(\d+)\s*$")


@dataclass
class PowerMode:
    mode_name: str | None
    mode_id: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def parse(text: str) -> PowerMode:
    """Return the power mode name and id; None for what the text does not contain.

    The id is the first non-blank line after the mode line when that line is a bare number; when
    it is anything else (an NVPM line, the end of a copy that lost the id) the id is None.
    """
    lines = text.splitlines()
    for index, line in enumerate(lines):
        found = _MODE.search(line)
        if not found:
            continue
        mode_id = None
        for following in lines[index + 1:]:
            if not following.strip():
                continue
            id_match = _ID.match(following)
            mode_id = int(id_match.group(1)) if id_match else None
            break
        return PowerMode(found.group("name"), mode_id)
    return PowerMode(None, None)
