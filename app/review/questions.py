"""Questions beyond accept and reject: a lead asks them of a collection (a 1-5 rating, a label
from a list, several labels, free text, a ranking of an Evol-Quality group's variants), and
each annotator answers them about the examples their queue hands them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from app.models import (
    Collection,
    CollectionItem,
    Example,
    Provenance,
    QuestionKind,
    ReviewAnswer,
    ReviewQuestion,
    Role,
    User,
)
from app.models.base import utcnow
from app.platform.db import conflict_insert
from app.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.review.queue import holder

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
KINDS = tuple(kind.value for kind in QuestionKind)
RATING_SCALE = (1, 2, 3, 4, 5)
# Each option has a key, 1 to 9, on the review page.
MAX_OPTIONS = 9
MAX_OPTION = 100
MAX_PROMPT = 2_000
MAX_TEXT_ANSWER = 10_000
MAX_QUESTIONS = 20


class MissingAnswers(InvalidInput):
    """A decision left required questions unanswered; carries their keys."""


@dataclass(frozen=True)
class QuestionSpec:
    """What a lead asks: the key names it in exports and filters."""

    key: str
    kind: str
    prompt: str = ""
    options: Sequence[str] = ()
    required: bool = False


def list_questions(session: Session, collection: Collection) -> list[ReviewQuestion]:
    """The collection's questions in the order the review page asks them."""
    return list(
        session.scalars(
            select(ReviewQuestion)
            .where(ReviewQuestion.collection_id == collection.id)
            .order_by(ReviewQuestion.position, ReviewQuestion.id)
        )
    )


def get_question(session: Session, collection: Collection, key: str) -> ReviewQuestion:
    """The collection's question with this key; NotFound otherwise."""
    question = session.scalar(
        select(ReviewQuestion).where(
            ReviewQuestion.collection_id == collection.id, ReviewQuestion.key == key
        )
    )
    if question is None:
        raise NotFound(f"collection {collection.name!r} has no question {key!r}")
    return question


def _options(kind: str, options: Sequence[str]) -> list[str]:
    cleaned = [o.strip() for o in options if o.strip()]
    if kind in (QuestionKind.LABEL, QuestionKind.LABELS):
        if len(cleaned) < 2:
            raise InvalidInput(f"a {kind} question needs at least two options", field="options")
        if len(cleaned) > MAX_OPTIONS:
            raise InvalidInput(
                f"at most {MAX_OPTIONS} options (the keys 1 to 9 pick them)", field="options"
            )
        if len(set(cleaned)) != len(cleaned):
            raise InvalidInput("the options repeat one another", field="options")
        if any(len(o) > MAX_OPTION for o in cleaned):
            raise InvalidInput(f"an option is longer than {MAX_OPTION} characters")
        return cleaned
    if cleaned:
        raise InvalidInput(f"a {kind} question takes no options", field="options")
    return []


def add_question(
    session: Session, collection: Collection, spec: QuestionSpec, user: User | None = None
) -> ReviewQuestion:
    """Ask a new question of the collection's examples, after the ones it has."""
    key = spec.key.strip()
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"key {key!r}: a lowercase letter, then letters, digits, - or _ (64 at most)",
            field="key",
        )
    if spec.kind not in KINDS:
        raise InvalidInput(f"kind {spec.kind!r}: choose one of {', '.join(KINDS)}", field="kind")
    prompt = spec.prompt.strip()
    if len(prompt) > MAX_PROMPT:
        raise InvalidInput(f"the question is longer than {MAX_PROMPT:,} characters")
    options = _options(spec.kind, spec.options)
    existing = list_questions(session, collection)
    if any(q.key == key for q in existing):
        raise Conflict(f"collection {collection.name!r} already has a question {key!r}")
    if len(existing) >= MAX_QUESTIONS:
        raise InvalidInput(f"a collection asks at most {MAX_QUESTIONS} questions")
    question = ReviewQuestion(
        collection_id=collection.id,
        key=key,
        kind=spec.kind,
        prompt=prompt or key,
        options=options,
        required=spec.required,
        position=max((q.position for q in existing), default=-1) + 1,
        created_by_id=user.id if user else None,
    )
    session.add(question)
    session.flush()
    return question


