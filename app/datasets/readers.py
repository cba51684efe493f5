"""Streaming readers: yield one source record at a time, with its line or record number.

Memory stays flat in the file's size, and no record over the limit is ever held whole: JSON
lists are split record by record before parsing, JSONL lines are read up to the limit, CSV
fields are capped, Parquet is read in batches sized to the limit. A record that cannot be read is yielded as a RecordError
so that the importer can report it with its number and go on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from app.datasets.json_split import CHUNK, JsonListSplitter, SplitError, TooLarge
from app.datasets.records import RecordError

BOM = b"\xef\xbb\xbf"
CONTAINERS = ("json", "jsonl", "csv", "parquet")
# Parquet is read this many rows at a time (its metadata cannot say how large a row is once
# decompressed and decoded: a dictionary-encoded column looks tiny), and converted to Python
# a whole batch at once only when the batch holds at most PARQUET_BATCH_BYTES.
PARQUET_BATCH_ROWS = 64
PARQUET_BATCH_BYTES = 16 << 20


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


def read_json_list(fh: io.BufferedReader[Any], max_chars: int) -> Iterator[SourceRecord]:
    """Records of a JSON list, split without parsing (`json_split`) so that a record over the
    limit is measured and skipped without being held whole, then each parsed on its own."""
    _skip_bom(fh)
    number = 0
    try:
        for number, raw in enumerate(JsonListSplitter(fh, max_chars), 1):
            if isinstance(raw, TooLarge):
                yield SourceRecord(number, error=_too_large(raw.size, max_chars))
                continue
            try:
                yield SourceRecord(number, orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                yield SourceRecord(number, error=RecordError(_record_reason(exc, raw)))
    except SplitError as exc:
        reason = str(exc) if str(exc).startswith("malformed") else f"malformed JSON: {exc}"
        yield SourceRecord(number + 1, error=RecordError(reason))
        return
    if number == 0:
        raise FileError("the JSON list is empty: there are no records to import")


def _record_reason(exc: orjson.JSONDecodeError, raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the text is not valid UTF-8"
    return f"malformed JSON: {exc.msg}"


def read_jsonl(fh: io.BufferedReader[Any], max_chars: int) -> Iterator[SourceRecord]:
    """Records of a JSON-lines file, numbered by line."""
    _skip_bom(fh)
    seen = 0
    for number, (line, size) in enumerate(_bounded_lines(fh, max_chars), 1):
        if line is None:
            seen += 1
            yield SourceRecord(number, error=_too_large(size, max_chars))
            continue
        if not line.strip():
            continue
        seen += 1
        try:
            yield SourceRecord(number, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield SourceRecord(number, error=RecordError(_json_reason(exc, line)))
    if seen == 0:
        raise FileError("the file has no records to import")


def _bounded_lines(
    fh: io.BufferedReader[Any], max_bytes: int
) -> Iterator[tuple[bytes | None, int]]:
    """Each line with its size, or (None, size) for a line over `max_bytes`, whose rest is
    read past in pieces instead of being held."""
    while line := fh.readline(max_bytes + 1):
        if len(line) <= max_bytes:
            yield line, len(line)
            continue
        size = len(line)
        while not line.endswith(b"\n") and (line := fh.readline(CHUNK)):
            size += len(line)
        yield None, size


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


def read_parquet(path: Path, max_chars: int) -> Iterator[SourceRecord]:
    """Rows of a Parquet file, a few at a time however small the file is compressed; a row
    over the limit is reported, not converted."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    number = 0
    for group in range(parquet.metadata.num_row_groups):
        stored = parquet.metadata.row_group(group)
        if stored.num_rows == 1 and stored.total_byte_size > max_chars:
            number += 1  # a one-row group over the limit is never even decompressed
            yield SourceRecord(number, error=_too_large(stored.total_byte_size, max_chars))
            continue
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group]):
            for offset, row in _parquet_rows(batch, max_chars):
                if isinstance(row, RecordError):
                    yield SourceRecord(number + offset + 1, error=row)
                    continue
                if isinstance(row.get("meta"), str):
                    row["meta"] = orjson.loads(row["meta"])
                yield SourceRecord(number + offset + 1, row)
            number += batch.num_rows
    if number == 0:
        raise FileError(f"{path.name} has no rows to import")


def _parquet_rows(batch: Any, max_chars: int) -> Iterator[tuple[int, Any]]:
    """(offset, row as a dict or the RecordError of a row over the limit) of a record batch."""
    sizes = [batch.slice(i, 1).nbytes for i in range(batch.num_rows)]
    if max(sizes, default=0) <= max_chars and sum(sizes) <= PARQUET_BATCH_BYTES:
        yield from enumerate(batch.to_pylist())
        return
    for i, size in enumerate(sizes):
        yield (
            i,
            _too_large(size, max_chars) if size > max_chars else batch.slice(i, 1).to_pylist()[0],
        )


class RecordStream:
    """The records of a file and how far through it the reading is."""

    def __init__(
        self, path: Path, container: str, max_chars: int, split: str | None = None
    ) -> None:
        self.path = path
        self.container = container
        self.max_chars = max_chars
        self.split = split
        self.total_bytes = (
            sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        self._counter: _Progress | None = None
        self._rows = (0, 0)  # Hugging Face datasets: (rows read, rows in all)

    @property
    def bytes_read(self) -> int:
        """Bytes consumed so far (the whole file once a non-streaming reader is done); for a
        Hugging Face dataset, the share of its rows read."""
        if self.container == "hf":
            done, total = self._rows
            return self.total_bytes * done // total if total else 0
        return self._counter.position if self._counter else 0

    def __iter__(self) -> Iterator[SourceRecord]:
        if self.container == "hf":
            from app.datasets.hf import rows

            for number, total, row in rows(self.path, self.split):
                self._rows = (number, total)
                yield SourceRecord(number, row)
            if self._rows[1] == 0:
                raise FileError(f"{self.path.name} has no rows to import")
            return
        if self.container == "csv":
            yield from read_csv(self.path, self.max_chars)
            return
        if self.container == "parquet":
            yield from read_parquet(self.path, self.max_chars)
            return
        with self.path.open("rb", buffering=0) as raw:
            self._counter = _Progress(raw)
            fh = io.BufferedReader(self._counter, buffer_size=1 << 20)
            if self.container == "json":
                yield from read_json_list(fh, self.max_chars)
            else:
                yield from read_jsonl(fh, self.max_chars)
