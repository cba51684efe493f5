"""What a reviewer sees beside an example: its scores, near-duplicates and nearest neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.datasets.dashboard import cached
from app.models import Dataset, DuplicateCluster, DuplicateMember, Embedding, Example, Score, Scorer
from app.selection.embeddings import DEFAULT_MODEL

# A live neighbour search keeps a dataset's vectors in memory: past this many it is a job's
# work, not a page's.
NEIGHBOUR_SEARCH_LIMIT = 200_000


@dataclass(frozen=True)
class ScoreView:
    """One score of an example with the recipe that gave it."""

    scorer: str
    version: int
    kind: str
    model: str | None
    value: float | None
    state: str
    raw: str | None
    details: dict[str, Any]


def scores_of(session: Session, example: Example) -> list[ScoreView]:
    """Every score of the example's content, newest scorer version first within a name."""
    rows = session.execute(
        select(Score, Scorer)
        .join(Scorer, Scorer.id == Score.scorer_id)
        .where(Score.content_hash == example.content_hash)
        .order_by(Scorer.name, Scorer.version.desc())
    )
    return [
        ScoreView(
            scorer.name,
            scorer.version,
            scorer.kind,
            scorer.model,
            score.value,
            score.state,
            score.raw,
            score.details or {},
        )
        for score, scorer in rows
    ]


def duplicates_of(session: Session, example: Example) -> list[tuple[str, list[Example]]]:
    """(method, the other members) of each near-duplicate cluster the example belongs to."""
    clusters = session.execute(
        select(DuplicateCluster.id, DuplicateCluster.method)
        .join(DuplicateMember, DuplicateMember.cluster_id == DuplicateCluster.id)
        .where(DuplicateMember.example_id == example.id)
        .order_by(DuplicateCluster.method)
    ).all()
    found = []
    for cluster_id, method in clusters:
        others = session.scalars(
            select(Example)
            .join(DuplicateMember, DuplicateMember.example_id == Example.id)
            .where(DuplicateMember.cluster_id == cluster_id, Example.id != example.id)
            .order_by(Example.id)
            .limit(20)
        )
        found.append((method, list(others)))
    return found


def _unit_vectors(session: Session, dataset: Dataset, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(example ids, matrix) of the dataset's examples embedded with `model`, in id order;
    empty when there are more than a live search should hold."""
    joined = (
        select(Example.id, Embedding.vector)
        .join(Embedding, Embedding.content_hash == Example.content_hash)
        .where(Example.dataset_id == dataset.id, Embedding.model == model)
    )
    capped = joined.limit(NEIGHBOUR_SEARCH_LIMIT + 1).subquery()
    if (session.scalar(select(func.count()).select_from(capped)) or 0) > NEIGHBOUR_SEARCH_LIMIT:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    rows = session.execute(joined.order_by(Example.id)).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = (
        np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        if rows
        else np.empty((0, 0), dtype=np.float32)
    )
    return ids, matrix


def neighbours_of(
    session: Session, example: Example, k: int = 5, model: str = DEFAULT_MODEL
) -> tuple[list[tuple[Example, float]], str | None]:
    """The k most similar examples of the same dataset by embedding, with their cosine; and a
    note when there is nothing to search."""
    # Kept per process like the dashboards' aggregates: embeddings move only when a job runs.
    ids, matrix = cached(
        session,
        example.dataset,
        f"vectors:{model}",
        lambda: _unit_vectors(session, example.dataset, model),
    )
    if ids.size == 0:
        return [], f"no {model} embeddings to search (or more than {NEIGHBOUR_SEARCH_LIMIT:,})"
    position = np.searchsorted(ids, example.id)
    if position >= ids.size or ids[position] != example.id:
        return [], "this example has no embedding yet"
    similarity = matrix @ matrix[position]
    similarity[position] = -np.inf
    count = min(k, ids.size - 1)
    if count <= 0:
        return [], "no other embedded example"
    best = np.argpartition(-similarity, count - 1)[:count]
    best = best[np.argsort(-similarity[best], kind="stable")]
    examples = {
        e.id: e for e in session.scalars(select(Example).where(Example.id.in_(ids[best].tolist())))
    }
    return [(examples[int(ids[i])], float(similarity[i])) for i in best], None
