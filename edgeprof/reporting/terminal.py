"""The terminal: everything edgeprof prints there is data.

Names, errors, board output and probed facts come from users, files and boards. Printed through rich's
default console, `[/x]` in a model name crashes the print and `[postgres]` in a hint vanishes (rich reads
both as markup), and an escape sequence in a board's stderr (clear-screen, an OSC 52 clipboard write) reaches
the terminal byte for byte: rich's own control-code stripping (rich.control.strip_control_codes) removes
BEL, BS, VT, FF and CR only, not ESC. So edgeprof's consoles never read markup (styles are given as `style=`
or rich Text parts) and show every other control character as a visible escape (`\\x1b`). JSON output is
written with print(), not here, and keeps the data exact.
"""
from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

# C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F: 8-bit CSI and OSC among them).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """text with its control characters shown as escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A Text from plain strings and (string, style) pairs; every string is data."""
    return Text.assemble(*(printable(p) if isinstance(p, str) else (printable(p[0]), p[1]) for p in parts))


class DataConsole(Console):
    """A rich Console that reads no markup in what it prints and escapes control characters."""

    def __init__(self, **options):
        super().__init__(markup=False, **options)

    def render_str(self, text: str, **options) -> Text:
        options["markup"] = False
        return super().render_str(printable(text), **options)


__all__ = ["DataConsole", "printable", "styled"]
