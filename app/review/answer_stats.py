"""What the answers to a collection's questions add up to: a distribution per question for
the dashboard's bars, and the examples that got a given answer (the filter behind each bar)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, cast, distinct, func, literal_column, select
from sqlalchemy.orm import Session

from app.datasets.service import like_pattern
from app.models import (
    Collection,
    CollectionItem,
    Example,
    QuestionKind,
    ReviewAnswer,
    ReviewQuestion,
    User,
)
from app.platform.errors import InvalidInput
from app.review.questions import RATING_SCALE, get_question, list_questions

FILTER_LIMIT = 100
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


@dataclass
class Distribution:
    """One question's answers counted: `rows` are (value as shown, count, filter value); for
    a ranking, the place the original answer (the group's first example) was given."""

    key: str
    kind: str
    prompt: str
    options: list[str]
    required: bool
    answers: int = 0
    examples: int = 0
    rows: list[tuple[str, int, str | None]] = field(default_factory=list)
    note: str = ""


def _place(n: int) -> str:
    return ORDINALS.get(n, f"{n}th")


def distributions(session: Session, collection: Collection) -> list[Distribution]:
    """Every question of the collection with its answers counted, in the order asked."""
    found = []
    for question in list_questions(session, collection):
        rows = session.execute(
            select(ReviewAnswer.example_id, ReviewAnswer.value).where(
                ReviewAnswer.question_id == question.id
            )
        ).all()
        shown = Distribution(
            question.key, question.kind, question.prompt, list(question.options),
            question.required, len(rows), len({example for example, _ in rows}),
        )  # fmt: skip
        values = [value for _, value in rows]
        if question.kind == QuestionKind.RATING:
            counts = Counter(values)
            shown.rows = [(str(v), counts.get(v, 0), str(v)) for v in RATING_SCALE]
        elif question.kind == QuestionKind.LABEL:
            counts = Counter(values)
            shown.rows = [(o, counts.get(o, 0), o) for o in question.options]
        elif question.kind == QuestionKind.LABELS:
            counts = Counter(label for chosen in values for label in chosen)
            shown.rows = [(o, counts.get(o, 0), o) for o in question.options]
            shown.note = "an answer may hold several labels"
        elif question.kind == QuestionKind.RANKING:
            places = Counter(order.index(min(order)) + 1 for order in values if order)
            shown.rows = [(_place(p), places[p], None) for p in sorted(places)]
            shown.note = "the place each ranking gave the original answer (the variants' source)"
        else:
            shown.note = "free text: counted, not charted; filter by words below"
        found.append(shown)
    return found


@dataclass(frozen=True)
class AnsweredExample:
    """An example of the collection with everyone's answer to the question filtered on."""

    example: Example
    answers: dict[str, Any]


def answer_condition(question: ReviewQuestion, value: str) -> Any:
    """The condition on ReviewAnswer rows whose value matches `value` as typed: a rating, a
    label, a label among several, or words in a text answer."""
    text = value.strip()
    if not text:
        raise InvalidInput("say which answer to filter on", field="value")
    if question.kind == QuestionKind.RATING:
        if not text.isdigit() or int(text) not in RATING_SCALE:
            raise InvalidInput(f"{question.key}: a rating is 1 to 5", field="value")
        return ReviewAnswer.value == func.to_jsonb(int(text))
    if question.kind == QuestionKind.LABEL:
        return ReviewAnswer.value == func.to_jsonb(cast(text, Text))
    if question.kind == QuestionKind.LABELS:
        return ReviewAnswer.value.contains([text])
    if question.kind == QuestionKind.TEXT:
        as_text = ReviewAnswer.value.op("#>>", return_type=Text())(literal_column("'{}'"))
        return as_text.ilike(like_pattern(text))
    raise InvalidInput(f"{question.key}: a ranking is not filtered by value", field="question")


def examples_answered(
    session: Session,
    collection: Collection,
    key: str,
    value: str,
    annotator: str = "",
    limit: int = FILTER_LIMIT,
) -> tuple[list[AnsweredExample], int]:
    """The collection's examples where someone (or the named annotator) gave this answer to
    the question, by id, at most `limit`; and how many there are in all."""
    question = get_question(session, collection, key)
    matching = (
        select(ReviewAnswer.example_id)
        .join(CollectionItem, CollectionItem.example_id == ReviewAnswer.example_id)
        .where(
            CollectionItem.collection_id == collection.id,
            ReviewAnswer.question_id == question.id,
            answer_condition(question, value),
        )
    )
    if annotator.strip():
        matching = matching.join(User, User.id == ReviewAnswer.user_id).where(
            User.name == annotator.strip()
        )
    total = session.scalar(select(func.count(distinct(matching.subquery().c.example_id)))) or 0
    examples = list(
        session.scalars(
            select(Example).where(Example.id.in_(matching)).order_by(Example.id).limit(limit)
        )
    )
    everyone: dict[int, dict[str, Any]] = {}
    for example_id, name, answer in session.execute(
        select(ReviewAnswer.example_id, User.name, ReviewAnswer.value)
        .join(User, User.id == ReviewAnswer.user_id)
        .where(
            ReviewAnswer.question_id == question.id,
            ReviewAnswer.example_id.in_([e.id for e in examples]),
        )
        .order_by(User.name)
    ):
        everyone.setdefault(example_id, {})[name] = answer
    return [AnsweredExample(e, everyone.get(e.id, {})) for e in examples], total
