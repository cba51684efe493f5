"""Review on the collection dashboard: each annotator's decisions, and how often reviewers
accepted the collection's examples in each score band of each scorer."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.collections.distributions import ScoreRange
from app.models import (
    Collection,
    CollectionItem,
    Example,
    ExampleStatus,
    ReviewAction,
    ReviewDecision,
    Score,
    Scorer,
    ScoreState,
    User,
)
from app.scoring.service import recipe_from_scorer

REVIEWED = (ExampleStatus.ACCEPTED.value, ExampleStatus.REJECTED.value)


@dataclass
class ReviewerTally:
    """One annotator's decisions in a collection's queue, by action."""

    user: str
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0


@dataclass(frozen=True)
class AgreementBand:
    """Reviewed examples of one score band: accepted, rejected and the acceptance rate."""

    low: float
    high: float
    accepted: int
    rejected: int
    rate: float | None


@dataclass(frozen=True)
class ScorerAgreement:
    """How reviewers' decisions went along one scorer's bands."""

    scorer: str
    version: int
    bands: list[AgreementBand]


def review_progress(session: Session, collection: Collection) -> list[ReviewerTally]:
    """Per annotator, the decisions made in the collection's queue by action (undone ones do
    not count), the busiest first."""
    rows = session.execute(
        select(ReviewDecision.user_id, User.name, ReviewDecision.action, func.count())
        .outerjoin(User, User.id == ReviewDecision.user_id)
        .where(ReviewDecision.collection_id == collection.id, ReviewDecision.undone_at.is_(None))
        .group_by(ReviewDecision.user_id, User.name, ReviewDecision.action)
    )
    people: dict[int | None, ReviewerTally] = {}
    for user_id, name, action, count in rows:
        person = people.setdefault(user_id, ReviewerTally(name or "(deleted user)"))
        person.counts[action] = count
        person.total += count
    return sorted(people.values(), key=lambda p: (-p.total, p.user))


REVIEW_ACTIONS = [action.value for action in ReviewAction]


def agreement(session: Session, collection: Collection, bands: int = 10) -> list[ScorerAgreement]:
    """Per scorer, how often reviewers accepted the collection's examples in each score band:
    accepted / (accepted + rejected) among its reviewed examples."""
    rows = session.execute(
        select(Score.scorer_id, Score.value, Example.status, func.count())
        .join(Example, Example.content_hash == Score.content_hash)
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(
            CollectionItem.collection_id == collection.id,
            Score.state == ScoreState.OK.value,
            Example.status.in_(REVIEWED),
        )
        .group_by(Score.scorer_id, Score.value, Example.status)
    ).all()
    by_scorer: dict[int, list[tuple[float, str, int]]] = {}
    for scorer_id, value, status, count in rows:
        if value is not None:
            by_scorer.setdefault(scorer_id, []).append((value, status, count))
    scorers = {s.id: s for s in session.scalars(select(Scorer).where(Scorer.id.in_(by_scorer)))}
    result = []
    for scorer_id, values in sorted(by_scorer.items(), key=lambda kv: scorers[kv[0]].name):
        scorer = scorers[scorer_id]
        recipe = recipe_from_scorer(scorer)
        low = recipe.low if recipe.low is not None else min(v for v, _, _ in values)
        high = recipe.high if recipe.high is not None else max(v for v, _, _ in values)
        span = ScoreRange(float(low), float(max(high, low)), bands)
        tally = [Counter[str]() for _ in range(bands)]
        for value, status, count in values:
            tally[span.index(value)][status] += count
        result.append(ScorerAgreement(scorer.name, scorer.version, _bands(span, tally)))
    return result


def _bands(span: ScoreRange, tally: list[Counter[str]]) -> list[AgreementBand]:
    bands = []
    for i, counts in enumerate(tally):
        accepted, rejected = counts[REVIEWED[0]], counts[REVIEWED[1]]
        low, high = span.edges(i)
        reviewed = accepted + rejected
        bands.append(
            AgreementBand(low, high, accepted, rejected, accepted / reviewed if reviewed else None)
        )
    return bands
