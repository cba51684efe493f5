"""What a reviewer sees beside an example: its scores, near-duplicates and nearest neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.service import content_hash
from app.models import DuplicateCluster, DuplicateMember, Example, Revision, Score, Scorer
from app.platform.vectors.models import DEFAULT_MODEL
from app.platform.vectors.search import nearest_examples


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


@dataclass(frozen=True)
class StaleScore:
    """A score of the example's content before an edit, with no score of its content now."""

    score: ScoreView
    edit: int  # the edit it predates: 1 for the first


def stale_scores_of(
    session: Session, example: Example, current: list[ScoreView]
) -> list[StaleScore]:
    """Scores of the example's earlier contents by scorers that have not scored what it says
    now, each from the content just before the latest edit that has one."""
    befores = session.scalars(
        select(Revision.before).where(Revision.example_id == example.id).order_by(Revision.id)
    ).all()
    scored_now = {s.scorer for s in current}
    found: dict[str, StaleScore] = {}
    for edit, before in reversed(list(enumerate(befores, 1))):
        messages = before.get("messages")
        if not messages:
            continue
        earlier = Example(content_hash=content_hash(messages))
        for view in scores_of(session, earlier):
            if view.scorer not in scored_now and view.scorer not in found:
                found[view.scorer] = StaleScore(view, edit)
    return sorted(found.values(), key=lambda s: s.score.scorer)


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


def neighbours_of(
    session: Session, example: Example, k: int = 5, model: str = DEFAULT_MODEL
) -> tuple[list[tuple[Example, float]], str | None]:
    """The k most similar examples of the same dataset by embedding, with their cosine; and a
    note when there is nothing to search."""
    found = nearest_examples(session, example, k, model)
    if isinstance(found, str):
        return [], found
    examples = {
        e.id: e
        for e in session.scalars(select(Example).where(Example.id.in_([i for i, _ in found])))
    }
    return [(examples[i], similarity) for i, similarity in found], None
