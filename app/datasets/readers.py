"""Streaming readers: yield one source record at a time, with its line or record number.

Memory stays flat in the file's size: JSON lists are parsed incrementally (ijson), JSONL and CSV
line by line, Parquet batch by batch. A record that cannot be read is yielded as a RecordError
so that the importer can report it with its number and go on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from app.datasets.records import RecordError

BOM = b"\xef\xbb\xbf"
CONTAINERS = ("json", "jsonl", "csv", "parquet")


@dataclass(slots=True)
class SourceRecord:
    """One record as read, or the reason it could not be read."""

    number: int
    value: Any = None
    error: RecordError | None = None


class FileError(ValueError):
    """The file as a whole cannot be read (empty, not JSON, unknown container)."""


def detect_container(path: Path) -> str:
    """json (a list), jsonl, csv or parquet, from the extension and the first byte."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(4096)
        while head and not head.lstrip(b" \t\r\n").removeprefix(BOM).lstrip(b" \t\r\n"):
            more = fh.read(65536)
            if not more:
                break
            head += more
    first = head.removeprefix(BOM).lstrip(b" \t\r\n")[:1]
    if not first:
        raise FileError(f"{path.name} is empty: there are no records to import")
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    raise FileError(
        f"{path.name} does not look like JSON, JSONL, CSV or Parquet "
        f"(it starts with {first!r}); name the format with --format"
    )


class _Progress(io.RawIOBase):
    """A binary file that remembers how many bytes were read, for a progress bar."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def _skip_bom(fh: io.BufferedReader[Any]) -> None:
    if fh.peek(3)[:3] == BOM:
        fh.read(3)


def read_json_list(fh: io.BufferedReader[Any]) -> Iterator[SourceRecord]:
    """Records of a JSON list, parsed incrementally."""
    _skip_bom(fh)
    number = 0
    try:
        for number, value in enumerate(ijson.items(fh, "item", use_float=True), 1):
            yield SourceRecord(number, value)
    except UnicodeDecodeError:
        yield SourceRecord(number + 1, error=RecordError("the text is not valid UTF-8"))
        return
    except ijson.JSONError as exc:
        yield SourceRecord(number + 1, error=RecordError(_ijson_reason(exc)))
        return
    if number == 0:
        raise FileError("the JSON list is empty: there are no records to import")


def _ijson_reason(exc: Exception) -> str:
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text).strip()
    if "utf8" in text.lower().replace("-", ""):
        return "the text is not valid UTF-8"
    if isinstance(exc, ijson.IncompleteJSONError) and "premature eof" in text.lower():
        return "malformed JSON: the file ends in the middle of this record (truncated)"
    first_line = text.splitlines()[0] if text else "malformed JSON"
    return f"malformed JSON: {first_line}"


def read_jsonl(fh: io.BufferedReader[Any], max_chars: int) -> Iterator[SourceRecord]:
    """Records of a JSON-lines file, numbered by line."""
    _skip_bom(fh)
    seen = 0
    for number, line in enumerate(fh, 1):
        if not line.strip():
            continue
        seen += 1
        if len(line) > max_chars:
            yield SourceRecord(number, error=_too_large(len(line), max_chars))
            continue
        try:
            yield SourceRecord(number, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield SourceRecord(number, error=RecordError(_json_reason(exc, line)))
    if seen == 0:
        raise FileError("the file has no records to import")


def _json_reason(exc: orjson.JSONDecodeError, line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "the text is not valid UTF-8"
    if not line.rstrip().endswith(b"}"):
        return "the line ends in the middle of a record (truncated JSON)"
    return f"malformed JSON: {exc.msg} at column {exc.colno}"


def _too_large(size: int, max_chars: int) -> RecordError:
    return RecordError(
        f"the record is {size:,} characters, over the limit of {max_chars:,} "
        "(SIFT_IMPORT_MAX_RECORD_CHARS)"
    )


class _BadLine(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _decoded_lines(fh: IO[bytes]) -> Iterator[str]:
    """Lines of a file decoded one at a time, so a bad byte is pinned to its line."""
    for line_number, raw in enumerate(fh, 1):
        if line_number == 1:
            raw = raw.removeprefix(BOM)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadLine(line_number) from exc


def read_csv(path: Path, max_chars: int) -> Iterator[SourceRecord]:
    """Rows of a CSV file with a header row, numbered by row."""
    csv.field_size_limit(max_chars)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open("rb") as fh:
        reader = csv.DictReader(_decoded_lines(fh), delimiter=delimiter)
        number = 0
        try:
            for number, row in enumerate(reader, 1):
                yield SourceRecord(number, {k: v for k, v in row.items() if k is not None})
        except _BadLine as exc:
            reason = f"the text is not valid UTF-8 (line {exc.line} of the file)"
            yield SourceRecord(number + 1, error=RecordError(reason))
            return
        except csv.Error as exc:
            yield SourceRecord(number + 1, error=RecordError(f"malformed CSV: {exc}"))
            return
        if reader.fieldnames is None:
            raise FileError(f"{path.name} is empty: there are no records to import")


def read_parquet(path: Path) -> Iterator[SourceRecord]:
    """Rows of a Parquet file, read batch by batch."""
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            number += 1
            if isinstance(row.get("meta"), str):
                row["meta"] = orjson.loads(row["meta"])
            yield SourceRecord(number, row)
    if number == 0:
        raise FileError(f"{path.name} has no rows to import")


class RecordStream:
    """The records of a file and how far through it the reading is."""

    def __init__(self, path: Path, container: str, max_chars: int) -> None:
        self.path = path
        self.container = container
        self.max_chars = max_chars
        self.total_bytes = path.stat().st_size
        self._counter: _Progress | None = None

    @property
    def bytes_read(self) -> int:
        """Bytes consumed so far (the whole file once a non-streaming reader is done)."""
        return self._counter.position if self._counter else 0

    def __iter__(self) -> Iterator[SourceRecord]:
        if self.container == "csv":
            yield from read_csv(self.path, self.max_chars)
            return
        if self.container == "parquet":
            yield from read_parquet(self.path)
            return
        with self.path.open("rb", buffering=0) as raw:
            self._counter = _Progress(raw)
            fh = io.BufferedReader(self._counter, buffer_size=1 << 20)
            if self.container == "json":
                yield from read_json_list(fh)
            else:
                yield from read_jsonl(fh, self.max_chars)
