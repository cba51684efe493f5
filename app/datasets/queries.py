"""Reading datasets and examples: look one up, list them, count them, and page through a
dataset's examples by filters, full-text search or meaning."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

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

from app.models import Dataset, Example, ExampleStatus
from app.platform.errors import InvalidInput, NotFound
from app.platform.vectors.search import similar_to


def get_dataset(session: Session, name: str) -> Dataset:
    """The dataset called `name`; NotFound otherwise."""
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        raise NotFound(f"no dataset called {name!r}")
    return dataset


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


def filtered_examples(dataset: Dataset | None, filters: ExampleFilter) -> Select[Example]:
    """The dataset's examples (every dataset's, with None) with every filter but the ordering
    applied."""
    query = select(Example)
    if dataset is not None:
        query = query.where(Example.dataset_id == dataset.id)
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
    query = filtered_examples(dataset, filters)
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
    ids = filtered_examples(dataset, filters).with_only_columns(Example.id)
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
