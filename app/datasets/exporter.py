"""Export a dataset, collection or snapshot, streamed in chunks, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from sqlalchemy import Select, func, null, select
from sqlalchemy.orm import Session

from app.datasets.answers_export import answers_for, exports_answers
from app.datasets.hf import write_dataset_dict
from app.datasets.preferences import preference_pairs
from app.datasets.queries import count_examples, get_dataset
from app.datasets.records import CONTENT_FIELDS
from app.datasets.writers import WRITERS, ExampleView
from app.models import (
    Collection,
    CollectionItem,
    Embedding,
    Example,
    Score,
    Scorer,
    ScoreState,
    SnapshotItem,
)
from app.platform.errors import InvalidInput, NotFound
from app.platform.snapshots import find_snapshot

EXPORT_FORMATS = ("alpaca", "sharegpt", "openai", "dolly", "lima", "jsonl", "parquet", "dpo")
# Written to a path only (never streamed over HTTP): a Hugging Face DatasetDict folder.
FILE_FORMATS = (*EXPORT_FORMATS, "hf")
CHUNK = 2_000


@dataclass(frozen=True)
class ExportSource:
    """Which rows to export: a dataset's examples, a collection's, or a snapshot's items."""

    kind: str  # "dataset" | "collection" | "snapshot"
    id: int


@dataclass
class ExportOptions:
    format: str
    with_scores: bool = False
    with_embeddings: bool = False
    embedding_model: str | None = None


def _views(session: Session, source: ExportSource) -> Iterator[list[ExampleView]]:
    """Chunks of rows in a stable order, read by keyset as plain columns so memory stays flat
    (no ORM objects pile up in the caller's session)."""
    if source.kind == "snapshot":
        table: Any = SnapshotItem
        key = SnapshotItem.position
        extra: tuple[Any, ...] = (
            SnapshotItem.example_id.label("id"),
            SnapshotItem.status,
            null().label("origin"),
            SnapshotItem.answers,
        )
        where: Any = SnapshotItem.snapshot_id == source.id
    else:
        table = Example
        key = Example.id
        extra = (Example.id, Example.status, Example.origin, null().label("answers"))
        where = Example.dataset_id == source.id
    columns = [getattr(table, name) for name in CONTENT_FIELDS]
    base: Select[Any] = select(key.label("sort_key"), *extra, *columns)
    if source.kind == "collection":
        base = base.join(CollectionItem, CollectionItem.example_id == Example.id)
        where = CollectionItem.collection_id == source.id
    base = base.where(where).order_by(key).limit(CHUNK)
    last: int | None = None
    while True:
        query = base if last is None else base.where(key > last)
        rows = session.execute(query).all()
        if not rows:
            return
        yield [
            ExampleView(**{name: getattr(row, name) for name in (*VIEW_EXTRA, *CONTENT_FIELDS)})
            for row in rows
        ]
        last = rows[-1].sort_key


VIEW_EXTRA = ("id", "status", "origin", "answers")


def resolve_source(
    session: Session,
    *,
    dataset: str | None = None,
    collection: str | None = None,
    snapshot: int | str | None = None,
) -> tuple[ExportSource, int]:
    """What to export, named by exactly one of dataset, collection or snapshot, and its size."""
    if sum(x is not None for x in (dataset, collection, snapshot)) != 1:
        raise InvalidInput("name exactly one of --dataset, --collection or --snapshot")
    if dataset is not None:
        found = get_dataset(session, dataset)
        return ExportSource("dataset", found.id), count_examples(session, found)
    if collection is not None:
        row = session.scalar(select(Collection).where(Collection.name == collection))
        if row is None:
            raise NotFound(f"no collection called {collection!r}")
        total = session.scalar(select(func.count()).where(CollectionItem.collection_id == row.id))
        return ExportSource("collection", row.id), total or 0
    assert snapshot is not None
    frozen = find_snapshot(session, snapshot)
    return ExportSource("snapshot", frozen.id), frozen.example_count


