"""Datasets and examples: create, list, page through, edit with optimistic locking, import."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import Conflict, InvalidInput, NotFound, PreconditionRequired
from app.datasets.records import RecordError, _parse_messages, content_hash, join_prompt
from app.jobs.service import create_job
from app.models import Dataset, Example, ExampleStatus, Job, Revision, User
from app.selection.embeddings import similar_to

# No "/" so that a name is always one URL path segment.
NAME_PATTERN = re.compile(r"^[^\x00-\x1f\x7f/]{1,200}$")
NOT_NULL = ("messages", "instruction", "output", "status", "meta")
EDITABLE = ("messages", "instruction", "input", "output", "source", "category", "status", "meta")


def get_dataset(session: Session, name: str) -> Dataset:
    """The dataset called `name`; NotFound otherwise."""
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        raise NotFound(f"no dataset called {name!r}")
    return dataset


def create_dataset(
    session: Session, name: str, description: str = "", user: User | None = None
) -> Dataset:
    """A new, empty dataset; the name must be free."""
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            "a dataset name must be 1 to 200 printable characters without '/'", field="name"
        )
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise Conflict(f"a dataset called {name!r} exists already")
    dataset = Dataset(name=name, description=description, created_by_id=user.id if user else None)
    session.add(dataset)
    session.flush()
    return dataset


def get_or_create_dataset(session: Session, name: str, user: User | None = None) -> Dataset:
    """The dataset called `name`, created if it does not exist yet."""
    existing = session.scalar(select(Dataset).where(Dataset.name == name.strip()))
    return existing or create_dataset(session, name, user=user)


def list_datasets(session: Session) -> list[tuple[Dataset, int]]:
    """Every dataset with its number of examples, by name."""
    counts = (
        select(Example.dataset_id, func.count().label("n")).group_by(Example.dataset_id).subquery()
    )
    rows = session.execute(
        select(Dataset, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.dataset_id == Dataset.id)
        .order_by(Dataset.name)
    )
    return [(dataset, count) for dataset, count in rows]


def all_datasets(session: Session) -> list[Dataset]:
    """Every dataset by name, without counting a possibly huge pool."""
    return list(session.scalars(select(Dataset).order_by(Dataset.name)))


def count_examples(session: Session, dataset: Dataset) -> int:
    """How many examples a dataset holds."""
    query = select(func.count()).select_from(Example).where(Example.dataset_id == dataset.id)
    return session.scalar(query) or 0


@dataclass
class ExampleFilter:
    source: str | None = None
    status: str | None = None
    q: str | None = None
    # Further WHERE clauses on Example, built by other domains (score filters).
    conditions: Sequence[ColumnElement[bool]] = ()
    # A sentence: the nearest examples by embedding (`model`, the bundled MiniLM by default),
    # best first, instead of id order.
    similar_to: str | None = None
    model: str | None = None


def like_pattern(text: str) -> str:
    """An ILIKE pattern (escape character a backslash) that finds `text` anywhere, taken
    literally."""
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{literal}%"


_WORD = re.compile(r"\w")


def text_query(text: str) -> str | None:
    """A tsquery (for to_tsquery('simple', ...)) that finds every word of `text`, the last one
    as a prefix (it may be half typed); None when `text` has no word at all.

    Each run of non-space characters is quoted, so that PostgreSQL's own parser splits it as it
    split the indexed text ("3.5", "e-mail", "don't" match what they match there)."""
    chunks = [c for c in text.split() if _WORD.search(c)]
    if not chunks:
        return None
    quoted = ["'" + c.replace("\\", "\\\\").replace("'", "''") + "'" for c in chunks]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def search_condition(text: str) -> ColumnElement[bool]:
    """Examples whose messages contain every word of `text` (any case; the last word may be the
    start of one), through the full-text index. Text without any word (only punctuation) is
    looked for literally, by a scan."""
    query = text_query(text)
    if query is None:
        pattern = like_pattern(text)
        return cast(Example.messages, String).ilike(pattern, escape="\\")
    # Inline, not a parameter: a prepared statement's generic plan cannot know how many
    # examples the words match, and scanned a million examples in id order for a rare phrase.
    words = bindparam(None, query, type_=String(), literal_execute=True)
    tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), words)
    return Example.search_text.op("@@")(tsquery)


def _filtered(dataset: Dataset, filters: ExampleFilter) -> Select[Example]:
    """The dataset's examples with every filter but the ordering applied."""
    query = select(Example).where(Example.dataset_id == dataset.id)
    if filters.source:
        query = query.where(Example.source == filters.source)
    if filters.status:
        if filters.status not in {s.value for s in ExampleStatus}:
            raise InvalidInput(f"unknown status {filters.status!r}", field="status")
        query = query.where(Example.status == filters.status)
    if filters.q:
        query = query.where(search_condition(filters.q))
    return query.where(*filters.conditions)


def list_examples(
    session: Session,
    dataset: Dataset,
    filters: ExampleFilter,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Example], int | None]:
    """One page of a dataset's examples by id, and the id to continue after (keyset); with
    `similar_to`, the `limit` nearest by meaning, best first, and no next page."""
    limit = max(1, min(limit, 500))
    if filters.similar_to is not None:
        return [e for e, _ in similar_examples(session, dataset, filters, limit)], None
    query = _filtered(dataset, filters)
    if after is not None:
        query = query.where(Example.id > after)
    rows = list(session.scalars(query.order_by(Example.id).limit(limit + 1)))
    next_after = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_after


def similar_examples(
    session: Session, dataset: Dataset, filters: ExampleFilter, limit: int = 50
) -> list[tuple[Example, float]]:
    """The filtered examples nearest to `filters.similar_to` by embedding, with their cosine,
    best first, from the model's HNSW index."""
    ids = _filtered(dataset, filters).with_only_columns(Example.id)
    ranked = similar_to(session, ids, filters.similar_to or "", filters.model, limit)
    return by_ids(session, ranked)