def remove_question(session: Session, collection: Collection, key: str) -> int:
    """Stop asking a question; its answers go with it. Returns how many answers it had."""
    question = get_question(session, collection, key)
    answered = session.scalar(select(func.count()).where(ReviewAnswer.question_id == question.id))
    session.delete(question)
    session.flush()
    return answered or 0


def answer_counts(session: Session, collection: Collection) -> dict[str, int]:
    """Question key -> how many answers it has (every annotator's)."""
    rows = session.execute(
        select(ReviewQuestion.key, func.count(ReviewAnswer.id))
        .outerjoin(ReviewAnswer, ReviewAnswer.question_id == ReviewQuestion.id)
        .where(ReviewQuestion.collection_id == collection.id)
        .group_by(ReviewQuestion.key)
    )
    return {key: n for key, n in rows}


def variant_group(session: Session, example_id: int) -> list[int]:
    """The examples of the Evol-Quality group this example belongs to (the one the variants
    were grown from, and every variant), by id; [] when it belongs to none."""
    group = session.scalar(
        select(Provenance.variant_group).where(Provenance.example_id == example_id)
    )
    if group is None:
        grown_from = session.scalar(select(exists().where(Provenance.variant_group == example_id)))
        if not grown_from:
            return []
        group = example_id
    members = select(Provenance.example_id).where(Provenance.variant_group == group)
    ids = session.scalars(
        select(Example.id)
        .where((Example.id == group) | Example.id.in_(members))
        .order_by(Example.id)
    )
    found = list(ids)
    return found if len(found) >= 2 else []


def check_value(question: ReviewQuestion, value: Any, group: Sequence[int] = ()) -> Any:
    """The answer as stored, or InvalidInput saying what this question takes."""
    where = {"field": f"answers.{question.key}"}
    kind = question.kind
    if kind == QuestionKind.RATING:
        number = _whole(value)
        if number not in RATING_SCALE:
            raise InvalidInput(f"{question.key}: a rating is a whole number from 1 to 5", **where)
        return number
    if kind == QuestionKind.LABEL:
        if not isinstance(value, str) or value not in question.options:
            raise InvalidInput(
                f"{question.key}: choose one of {', '.join(question.options)}", **where
            )
        return value
    if kind == QuestionKind.LABELS:
        chosen = [value] if isinstance(value, str) else value
        if not isinstance(chosen, list) or not all(
            isinstance(v, str) and v in question.options for v in chosen
        ):
            raise InvalidInput(
                f"{question.key}: choose any of {', '.join(question.options)}", **where
            )
        return [o for o in question.options if o in chosen]
    if kind == QuestionKind.TEXT:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{question.key}: the answer is text", **where)
        if len(value) > MAX_TEXT_ANSWER:
            raise InvalidInput(
                f"{question.key}: longer than {MAX_TEXT_ANSWER:,} characters", **where
            )
        return value.strip()
    return _ranking(question, value, group)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _ranking(question: ReviewQuestion, value: Any, group: Sequence[int]) -> list[int]:
    where = {"field": f"answers.{question.key}"}
    if not group:
        raise InvalidInput(
            f"{question.key}: this example belongs to no Evol-Quality group: nothing to rank",
            **where,
        )
    items = value.split(",") if isinstance(value, str) else value
    order = [_whole(v) for v in items] if isinstance(items, list) else None
    if order is None or sorted(order, key=lambda v: v or 0) != sorted(group):
        listed = ", ".join(str(i) for i in group)
        raise InvalidInput(
            f"{question.key}: rank every variant of the group once, best first ({listed})",
            **where,
        )
    return [int(v) for v in order if v is not None]