def latest_scores(session: Session, hashes: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """content hash -> {scorer name: value}, from the newest version of each scorer name."""
    newest = select(func.max(Scorer.id)).group_by(Scorer.name).scalar_subquery()
    rows = session.execute(
        select(Score.content_hash, Scorer.name, Score.value, Score.state)
        .join(Scorer, Scorer.id == Score.scorer_id)
        .where(Score.content_hash.in_(hashes), Scorer.id.in_(newest))
    )
    scores: dict[str, dict[str, float | None]] = {}
    for content, name, value, state in rows:
        scores.setdefault(content, {})[name] = value if state == ScoreState.OK.value else None
    return scores


def default_embedding_model(session: Session) -> str | None:
    """The model of the most recent embedding, used when none is named."""
    return session.scalar(select(Embedding.model).order_by(Embedding.id.desc()).limit(1))


def embeddings_for(session: Session, hashes: Sequence[str], model: str) -> dict[str, list[float]]:
    """content hash -> vector, for one embedding model."""
    rows = session.execute(
        select(Embedding.content_hash, Embedding.vector).where(
            Embedding.content_hash.in_(hashes), Embedding.model == model
        )
    )
    return {h: np.frombuffer(v, dtype=np.float32).tolist() for h, v in rows}


def _records(session: Session, source: ExportSource, options: ExportOptions) -> Iterator[dict]:
    if options.format == "dpo":  # pairs, not one record per example
        yield from preference_pairs(session, source.kind, source.id)
        return
    writer = WRITERS[options.format]
    model = options.embedding_model
    if options.with_embeddings and model is None:
        model = default_embedding_model(session)
        if model is None:
            raise InvalidInput("--with-embeddings: no embeddings have been computed yet")
    with_answers = exports_answers(session, source.kind, source.id)
    for chunk in _views(session, source):
        hashes = [view.content_hash for view in chunk]
        scores = latest_scores(session, hashes) if options.with_scores else {}
        vectors = embeddings_for(session, hashes, model) if model else {}
        answers = answers_for(session, source.kind, source.id, chunk) if with_answers else {}
        for index, view in enumerate(chunk):
            record = writer(view)
            if with_answers:
                record["answers"] = answers[index]
            if options.with_scores:
                record["scores"] = scores.get(view.content_hash, {})
            if options.with_embeddings:
                record["embedding"] = vectors.get(view.content_hash)
            yield record


@contextmanager
def _atomic(out: Path) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside `out` and move it into place only when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def container_for(fmt: str, out: Path | None) -> str:
    """json (a list), jsonl or parquet, from the format and the output file's extension
    (preference pairs are JSON lines, as TRL reads them)."""
    if fmt == "parquet":
        return "parquet"
    if fmt in ("jsonl", "dpo") or (out is not None and out.suffix.lower() == ".jsonl"):
        return "jsonl"
    return "json"


def iter_export_bytes(
    session: Session, source: ExportSource, options: ExportOptions, container: str
) -> Iterator[bytes]:
    """The export as a stream of bytes (JSON list or JSONL), for files and HTTP responses."""
    if container == "jsonl":
        for record in _records(session, source, options):
            yield orjson.dumps(record) + b"\n"
        return
    first = True
    yield b"["
    for record in _records(session, source, options):
        yield (b"\n" if first else b",\n") + orjson.dumps(record, option=orjson.OPT_INDENT_2)
        first = False
    yield b"\n]\n"


def _write_parquet(fh: IO[bytes], records: Iterator[dict]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    count = 0
    batch: list[dict] = []

    def flush() -> None:
        nonlocal writer
        for row in batch:
            row["meta"] = orjson.dumps(row["meta"]).decode()
            if "answers" in row:  # shaped by each collection's questions: JSON text, as meta
                row["answers"] = orjson.dumps(row["answers"]).decode()
        table = pa.Table.from_pylist(batch, schema=writer.schema if writer else None)
        if writer is None:
            writer = pq.ParquetWriter(fh, table.schema)
        writer.write_table(table)
        batch.clear()

    for record in records:
        batch.append(record)
        count += 1
        if len(batch) >= CHUNK:
            flush()
    if batch or writer is None:
        flush()
    assert writer is not None
    writer.close()
    return count


def export_to_file(
    session: Session,
    source: ExportSource,
    options: ExportOptions,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the export to `out` atomically; return how many records were written. `hf`: a
    DatasetDict folder (one `train` split) of Sift's own records, for datasets.load_from_disk."""
    if options.format not in FILE_FORMATS:
        raise InvalidInput(
            f"unknown export format {options.format!r}: choose one of {', '.join(FILE_FORMATS)}"
        )
    if options.format == "hf":
        records = _records(session, source, replace(options, format="jsonl"))
        count = write_dataset_dict(records, out)
        if progress:
            progress(count)
        return count
    container = container_for(options.format, out)
    count = 0

    def counted() -> Iterator[dict]:
        nonlocal count
        for record in _records(session, source, options):
            count += 1
            if progress and count % CHUNK == 0:
                progress(count)
            yield record

    with _atomic(out) as fh:
        if container == "parquet":
            _write_parquet(fh, counted())
        elif container == "jsonl":
            for record in counted():
                fh.write(orjson.dumps(record) + b"\n")
        else:
            fh.write(b"[")
            for record in counted():
                fh.write((b"\n" if count == 1 else b",\n") + orjson.dumps(record))
            fh.write(b"\n]\n")
    if progress:
        progress(count)
    return count
