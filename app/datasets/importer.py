"""Import a file into a dataset: stream, validate every record, write all or nothing.

Everything is written inside the caller's transaction. On PostgreSQL the valid records are
streamed with COPY into a temporary staging table and moved into `examples` with one
INSERT ... ON CONFLICT DO NOTHING, so that re-importing adds nothing; on SQLite they are
inserted in batches with the same conflict rule. If any record is bad and the caller did not
ask to skip bad records, nothing is written: the error names every bad record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from app.core.db import driver_connection
from app.core.errors import InvalidInput
from app.datasets.readers import FileError, RecordStream, detect_container
from app.datasets.records import PARSERS, ExampleDraft, RecordError, detect_format
from app.models import Dataset, ExampleStatus, Origin

FORMATS = ("auto", "alpaca", "sharegpt", "openai", "dolly", "lima", "csv", "parquet", "jsonl")
MAX_REPORTED_ERRORS = 100

# (records read, bytes read, total bytes): called every few thousand records.
ProgressCallback = Callable[[int, int, int], None]

STAGED_COLUMNS = (
    "seq",
    "messages",
    "instruction",
    "input",
    "output",
    "source",
    "category",
    "meta",
    "external_id",
    "content_hash",
    "source_format",
    "source_keys",
)


@dataclass
class ImportSummary:
    """What an import did, for the one-line summary and the job's counts."""

    dataset: str
    format: str
    read: int = 0
    new: int = 0
    duplicate: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)

    def add_error(self, number: int, reason: str, unit: str) -> None:
        """Count a bad record and keep its reason (the first hundred)."""
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"{unit} {number}: {reason}")

    def line(self) -> str:
        """The one-line summary a command ends with."""
        return (
            f"{self.dataset}: {self.new:,} new, {self.duplicate:,} duplicate, "
            f"{self.invalid:,} invalid ({self.read:,} records read as {self.format})"
        )

    def counts(self) -> dict[str, Any]:
        """The numbers, for a job's counts."""
        return {
            "read": self.read,
            "new": self.new,
            "duplicate": self.duplicate,
            "invalid": self.invalid,
            "format": self.format,
        }


class ImportRejected(InvalidInput):
    """The file has bad records and the import was asked to be all or nothing."""

    def __init__(self, summary: ImportSummary) -> None:
        more = summary.invalid - len(summary.errors)
        listed = "\n".join(f"  {e}" for e in summary.errors)
        tail = f"\n  ... and {more:,} more" if more > 0 else ""
        super().__init__(
            f"nothing was imported: {summary.invalid:,} of {summary.read:,} records are invalid "
            f"(use --skip-invalid to import the rest)\n{listed}{tail}",
            errors=summary.errors,
            invalid=summary.invalid,
        )
        self.summary = summary


def _record_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + _record_chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_record_chars(v) for v in value)
    return 8


class _Sink:
    """Where valid drafts go before the final move into `examples`."""

    def __init__(self, session: Session, dataset_id: int, origin: str) -> None:
        self.session = session
        self.dataset_id = dataset_id
        self.origin = origin

    def add(self, seq: int, draft: ExampleDraft) -> None:
        raise NotImplementedError  # pragma: no cover - both sinks implement it

    def finish(self) -> int:
        """Move what was staged into `examples`; return how many rows were new."""
        raise NotImplementedError  # pragma: no cover

    def abort(self) -> None:
        """Take back everything staged (the caller's transaction stays usable)."""
        raise NotImplementedError  # pragma: no cover


class _PostgresSink(_Sink):
    def __init__(self, session: Session, dataset_id: int, origin: str) -> None:
        super().__init__(session, dataset_id, origin)
        self.connection = driver_connection(session)
        self.cursor = self.connection.cursor()
        self.cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_stage (seq bigint, messages text, "
            "instruction text, input text, output text, source text, category text, meta text, "
            "external_id text, content_hash text, source_format text, source_keys text) "
            "ON COMMIT DROP"
        )
        self.cursor.execute("TRUNCATE import_stage")
        self.copy_context = self.cursor.copy(
            f"COPY import_stage ({', '.join(STAGED_COLUMNS)}) FROM STDIN"
        )
        self.copy = self.copy_context.__enter__()

    def add(self, seq: int, draft: ExampleDraft) -> None:
        self.copy.write_row(
            (
                seq,
                orjson.dumps(draft.messages).decode(),
                draft.instruction,
                draft.input,
                draft.output,
                draft.source,
                draft.category,
                orjson.dumps(draft.meta).decode(),
                draft.external_id,
                draft.content_hash,
                draft.source_format,
                orjson.dumps(draft.source_keys).decode(),
            )
        )

    def finish(self) -> int:
        self.copy_context.__exit__(None, None, None)
        self.cursor.execute(
            "INSERT INTO examples (dataset_id, messages, instruction, input, output, source, "
            "category, meta, external_id, content_hash, source_format, source_keys, origin, "
            "status, version) "
            "SELECT %s, messages::jsonb, instruction, input, output, source, category, "
            "meta::jsonb, external_id, content_hash, source_format, source_keys::jsonb, %s, %s, 1 "
            "FROM import_stage ORDER BY seq "
            "ON CONFLICT (dataset_id, content_hash) DO NOTHING",
            (self.dataset_id, self.origin, ExampleStatus.CANDIDATE.value),
        )
        new = self.cursor.rowcount
        self.cursor.execute("TRUNCATE import_stage")
        return new

    def abort(self) -> None:
        """Close the COPY without moving anything (the transaction will roll back)."""
        self.copy_context.__exit__(None, None, None)