def _check_answering(session: Session, user: User, collection: Collection, example_id: int) -> None:
    """An annotator answers about the example their queue leased them; a lead about any
    example of the collection nobody else holds."""
    member = session.scalar(
        select(
            exists().where(
                CollectionItem.collection_id == collection.id,
                CollectionItem.example_id == example_id,
            )
        )
    )
    if not member:
        raise NotFound(f"collection {collection.name!r} has no example {example_id}")
    lease = holder(session, example_id)
    if lease is not None and lease.user_id != user.id:
        name = session.scalar(select(User.name).where(User.id == lease.user_id))
        raise Conflict(
            f"example {example_id} is being reviewed by {name} until {lease.expires_at:%H:%M} UTC",
            held_by=name,
        )
    if lease is None and not user.has_role(Role.LEAD):
        raise Forbidden(
            f"example {example_id} is not yours to answer: take it from the queue first"
        )


def save_answers(
    session: Session,
    user: User,
    collection: Collection,
    example_id: int,
    answers: Mapping[str, Any],
) -> dict[str, Any]:
    """Record this person's answers about an example (a None value withdraws one); answering
    again replaces their earlier answer. Returns what was stored, by key."""
    if not answers:
        return {}
    questions = {q.key: q for q in list_questions(session, collection)}
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise InvalidInput(
            f"collection {collection.name!r} asks no question {', '.join(map(repr, unknown))}",
            field="answers",
        )
    withdrawn = {k for k, v in answers.items() if v is None}
    if withdrawn == set(answers) and not withdrawn & set(
        my_answers(session, user, collection, example_id)
    ):
        return {}  # nothing given and nothing to take back (a form's blank fields)
    _check_answering(session, user, collection, example_id)
    group = (
        variant_group(session, example_id)
        if any(questions[k].kind == QuestionKind.RANKING for k in answers)
        else []
    )
    stored: dict[str, Any] = {}
    for key, value in answers.items():
        question = questions[key]
        if value is None:
            session.execute(
                delete(ReviewAnswer).where(
                    ReviewAnswer.question_id == question.id,
                    ReviewAnswer.example_id == example_id,
                    ReviewAnswer.user_id == user.id,
                )
            )
            continue
        stored[key] = check_value(question, value, group)
        statement = conflict_insert(ReviewAnswer).values(
            question_id=question.id, example_id=example_id, user_id=user.id, value=stored[key]
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["question_id", "example_id", "user_id"],
                set_={"value": statement.excluded.value, "updated_at": utcnow()},
            )
        )
    return stored


def my_answers(
    session: Session, user: User, collection: Collection, example_id: int
) -> dict[str, Any]:
    """Question key -> this person's answer about the example."""
    rows = session.execute(
        select(ReviewQuestion.key, ReviewAnswer.value)
        .join(ReviewAnswer, ReviewAnswer.question_id == ReviewQuestion.id)
        .where(
            ReviewQuestion.collection_id == collection.id,
            ReviewAnswer.example_id == example_id,
            ReviewAnswer.user_id == user.id,
        )
    )
    return {key: value for key, value in rows}


def check_required(session: Session, user: User, collection: Collection, example_id: int) -> None:
    """MissingAnswers when an annotator decides without answering every required question (a
    ranking only where the example has variants to rank). Leads settling are not held to it."""
    if user.has_role(Role.LEAD):
        return
    required = [q for q in list_questions(session, collection) if q.required]
    if not required:
        return
    answered = my_answers(session, user, collection, example_id)
    missing = [
        q.key
        for q in required
        if q.key not in answered
        and (q.kind != QuestionKind.RANKING or variant_group(session, example_id))
    ]
    if missing:
        raise MissingAnswers(
            f"answer the required question{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} before deciding",
            field="answers",
            missing=missing,
        )


def from_form(
    questions: Sequence[ReviewQuestion], fields: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """A review form's `answer.KEY` fields as answers: several labels as a list, anything
    else its one value; a question whose fields are all blank is withdrawn (None)."""
    found: dict[str, Any] = {}
    for question in questions:
        if question.key not in fields:
            continue
        given = [v.replace("\r\n", "\n") for v in fields[question.key] if v.strip()]
        if question.kind == QuestionKind.LABELS:
            found[question.key] = given or None
        else:
            found[question.key] = given[-1] if given else None
    return found