def by_ids(session: Session, ranked: Sequence[tuple[int, float]]) -> list[tuple[Example, float]]:
    """The examples of (id, score) pairs, in the pairs' order."""
    found = {
        e.id: e
        for e in session.scalars(select(Example).where(Example.id.in_([i for i, _ in ranked])))
    }
    return [(found[i], score) for i, score in ranked if i in found]


def get_example(session: Session, example_id: int) -> Example:
    """The example with this id; NotFound otherwise."""
    example = session.get(Example, example_id)
    if example is None:
        raise NotFound(f"no example {example_id}")
    return example


def _snapshot(example: Example) -> dict[str, Any]:
    return {name: getattr(example, name) for name in EDITABLE}


def _apply_messages(example: Example, messages: Any) -> None:
    try:
        checked = _parse_messages({"messages": messages})
    except RecordError as exc:
        raise InvalidInput(str(exc), field="messages") from exc
    turns = [m for m in checked if m["role"] != "system"]
    example.messages = checked
    if len(turns) != 2:
        example.instruction = example.input = example.output = None
        return
    if example.instruction is None or turns[0]["content"] != join_prompt(
        example.instruction, example.input
    ):
        example.instruction, example.input = turns[0]["content"], None
    example.output = turns[1]["content"]


def _apply_fields(example: Example, changes: dict[str, Any]) -> None:
    for name in ("instruction", "input", "output"):
        if name in changes and changes[name] is not None and not isinstance(changes[name], str):
            raise InvalidInput(f"field '{name}' must be a string", field=name)
    if {"instruction", "input"} & changes.keys() and example.instruction is None:
        raise InvalidInput("this example has several turns: edit its messages instead")
    example.instruction = changes.get("instruction", example.instruction)
    example.input = changes.get("input", example.input)
    example.output = changes.get("output", example.output)
    messages = [dict(m) for m in example.messages]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    assistants = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if example.instruction is not None:
        messages[users[-1]]["content"] = join_prompt(example.instruction, example.input)
    if example.output is not None:
        messages[assistants[-1]]["content"] = example.output
    example.messages = messages


def update_example(
    session: Session,
    example_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
    user: User | None,
    reason: str = "",
) -> Example:
    """Apply an edit if `expected_version` is current; write a Revision; 409 when stale."""
    if expected_version is None:
        raise PreconditionRequired("send If-Match: <version> to edit an example")
    example = session.get(Example, example_id, with_for_update={"key_share": True})
    if example is None:
        raise NotFound(f"no example {example_id}")
    if example.version != expected_version:
        raise Conflict(
            f"example {example_id} was changed by someone else (version {example.version})",
            current_version=example.version,
            current=_snapshot(example),
        )
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"these fields cannot be edited: {', '.join(sorted(unknown))}")
    nulls = sorted(name for name in NOT_NULL if name in changes and changes[name] is None)
    if nulls:
        raise InvalidInput(f"these fields cannot be null: {', '.join(nulls)}", field=nulls[0])
    with session.no_autoflush:  # a half-applied edit must not be flushed by the checks below
        before = _snapshot(example)
        _apply(session, example, changes)
        after = _snapshot(example)
    if after == before:
        return example
    session.flush()  # bumps the version; a concurrent writer gets a stale-data error
    session.add(
        Revision(
            example_id=example.id,
            user_id=user.id if user else None,
            version=example.version,
            reason=reason,
            before=before,
            after=after,
        )
    )
    return example


def _apply(session: Session, example: Example, changes: dict[str, Any]) -> None:
    """Apply an edit to an example in memory, keeping its content hash unique."""
    if "messages" in changes:
        _apply_messages(example, changes["messages"])
    elif {"instruction", "input", "output"} & changes.keys():
        _apply_fields(example, changes)
    for name in ("source", "category", "meta"):
        if name in changes:
            setattr(example, name, changes[name])
    if "status" in changes:
        if changes["status"] not in {s.value for s in ExampleStatus}:
            raise InvalidInput(f"unknown status {changes['status']!r}", field="status")
        example.status = changes["status"]
    new_hash = content_hash(example.messages)
    if new_hash != example.content_hash:
        clash = session.scalar(
            select(Example.id).where(
                Example.dataset_id == example.dataset_id,
                Example.content_hash == new_hash,
                Example.id != example.id,
            )
        )
        if clash is not None:
            raise Conflict(f"example {clash} already has this content", duplicate_of=clash)
        example.content_hash = new_hash


def save_upload(stream: BinaryIO, filename: str | None) -> Path:
    """Store an uploaded file under the uploads folder, for its import job to read."""
    uploads = get_settings().uploads_dir
    uploads.mkdir(parents=True, exist_ok=True)
    suffix = "".join(c for c in (filename or "").rsplit(".", 1)[-1][:10] if c.isalnum())
    path = uploads / f"{uuid.uuid4().hex}.{suffix or 'dat'}"
    with path.open("wb") as out:
        shutil.copyfileobj(stream, out, length=1 << 20)
    return path


def start_import_job(
    session: Session,
    dataset: Dataset,
    path: Path,
    *,
    fmt: str = "auto",
    skip_invalid: bool = False,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
    user: User | None = None,
    send: bool = True,
) -> Job:
    """A background import of a file already on disk (an upload, or a path on the server)."""
    params = {
        "path": str(path),
        "format": fmt,
        "skip_invalid": skip_invalid,
        "source": source,
        "mapping": mapping or {},
    }
    return create_job(
        session, "import", params, queue="cpu", user=user, dataset_id=dataset.id, send=send
    )