class _SqliteSink(_Sink):
    BATCH = 5_000
    COLUMNS = (*STAGED_COLUMNS[1:], "dataset_id", "origin", "status", "version")

    def __init__(self, session: Session, dataset_id: int, origin: str) -> None:
        super().__init__(session, dataset_id, origin)
        self.cursor = driver_connection(session).cursor()
        # Batches go straight into `examples`; a savepoint lets an abort take them back.
        self.cursor.execute("SAVEPOINT sift_import")
        self.batch: list[tuple[Any, ...]] = []
        self.new = 0
        self.statement = (
            f"INSERT INTO examples ({', '.join(self.COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(self.COLUMNS))}) "
            "ON CONFLICT (dataset_id, content_hash) DO NOTHING"
        )

    def add(self, seq: int, draft: ExampleDraft) -> None:
        self.batch.append(
            (
                orjson.dumps(draft.messages).decode(),
                draft.instruction,
                draft.input,
                draft.output,
                draft.source,
                draft.category,
                orjson.dumps(draft.meta).decode(),
                draft.external_id,
                draft.content_hash,
                draft.source_format,
                orjson.dumps(draft.source_keys).decode(),
                self.dataset_id,
                self.origin,
                ExampleStatus.CANDIDATE.value,
                1,
            )
        )
        if len(self.batch) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self.cursor.executemany(self.statement, self.batch)
            self.new += self.cursor.rowcount
            self.batch = []

    def finish(self) -> int:
        self._flush()
        self.cursor.execute("RELEASE SAVEPOINT sift_import")
        return self.new

    def abort(self) -> None:
        self.batch = []
        self.cursor.execute("ROLLBACK TO SAVEPOINT sift_import")
        self.cursor.execute("RELEASE SAVEPOINT sift_import")


def _resolve(path: Path, fmt: str) -> tuple[str, str | None]:
    """(container, record format or None for auto) for a --format value."""
    if fmt in ("csv", "parquet"):
        return fmt, None
    if fmt == "jsonl":
        return "jsonl", None
    container = detect_container(path)
    return container, None if fmt == "auto" else fmt


def apply_mapping(record: Any, mapping: Mapping[str, str]) -> Any:
    """Rename source columns to Sift's field names (target=source pairs)."""
    if not mapping or not isinstance(record, dict):
        return record
    renamed = {k: v for k, v in record.items() if k not in mapping.values()}
    for target, source_key in mapping.items():
        if source_key in record:
            renamed[target] = record[source_key]
    return renamed


def import_file(
    session: Session,
    dataset: Dataset,
    path: Path,
    *,
    fmt: str = "auto",
    source: str | None = None,
    skip_invalid: bool = False,
    mapping: Mapping[str, str] | None = None,
    origin: str = Origin.IMPORT.value,
    max_record_chars: int = 2_000_000,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import every valid record of `path` into `dataset`, in the session's transaction."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    try:
        container, record_format = _resolve(path, fmt)
    except FileError as exc:
        raise InvalidInput(str(exc)) from exc
    unit = "line" if container in ("jsonl", "csv") else "record"
    if container == "csv":
        unit = "row"
    summary = ImportSummary(dataset=dataset.name, format=record_format or container)
    stream = RecordStream(path, container, max_record_chars)
    sink_type = _PostgresSink if session.get_bind().dialect.name == "postgresql" else _SqliteSink
    sink = sink_type(session, dataset.id, origin)
    writing = True
    try:
        for item in stream:
            summary.read += 1
            try:
                if item.error is not None:
                    raise item.error
                record = apply_mapping(item.value, mapping or {})
                if record_format is None:
                    record_format = detect_format(record)
                    summary.format = record_format
                if container != "jsonl" and _record_chars(record) > max_record_chars:
                    raise RecordError(
                        f"the record is over the limit of {max_record_chars:,} characters "
                        "(SIFT_IMPORT_MAX_RECORD_CHARS)"
                    )
                if not isinstance(record, dict):
                    raise RecordError("a record must be an object")
                draft = PARSERS[record_format](record)
                if source and draft.source is None:
                    draft.source = source
            except RecordError as exc:
                summary.add_error(item.number, str(exc), unit)
                # All or nothing: stop writing, keep reading to report every bad record.
                writing = writing and skip_invalid
                continue
            if writing:
                sink.add(item.number, draft)
            if progress and summary.read % 2_000 == 0:
                progress(summary.read, stream.bytes_read, stream.total_bytes)
    except FileError as exc:
        sink.abort()
        raise InvalidInput(str(exc)) from exc
    except BaseException:
        with suppress(Exception):  # the original error matters more than a failed cleanup
            sink.abort()
        raise
    if summary.invalid and not skip_invalid:
        sink.abort()
        raise ImportRejected(summary)
    summary.new = sink.finish()
    summary.duplicate = summary.read - summary.invalid - summary.new
    if progress:
        progress(summary.read, stream.total_bytes, stream.total_bytes)
    return summary
