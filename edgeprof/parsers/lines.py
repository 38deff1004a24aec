"""The lines of a log, read in bounded memory, whatever the log holds.

Every parser reads its input through `Lines`, from a str, a binary file (read in 1 MiB chunks and decoded as
UTF-8 a block of whole lines at a time) or any iterable of lines. Line ends are ``\\n``, ``\\r\\n`` and a
lone ``\\r`` (old Mac files; a terminal's carriage return); a UTF-8 byte-order mark at the start (what
Windows Notepad writes) is dropped.

A line longer than `MAX_LINE_CHARS` is not read: it becomes an empty line (so line numbers still count it)
and is counted in `Lines.skipped`. No tool edgeprof parses prints lines anywhere near that long (the longest
real lines in tests/parsers/logs are about 1 KB: Caffe's "Unknown layer type" list, a tegrastats line of a
Thor), while parsing a line is the cost that can grow with its length; the cap bounds both time and memory
per line, and memory for the whole read is one chunk plus one capped line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

MAX_LINE_CHARS = 64 * 1024
_CHUNK = 1 << 20
# A capped line is at most 4 bytes per character in UTF-8: a longer run without a newline is over the cap.
_MAX_LINE_BYTES = 4 * MAX_LINE_CHARS
_BOM = "\ufeff"


class Lines:
    """An iterator over the lines of `source`, without their line ends; see the module text.

    `name` (a file name) goes into the ValueError raised for bytes that are not UTF-8, with the line number.
    Lines are made a block (about 1 MiB of whole lines) at a time; `select` hands a parser only the lines it
    can use, passing over the others inside those blocks without a Python step per line.
    """

    def __init__(self, source: str | bytes | BinaryIO | Iterable[str], name: str = "<text>") -> None:
        self.name = name
        self.skipped = 0
        if isinstance(source, str):
            self._blocks = self._from_text(source)
        elif isinstance(source, (bytes, bytearray)):
            self._blocks = self._from_text(decode(bytes(source), name))
        elif hasattr(source, "read"):
            self._blocks = self._from_file(source)
        else:
            self._blocks = self._from_iterable(source)

    def __iter__(self) -> Iterator[str]:
        for block in self._blocks:
            yield from block.split("\n")

    def select(self, keywords: tuple[str, ...]) -> Iterator[tuple[int, str, bool]]:
        """(number, line, passed) for every line that contains one of `keywords`, in order. A keyword that
        starts with "\\n" matches at the start of a line only. `passed` says whether a line that is not blank
        was passed over since the previous line given (or since the start)."""
        number = 0  # lines before the current block
        passed = False
        for block in self._blocks:
            starts = set()
            for keyword in keywords:
                at_start = keyword.startswith("\n")
                if at_start and block.startswith(keyword[1:]):
                    starts.add(0)
                found = block.find(keyword)
                while found >= 0:
                    starts.add(found + 1 if at_start else block.rfind("\n", 0, found) + 1)
                    end = block.find("\n", found + 1)
                    found = block.find(keyword, end) if end >= 0 else -1
            counted = previous_end = 0
            for start in sorted(starts):
                number += block.count("\n", counted, start)
                counted = start
                end = block.find("\n", start)
                end = len(block) if end < 0 else end
                passed = passed or not _blank(block, previous_end, start)
                yield number + 1, block[start:end], passed
                passed, previous_end = False, end
            passed = passed or not _blank(block, previous_end, len(block))
            number += block.count("\n", counted) + 1

    def _block(self, block: str) -> str:
        """A block of whole lines (no final line end) with "\\n" line ends and over-long lines emptied."""
        if "\r" in block:
            # A block ends where a line does: a "\r" there is the first half of "\r\n", or a last line end.
            block = block.removesuffix("\r").replace("\r\n", "\n").replace("\r", "\n")
        if len(block) > MAX_LINE_CHARS:
            lines = block.split("\n")
            if max(map(len, lines)) > MAX_LINE_CHARS:
                self.skipped += sum(len(line) > MAX_LINE_CHARS for line in lines)
                block = "\n".join("" if len(line) > MAX_LINE_CHARS else line for line in lines)
        return block

    def _from_text(self, text: str) -> Iterator[str]:
        start = 1 if text.startswith(_BOM) else 0
        end = len(text)
        while start < end:
            # Whole lines of up to one chunk at a time, so that no copy of the text is made.
            stop = text.rfind("\n", start, start + _CHUNK)
            if stop < 0 and end - start > _CHUNK:
                # No line end within a chunk: this line is over the cap; skip it without copying it.
                stop = text.find("\n", start)
                stop = end if stop < 0 else stop
                self.skipped += 1
                yield ""
            else:
                stop = end if stop < 0 else stop
                yield self._block(text[start:stop])
            start = stop + 1

    def _from_file(self, file: BinaryIO) -> Iterator[str]:
        pending = b""  # the start of a line whose end has not been read yet
        skipping = False  # inside an over-long line: drop bytes up to its end
        number = 0  # lines made so far
        first = True
        while chunk := file.read(_CHUNK):
            if first:
                chunk, first = chunk.removeprefix(_BOM.encode()), False
            if skipping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                skipping, chunk = False, chunk[newline + 1:]
                self.skipped += 1
                number += 1
                yield ""
            last = chunk.rfind(b"\n")
            if last < 0:
                pending += chunk
                if len(pending) > _MAX_LINE_BYTES:
                    pending, skipping = b"", True
                continue
            raw, pending = pending + chunk[:last], chunk[last + 1:]
            block = self._block(decode(raw, self.name, first_line=number + 1))
            number += block.count("\n") + 1
            yield block
            if len(pending) > _MAX_LINE_BYTES:
                pending, skipping = b"", True
        if skipping:
            self.skipped += 1
            yield ""
        elif pending:
            yield self._block(decode(pending, self.name, first_line=number + 1))

    def _from_iterable(self, lines: Iterable[str]) -> Iterator[str]:
        first = True
        for line in lines:
            if first:
                line, first = line.removeprefix(_BOM), False
            # A text file yields its lines with their line end; a list of lines may have none.
            yield self._block(line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line)


def lines_of(source: str | Iterable[str]) -> Lines:
    """`source` as `Lines` (itself when it already is)."""
    return source if isinstance(source, Lines) else Lines(source)


def _blank(block: str, start: int, end: int) -> bool:
    """Whether block[start:end] holds only line ends and white space."""
    return start >= end or block[start:end].isspace()


def decode(data: bytes, name: str, first_line: int = 1) -> str:
    """UTF-8 text, or a ValueError naming the first undecodable line (`data` starting at line `first_line`)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + data.count(b"\n", 0, e.start)
        raise ValueError(f"{name}:{line}: not UTF-8 text (byte {data[e.start]:#04x}); a log is read as UTF-8") \
            from None
