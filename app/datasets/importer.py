"""Import a file into a dataset: stream, validate every record, write all or nothing.

Everything is written inside the caller's transaction. On PostgreSQL the first import into
an empty dataset COPYs straight into `examples`; otherwise (or when the file repeats a record)
the valid records are COPYed into a temporary staging table and moved into `examples` with one
INSERT ... ON CONFLICT DO NOTHING, so that re-importing adds nothing. On SQLite they are
inserted in batches with the same conflict rule. If any record is bad and the caller did not
ask to skip bad records, nothing is written: the error names every bad record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.hf import is_saved_dataset
from app.datasets.parsers import PARSERS, detect_format
from app.datasets.readers import FileError, RecordStream, SourceRecord, detect_container
from app.datasets.records import CONTENT_FIELDS, ExampleDraft, RecordError
from app.datasets.search_index import defer_search, start_search_index_job
from app.models import Dataset, Example, ExampleStatus, Origin
from app.platform.db import driver_connection
from app.platform.errors import InvalidInput
from app.platform.validation import first_nul, nul_message

FORMATS = (
    "auto", "alpaca", "sharegpt", "openai", "dolly", "lima", "self-instruct", "csv", "parquet",
    "jsonl", "hf",
)  # fmt: skip
MAX_REPORTED_ERRORS = 100

# (records read, bytes read, total bytes): called every few thousand records.
ProgressCallback = Callable[[int, int, int], None]

STAGED_COLUMNS = ("seq", *CONTENT_FIELDS)


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
    # The job that makes a large import's examples searchable (app/datasets/search_index.py).
    search_job: int | None = None

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
        } | ({"search_job": self.search_job} if self.search_job else {})


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


class _Sink(ABC):
    """Where valid drafts go on their way into `examples`."""

    def __init__(self, session: Session, dataset_id: int, origin: str) -> None:
        self.session = session
        self.dataset_id = dataset_id
        self.origin = origin

    @abstractmethod
    def add(self, seq: int, draft: ExampleDraft) -> None:
        """Take one valid draft (`seq` is its place in the file)."""

    @abstractmethod
    def finish(self) -> int:
        """Make everything added part of `examples`; return how many rows were new."""

    @abstractmethod
    def abort(self) -> None:
        """Take back everything added (the caller's transaction stays usable)."""


def _row(draft: ExampleDraft) -> tuple[Any, ...]:
    """The values of STAGED_COLUMNS after `seq`, JSON as text."""
    return (
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


# Every column an import writes into `examples`, in the order of _row() plus the fixed ones.
EXAMPLE_COLUMNS = (*STAGED_COLUMNS[1:], "dataset_id", "origin", "status", "version")


class _DuplicatesInFile(Exception):
    """The direct COPY met a content hash twice: the import must go through staging."""


class _PostgresDirectSink(_Sink):
    """COPY straight into `examples`: the fast path for a dataset that is still empty.

    A file that repeats a record makes the COPY hit the unique index; the sink then rolls
    back to its savepoint and the importer runs again through the staging path.
    """

    def __init__(self, session: Session, dataset_id: int, origin: str) -> None:
        super().__init__(session, dataset_id, origin)
        self.cursor = driver_connection(session).cursor()
        self.cursor.execute("SAVEPOINT sift_import")
        self.fixed = (dataset_id, origin, ExampleStatus.CANDIDATE.value, 1)
        self.copy_context = self.cursor.copy(
            f"COPY examples ({', '.join(EXAMPLE_COLUMNS)}) FROM STDIN"
        )
        self.copy = self.copy_context.__enter__()

    def add(self, seq: int, draft: ExampleDraft) -> None:
        try:
            self.copy.write_row((*_row(draft), *self.fixed))
        except psycopg.errors.UniqueViolation as exc:
            self._undo()
            raise _DuplicatesInFile() from exc

    def finish(self) -> int:
        try:
            self.copy_context.__exit__(None, None, None)
        except psycopg.errors.UniqueViolation as exc:
            self._undo()
            raise _DuplicatesInFile() from exc
        new = self.cursor.rowcount
        self.cursor.execute("RELEASE SAVEPOINT sift_import")
        return new

    def abort(self) -> None:
        with suppress(psycopg.Error):
            self.copy_context.__exit__(None, None, None)
        self._undo()

    def _undo(self) -> None:
        self.cursor.execute("ROLLBACK TO SAVEPOINT sift_import")
        self.cursor.execute("RELEASE SAVEPOINT sift_import")


class _PostgresStagedSink(_Sink):
    """COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING."""

    def __init__(self, session: Session, dataset_id: int, origin: str) -> None:
        super().__init__(session, dataset_id, origin)
        self.cursor = driver_connection(session).cursor()
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
        self.copy.write_row((seq, *_row(draft)))

    def finish(self) -> int:
        self.copy_context.__exit__(None, None, None)
        self.cursor.execute(
            f"INSERT INTO examples ({', '.join(EXAMPLE_COLUMNS)}) "
            "SELECT messages::jsonb, instruction, input, output, source, category, meta::jsonb, "
            "external_id, content_hash, source_format, source_keys::jsonb, %s, %s, %s, 1 "
            "FROM import_stage s WHERE NOT EXISTS (SELECT FROM examples e "
            "WHERE e.dataset_id = %s AND e.content_hash = s.content_hash) ORDER BY seq "
            "ON CONFLICT (dataset_id, content_hash) DO NOTHING",
            # NOT EXISTS first: a row that reaches ON CONFLICT has had its search_text parsed
            # already (60 to 80 microseconds an example), so re-importing a file paid it all.
            (self.dataset_id, self.origin, ExampleStatus.CANDIDATE.value, self.dataset_id),
        )
        new = self.cursor.rowcount
        self.cursor.execute("TRUNCATE import_stage")
        return new

    def abort(self) -> None:
        """Close the COPY; the staged rows never reach `examples`."""
        self.copy_context.__exit__(None, None, None)
        self.cursor.execute("TRUNCATE import_stage")


def _open_sink(session: Session, dataset_id: int, origin: str, *, direct: bool) -> _Sink:
    if direct:
        return _PostgresDirectSink(session, dataset_id, origin)
    return _PostgresStagedSink(session, dataset_id, origin)


def _is_empty(session: Session, dataset_id: int) -> bool:
    return (
        session.scalar(select(Example.id).where(Example.dataset_id == dataset_id).limit(1)) is None
    )


def _resolve(path: Path, fmt: str) -> tuple[str, str | None]:
    """(container, record format or None for auto) for a --format value."""
    if fmt in ("csv", "parquet", "hf"):
        return fmt, None
    if is_saved_dataset(path):
        return "hf", None if fmt == "auto" else fmt
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


@dataclass(frozen=True)
class _Pass:
    """What one reading of the file needs to know."""

    path: Path
    container: str
    record_format: str | None
    source: str | None
    skip_invalid: bool
    mapping: Mapping[str, str]
    max_record_chars: int
    progress: ProgressCallback | None
    split: str | None = None


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
    split: str | None = None,
) -> ImportSummary:
    """Import every valid record of `path` (a file, or a folder saved by Hugging Face
    datasets, of which `split`) into `dataset`, in the session's transaction."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not (path.is_file() or is_saved_dataset(path)):
        raise InvalidInput(f"no such file: {path}")
    try:
        container, record_format = _resolve(path, fmt)
    except FileError as exc:
        raise InvalidInput(str(exc)) from exc
    job = _Pass(path, container, record_format, source, skip_invalid, mapping or {},
                max_record_chars, progress, split)  # fmt: skip
    direct = _is_empty(session, dataset.id)
    deferred = defer_search(session, path)
    try:
        summary = _read_and_write(
            job, dataset, _open_sink(session, dataset.id, origin, direct=direct)
        )
    except _DuplicatesInFile:
        # Only the first import into an empty dataset tries the direct path; a file that
        # repeats a record reads again through staging, which skips the repeats.
        summary = _read_and_write(
            job, dataset, _open_sink(session, dataset.id, origin, direct=False)
        )
    if deferred and summary.new:
        summary.search_job = start_search_index_job(session, dataset).id
    return summary


def _read_and_write(job: _Pass, dataset: Dataset, sink: _Sink) -> ImportSummary:
    record_format = job.record_format
    unit = {"jsonl": "line", "csv": "row", "hf": "row"}.get(job.container, "record")
    summary = ImportSummary(dataset=dataset.name, format=record_format or job.container)
    stream = RecordStream(job.path, job.container, job.max_record_chars, job.split)
    writing = True
    try:
        for item in stream:
            summary.read += 1
            try:
                record = _record(item, job)
                record_format = record_format or detect_format(record)
                summary.format = record_format
                draft = PARSERS[record_format](record)
                if job.source and draft.source is None:
                    draft.source = job.source
            except RecordError as exc:
                summary.add_error(item.number, str(exc), unit)
                # All or nothing: stop writing, keep reading to report every bad record.
                writing = writing and job.skip_invalid
                continue
            if writing:
                sink.add(item.number, draft)
            if job.progress and summary.read % 2_000 == 0:
                job.progress(summary.read, stream.bytes_read, stream.total_bytes)
    except _DuplicatesInFile:
        raise
    except FileError as exc:
        sink.abort()
        raise InvalidInput(str(exc)) from exc
    except BaseException:
        with suppress(Exception):  # the original error matters more than a failed cleanup
            sink.abort()
        raise
    if summary.invalid and not job.skip_invalid:
        sink.abort()
        raise ImportRejected(summary)
    summary.new = sink.finish()
    summary.duplicate = summary.read - summary.invalid - summary.new
    if job.progress:
        job.progress(summary.read, stream.total_bytes, stream.total_bytes)
    return summary


def _record(item: SourceRecord, job: _Pass) -> dict[str, Any]:
    """The source record with its columns renamed, or RecordError saying why it cannot be."""
    if item.error is not None:
        raise item.error
    record = apply_mapping(item.value, job.mapping)
    if not isinstance(record, dict):
        raise RecordError("a record must be an object")
    if job.container != "jsonl" and _record_chars(record) > job.max_record_chars:
        raise RecordError(
            f"the record is over the limit of {job.max_record_chars:,} characters "
            "(SIFT_IMPORT_MAX_RECORD_CHARS)"
        )
    nul = first_nul(record)
    if nul is not None:  # PostgreSQL text and jsonb cannot hold it
        raise RecordError(nul_message(nul))
    return record
