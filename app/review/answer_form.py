"""What the review page shows of a collection's questions: each one with this person's
answer so far, and for a ranking the variants of the example's Evol-Quality group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Collection, Example, QuestionKind, ReviewQuestion, User
from app.review.questions import RATING_SCALE, list_questions, my_answers, variant_group

VARIANT_PREVIEW = 1_200


@dataclass(frozen=True)
class Variant:
    """One answer of the group to rank; `number` is its key on the page."""

    example_id: int
    number: int
    answer: str
    this: bool
    original: bool


@dataclass
class Asked:
    """A question as the review page asks it, with the choices its keys pick."""

    question: ReviewQuestion
    number: int
    mine: Any
    choices: list[tuple[int, str]] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        """True when this person has answered it."""
        return self.mine is not None


def _variants(session: Session, example: Example) -> list[Variant]:
    group = variant_group(session, example.id)
    if not group:
        return []
    rows = dict(
        session.execute(select(Example.id, Example.messages).where(Example.id.in_(group))).all()
    )
    variants = []
    for number, example_id in enumerate(group, 1):
        messages = rows.get(example_id) or []
        answer = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        if len(answer) > VARIANT_PREVIEW:
            answer = answer[: VARIANT_PREVIEW - 1] + "…"
        variants.append(Variant(example_id, number, answer, example_id == example.id, number == 1))
    return variants


def asked_context(
    session: Session, user: User, example: Example, collection: Collection | None
) -> dict[str, Any]:
    """The questions for the review page ({"asked": []} outside a collection's queue)."""
    if collection is None:
        return {"asked": []}
    questions = list_questions(session, collection)
    if not questions:
        return {"asked": []}
    mine = my_answers(session, user, collection, example.id)
    asked = []
    for number, question in enumerate(questions, 1):
        shown = Asked(question, number, mine.get(question.key))
        if question.kind == QuestionKind.RATING:
            shown.choices = [(v, str(v)) for v in RATING_SCALE]
        elif question.kind in (QuestionKind.LABEL, QuestionKind.LABELS):
            shown.choices = list(enumerate(question.options, 1))
        elif question.kind == QuestionKind.RANKING:
            shown.variants = _variants(session, example)
        asked.append(shown)
    return {"asked": asked}
