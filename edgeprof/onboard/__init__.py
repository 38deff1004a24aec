"""Everything edgeprof runs on a board, as real files: shell for the board lease (lease.sh) and the probe
(probe.sh), checked with shellcheck by the tests. The host sends each file's text; nothing here is imported on
the host as a library."""
from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def source(name: str) -> str:
    """The text of the on-board file `name` (e.g. "lease.sh"), as it is sent to a board."""
    return resources.files(__name__).joinpath(name).read_text()
