"""How far annotators agree on each question, by Krippendorff's alpha from the `krippendorff`
library at the level the answers have:

- rating: ordinal (1 to 5), and interval besides, as the numbers they are;
- label: nominal, over the options;
- labels: one nominal alpha per label, each annotator having chosen it or not;
- ranking: ordinal, each (example, variant) a unit whose value is the place it was given;
- text: not measured (free text has no level to compare at).

Where alpha is undefined (one annotator, no example answered by two, every answer the same)
it is None with a note that says why, never a made-up number."""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    Collection,
    CollectionItem,
    QuestionKind,
    ReviewAnswer,
    ReviewQuestion,
    User,
)
from app.review.questions import RATING_SCALE, list_questions

# Annotator -> unit -> the number the library takes.
Matrix = dict[str, dict[Hashable, float]]
Level = Literal["nominal", "ordinal", "interval"]
LEVELS = {
    QuestionKind.RATING.value: "ordinal",
    QuestionKind.LABEL.value: "nominal",
    QuestionKind.LABELS.value: "nominal",
    QuestionKind.RANKING.value: "ordinal",
}


@dataclass
class LabelAgreement:
    label: str
    krippendorff_alpha: float | None


@dataclass
class QuestionAgreement:
    """One question's agreement figures."""

    key: str
    kind: str
    level: str | None
    krippendorff_alpha: float | None
    interval_alpha: float | None
    items: int
    paired: int
    annotators: int
    by_label: list[LabelAgreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The figures as plain JSON (None where undefined)."""
        return asdict(self)


def krippendorff_alpha(
    matrix: Matrix, level: Level, domain: Sequence[float], notes: list[str], what: str = ""
) -> float | None:
    """The library's alpha for an annotator x unit matrix (missing answers allowed), or None
    with a note when it is undefined."""
    import krippendorff
    import numpy as np

    prefix = f"{what}: " if what else ""
    names = sorted(matrix)
    units = sorted({u for row in matrix.values() for u in row}, key=repr)
    if len(names) < 2:
        notes.append(f"{prefix}Krippendorff's alpha needs two annotators")
        return None
    data = np.array([[matrix[n].get(u, np.nan) for u in units] for n in names], dtype=float)
    paired = data[:, np.count_nonzero(~np.isnan(data), axis=0) >= 2]
    if paired.shape[1] == 0:
        notes.append(f"{prefix}Krippendorff's alpha needs an example answered by two annotators")
        return None
    if len(set(paired[~np.isnan(paired)].tolist())) < 2:
        notes.append(f"{prefix}Krippendorff's alpha is undefined when every answer is the same")
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = krippendorff.alpha(
            reliability_data=data, value_domain=list(domain), level_of_measurement=level
        )
    if value is None or math.isnan(value):
        notes.append(f"{prefix}Krippendorff's alpha is undefined here")
        return None
    return round(float(value), 6)


def _answers(session: Session, collection: Collection, question: ReviewQuestion) -> list[Any]:
    """(annotator, example id, value) of the question's answers on the collection's examples."""
    return list(
        session.execute(
            select(User.name, ReviewAnswer.example_id, ReviewAnswer.value)
            .join(User, User.id == ReviewAnswer.user_id)
            .join(CollectionItem, CollectionItem.example_id == ReviewAnswer.example_id)
            .where(
                ReviewAnswer.question_id == question.id,
                CollectionItem.collection_id == collection.id,
            )
        )
    )


def question_figures(
    question: ReviewQuestion, answers: Sequence[tuple[str, int, Any]]
) -> QuestionAgreement:
    """The agreement figures of one question from its answers (annotator, example, value)."""
    figures = QuestionAgreement(
        key=question.key,
        kind=question.kind,
        level=LEVELS.get(question.kind),
        krippendorff_alpha=None,
        interval_alpha=None,
        items=len({example for _, example, _ in answers}),
        paired=_paired(answers),
        annotators=len({name for name, _, _ in answers}),
    )
    notes = figures.notes
    matrix: Matrix = {}
    if question.kind == QuestionKind.RATING:
        for name, example, value in answers:
            matrix.setdefault(name, {})[example] = float(value)
        figures.krippendorff_alpha = krippendorff_alpha(matrix, "ordinal", RATING_SCALE, notes)
        figures.interval_alpha = krippendorff_alpha(matrix, "interval", RATING_SCALE, [])
    elif question.kind == QuestionKind.LABEL:
        code = {option: i for i, option in enumerate(question.options)}
        for name, example, value in answers:
            matrix.setdefault(name, {})[example] = float(code[value])
        domain = range(len(question.options))
        figures.krippendorff_alpha = krippendorff_alpha(matrix, "nominal", domain, notes)
    elif question.kind == QuestionKind.LABELS:
        notes.append("several labels: one nominal alpha per label (chosen or not), in by_label")
        for label in question.options:
            chosen: Matrix = {}
            for name, example, value in answers:
                chosen.setdefault(name, {})[example] = float(label in value)
            alpha = krippendorff_alpha(chosen, "nominal", (0, 1), notes, label)
            figures.by_label.append(LabelAgreement(label, alpha))
    elif question.kind == QuestionKind.RANKING:
        notes.append("ranking: ordinal over the place each variant was given (1 = best)")
        for name, example, order in answers:
            for place, variant in enumerate(order, 1):
                matrix.setdefault(name, {})[(example, variant)] = float(place)
        longest = max((len(order) for _, _, order in answers), default=2)
        domain = range(1, longest + 1)
        figures.krippendorff_alpha = krippendorff_alpha(matrix, "ordinal", domain, notes)
    else:
        notes.append("free text is not measured: there is no level to compare answers at")
    return figures


def _paired(answers: Sequence[tuple[str, int, Any]]) -> int:
    """Examples answered by two or more annotators."""
    by_example: dict[int, set[str]] = {}
    for name, example, _ in answers:
        by_example.setdefault(example, set()).add(name)
    return sum(1 for names in by_example.values() if len(names) >= 2)


def question_agreement(session: Session, collection: Collection) -> list[QuestionAgreement]:
    """Every question's agreement figures, in the order the questions are asked."""
    return [
        question_figures(question, _answers(session, collection, question))
        for question in list_questions(session, collection)
    ]
