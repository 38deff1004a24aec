"""What users paste around a tool's output: shell prompts, the echoed command line, several runs in a row.

A parser splits its input into invocations (one run of the tool each) at the command lines it finds and at
signs in the output itself (a second header, a figure printed twice), and reports each as an `Invocation`:
the record, the lines it came from, the command line when one was pasted, and the output format recognized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# A prompt is whatever ends in $, #, %, > or ❯ (bash, root, zsh, PowerShell "PS C:\\>", cmd.exe "C:\\...>",
# starship), optionally followed by oh-my-zsh's "~ " style working folder, or the "+ " that bash's set -x
# writes before each command it runs; a bare command has none. It is
# matched lazily and at most 160 characters long, so the first such character ends it and the work per line
# is bounded.
_PROMPT = r"(?:\++\s+|.{0,160}?[$#%>❯➜]\s*(?:~\S*\s+)?)?"
# "sudo -E", "snap run" (Canonical's L4T tool snap runs "snap run nvpmodel.jetson-clocks-show":
# https://github.com/canonical/tegra-snap-samples/blob/2f66bde31c5b3e267a183920bc624cd8133ad299/nvpmodel/README.md),
# "env", "GLOG_logtostderr=1", "time", then a path ("./", "/usr/bin/", "C:\\...\\"): all optional.
_LAUNCH = (r"(?:sudo\s+(?:-\S+\s+)*)?(?:snap\s+run\s+)?(?:env\s+)?(?:[A-Za-z_]\w*=\S*\s+)*(?:time\s+)?"
           r"(?:[\w.~:\\/-]*[/\\])?")


# A command line's prompt, launcher and program name fit in its first 512 characters; looking no further
# keeps the work bounded whatever the rest of the line holds.
_COMMAND_SPAN = 512


def command_pattern(tools: str, arguments: str = "") -> re.Pattern:
    """A line that runs one of `tools` (a regex alternation of program names), then `arguments`.

    The program name must stand alone (followed by a space or the end, after an optional .exe/.sh/.bin), so
    "/etc/nvpmodel.conf" or "caffe.cpp:408]" in a tool's own output is not a command.
    """
    return re.compile(rf"\s*{_PROMPT}{_LAUNCH}(?P<tool>{tools})(?:\.exe|\.sh|\.bin)?(?=\s|$){arguments}")


def is_command(pattern: re.Pattern, line: str) -> bool:
    """Whether `line` is a command line of `pattern` (from command_pattern)."""
    return pattern.match(line, 0, _COMMAND_SPAN) is not None


# A shell prompt line, whatever it runs or if it runs nothing: "user@host:~/dir$ ...", "(venv) user@host:~# ...",
# "[user@host dir]$ ...", "21:53 $ ...", "$ ...", "# ...", "PS C:\\dir> ...", "C:\\dir>...".
_ANY_PROMPT = re.compile(
    r"\s*(?:\(\S+\)\s*)?(?:\[?[\w.-]+@[\w.-]+[:\s][^$#%>\n]{0,120}?\]?[$#%]|\d\d:\d\d\s+[$#%]|[$#%❯]"
    r"|PS [A-Za-z]:\\[^>]{0,120}>|[A-Za-z]:\\[^>]{0,120}>)(?:\s|$)")


def is_prompt(line: str) -> bool:
    """Whether `line` is a shell prompt, with or without a command after it."""
    return _ANY_PROMPT.match(line, 0, _COMMAND_SPAN) is not None


@dataclass
class Invocation:
    """One run of a tool found in a text."""

    number: int  # 1-based, in the order of the text
    first_line: int
    last_line: int
    command: str | None  # the pasted command line (prompt included), if any
    format: str  # the output format and version family recognized, in words
    record: Any  # the parser's record (a dataclass with to_dict())

    def to_dict(self) -> dict:
        return {"invocation": self.number, "lines": [self.first_line, self.last_line], "command": self.command,
                "format": self.format, "record": self.record.to_dict()}
