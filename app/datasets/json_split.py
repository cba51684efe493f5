"""The records of a JSON list as raw bytes, one at a time, without parsing them: a record
over the size limit is measured and skipped as it streams by, never held whole.

Only the list's structure is followed (brackets, braces, strings and their escapes); each
record's bytes are then parsed on their own (orjson), so a malformed record is reported by its
number and the records after it are still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

CHUNK = 1 << 20
_SPACE = re.compile(rb"[ \t\r\n]*")
# Everything up to the next bracket or brace inside a record: other bytes and whole strings
# (a string's brackets do not count), in one match; it stops at a string cut off by the end of
# what has been read. The two alternatives start differently, so it never backtracks.
_RUN = re.compile(rb'(?:[^\[\]{}"]+|"[^"\\]*(?:\\.[^"\\]*)*")*', re.S)
# The rest of a string up to (not including) its closing quote or a backslash at the very end
# of what has been read; the unrolled form runs without backtracking.
_STRING_BODY = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.S)
# A number, true, false or null at the top level ends at the next comma, bracket or space.
_SCALAR = re.compile(rb"[^,\]\s]*")


TRUNCATED = "the file ends in the middle of this record (truncated)"


class SplitError(ValueError):
    """The list itself is broken: records after this point cannot be found."""


class TooLarge:
    """A record that was skipped: its size in bytes."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class JsonListSplitter:
    """Yields each record of a JSON list as bytes, or TooLarge for one over `max_bytes`."""

    def __init__(self, fh: IO[bytes], max_bytes: int) -> None:
        self.fh = fh
        self.max_bytes = max_bytes
        self.buf = b""
        self.pos = 0  # the next byte to look at
        self.mark = 0  # where the bytes kept of the current record start
        self.dropped = 0  # bytes of the current record let go (it is over the limit)
        self.eof = False

    def __iter__(self) -> Iterator[bytes | TooLarge]:
        if self._next_byte() != b"[":
            raise SplitError("malformed JSON: the file is not a JSON list")
        self.pos += 1
        first = True
        while (byte := self._next_byte()) != b"]":
            if not first:
                if byte != b",":
                    raise SplitError(
                        TRUNCATED if byte == b"" else "malformed JSON: expected ',' or ']'"
                    )
                self.pos += 1
                byte = self._next_byte()
            if byte == b"":
                raise SplitError(TRUNCATED)
            first = False
            yield self._record(byte)

    def _refill(self) -> bool:
        """Read on, keeping the current record's bytes unless it is already over the limit;
        False at the end of the file."""
        if self.eof:
            return False
        if self.dropped or self.pos - self.mark > self.max_bytes:
            self.dropped += self.pos - self.mark
            self.mark = self.pos
        data = self.fh.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.mark :] + data
        self.pos -= self.mark
        self.mark = 0
        return True

    def _next_byte(self) -> bytes:
        """The next byte after white space between records (b"" at the end), not consumed."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            self.mark = self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos : self.pos + 1]
            if not self._refill():
                return b""

    def _record(self, first: bytes) -> bytes | TooLarge:
        """The record that starts at the current position with the byte `first`."""
        self.mark, self.dropped = self.pos, 0
        if first not in (b"[", b"{", b'"'):
            self._scalar()
            return self._take()
        if first == b'"':
            self.pos += 1
            self._string()
            return self._take()
        depth = 0
        while True:
            self.pos = _RUN.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            char = self.buf[self.pos : self.pos + 1]
            if char == b"":
                if not self._refill():
                    raise SplitError(TRUNCATED)
                continue
            self.pos += 1
            if char == b'"':  # a string the read cut off
                self._string()
                continue
            depth += 1 if char in (b"[", b"{") else -1
            if depth == 0:
                return self._take()

    def _string(self) -> None:
        """Move past the rest of a string and its closing quote."""
        while True:
            self.pos = _STRING_BODY.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.buf[self.pos : self.pos + 1] == b'"':
                self.pos += 1
                return
            # The read ended inside the string, or on a backslash whose escape is still to come.
            if not self._refill():
                raise SplitError(TRUNCATED)

    def _scalar(self) -> None:
        """Move past a number, true, false or null."""
        while True:
            self.pos = _SCALAR.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self._refill():
                return

    def _take(self) -> bytes | TooLarge:
        size = self.dropped + self.pos - self.mark
        record = TooLarge(size) if size > self.max_bytes else self.buf[self.mark : self.pos]
        self.mark, self.dropped = self.pos, 0
        return record
