"""`edgeprof` command line: a thin layer over the library (edgeprof.session, .storage, .parsers, ...), one
module per command.

Exit status: 0 when every result is ok, 1 when some measurement failed, 2 for bad input or an unreachable
device (nothing measured), 3 under --strict when a result carries a validity flag.
"""
from . import bundle, check, compare, devices, layers, measure, models, parse, report, results, run  # noqa: F401 (each adds its command)
from .common import main

__all__ = ["main"]
