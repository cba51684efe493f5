"""Agreement between a collection's annotators, measured the standard way by the libraries that
define it: Krippendorff's alpha (nominal, any number of annotators, missing decisions allowed),
Fleiss' kappa (the examples every one of the same number of annotators decided) and Cohen's
kappa for each pair. Where a measure is undefined (one annotator, one category, no shared
example) it is None with a note that says why, never a made-up number."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Collection, Example, ExampleStatus, ReviewDecision, User
from app.review.consensus import STATUS_OF_VOTE, live_votes

# Decisions as the numbers the libraries take.
CODES = {ExampleStatus.ACCEPTED.value: 1, ExampleStatus.REJECTED.value: 0}


@dataclass
class PairKappa:
    a: str
    b: str
    kappa: float | None
    n: int


@dataclass
class AnnotatorAgreement:
    """One annotator against the settled statuses of the examples they voted on."""

    annotator: str
    decisions: int
    settled: int
    agree_with_consensus: float | None


@dataclass
class Agreement:
    """The agreement figures of one collection."""

    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    cohen_kappa: list[PairKappa]
    items: int
    annotators: list[AnnotatorAgreement]
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The figures as plain JSON (None where undefined)."""
        return asdict(self)


def decision_matrix(session: Session, collection: Collection) -> dict[str, dict[int, str]]:
    """Annotator name -> example id -> the status their latest live vote asks for."""
    rows = session.execute(
        select(User.name, ReviewDecision.example_id, ReviewDecision.action)
        .join(User, User.id == ReviewDecision.user_id)
        .where(live_votes(collection.id))
        .order_by(ReviewDecision.id)
    )
    matrix: dict[str, dict[int, str]] = {}
    for name, example_id, action in rows:
        matrix.setdefault(name, {})[example_id] = STATUS_OF_VOTE[action]
    return matrix


def measure(matrix: dict[str, dict[int, str]], settled: dict[int, str] | None = None) -> Agreement:
    """Every figure for a decision matrix (annotator -> example -> status)."""
    names = sorted(matrix)
    items = sorted({example for votes in matrix.values() for example in votes})
    notes: list[str] = []
    alpha = _krippendorff(names, items, matrix, notes)
    fleiss = _fleiss(names, items, matrix, notes)
    pairs = [_cohen(a, b, matrix) for a, b in combinations(names, 2)]
    if not pairs:
        notes.append("Cohen's kappa needs two annotators")
    people = [_against_consensus(name, matrix[name], settled or {}) for name in names]
    return Agreement(alpha, fleiss, pairs, len(items), people, notes)


def collection_agreement(session: Session, collection: Collection) -> Agreement:
    """The agreement figures of a collection's votes."""
    matrix = decision_matrix(session, collection)
    voted = {example for votes in matrix.values() for example in votes}
    rows = session.execute(
        select(Example.id, Example.status).where(
            Example.id.in_(voted), Example.status != ExampleStatus.CANDIDATE.value
        )
    )
    settled = {example_id: status for example_id, status in rows}
    return measure(matrix, settled)


def _defined(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _krippendorff(
    names: list[str], items: list[int], matrix: dict[str, dict[int, str]], notes: list[str]
) -> float | None:
    import krippendorff
    import numpy as np

    if len(names) < 2:
        notes.append("Krippendorff's alpha needs two annotators")
        return None
    data = np.array(
        [[CODES[matrix[n][i]] if i in matrix[n] else np.nan for i in items] for n in names]
    )
    if len({v for v in data.flatten().tolist() if not math.isnan(v)}) < 2:
        notes.append("Krippendorff's alpha is undefined when every decision is the same")
        return None
    paired = sum(1 for column in data.T if np.count_nonzero(~np.isnan(column)) >= 2)
    if paired == 0:
        notes.append("Krippendorff's alpha needs an example decided by two annotators")
        return None
    return _defined(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def _fleiss(
    names: list[str], items: list[int], matrix: dict[str, dict[int, str]], notes: list[str]
) -> float | None:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    counts: dict[int, list[int]] = {}
    for item in items:
        codes = [CODES[matrix[n][item]] for n in names if item in matrix[n]]
        if len(codes) >= 2:
            counts.setdefault(len(codes), []).append(item)
    if not counts:
        notes.append("Fleiss' kappa needs examples decided by two or more annotators")
        return None
    # Fleiss' kappa takes the same number of raters per example: the most common number.
    raters = max(counts, key=lambda k: (len(counts[k]), k))
    table = [
        [CODES[matrix[n][item]] for n in names if item in matrix[n]] for item in counts[raters]
    ]
    aggregated, _ = aggregate_raters(table, n_cat=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when one category: None below
        value = _defined(fleiss_kappa(aggregated, method="fleiss"))
    if value is None:
        notes.append("Fleiss' kappa is undefined when every decision is the same")
    elif len(counts) > 1:
        notes.append(f"Fleiss' kappa over the {len(counts[raters])} examples with {raters} votes")
    return value


def _cohen(a: str, b: str, matrix: dict[str, dict[int, str]]) -> PairKappa:
    from sklearn.metrics import cohen_kappa_score

    shared = sorted(matrix[a].keys() & matrix[b].keys())
    if not shared:
        return PairKappa(a, b, None, 0)
    first = [CODES[matrix[a][i]] for i in shared]
    second = [CODES[matrix[b][i]] for i in shared]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one label only: undefined, None below
        kappa = cohen_kappa_score(first, second, labels=[0, 1])
    return PairKappa(a, b, _defined(kappa), len(shared))


def _against_consensus(
    name: str, votes: dict[int, str], settled: dict[int, str]
) -> AnnotatorAgreement:
    judged = [example for example in votes if example in settled]
    agreed = sum(1 for example in judged if votes[example] == settled[example])
    rate = round(agreed / len(judged), 6) if judged else None
    return AnnotatorAgreement(name, len(votes), len(judged), rate)
