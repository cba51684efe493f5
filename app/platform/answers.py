"""The answers to a collection's review questions, per example and per annotator, as exports
and snapshots carry them: `{question key: {annotator: value}}`. Here in the platform because
exports (datasets) and snapshots (collections) read them and review, which owns them, sits
beside those domains, not below them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.models import ReviewAnswer, ReviewQuestion, SnapshotItem, User

Answers = dict[str, dict[str, Any]]
CHUNK = 5_000


def question_keys(session: Session, collection_id: int) -> list[str]:
    """The keys of a collection's questions, in the order the review page asks them."""
    return list(
        session.scalars(
            select(ReviewQuestion.key)
            .where(ReviewQuestion.collection_id == collection_id)
            .order_by(ReviewQuestion.position, ReviewQuestion.id)
        )
    )


def answers_by_example(
    session: Session, collection_id: int, example_ids: Sequence[int]
) -> dict[int, Answers]:
    """Example id -> every question key of the collection -> annotator name -> their answer
    (an empty dict for a question nobody answered yet); {} when the collection asks none."""
    keys = question_keys(session, collection_id)
    if not keys or not example_ids:
        return {}
    found: dict[int, Answers] = {i: {key: {} for key in keys} for i in example_ids}
    wanted = list(found)
    for start in range(0, len(wanted), CHUNK):  # a snapshot of a big collection asks for all
        rows = session.execute(
            select(ReviewAnswer.example_id, ReviewQuestion.key, User.name, ReviewAnswer.value)
            .join(ReviewQuestion, ReviewQuestion.id == ReviewAnswer.question_id)
            .join(User, User.id == ReviewAnswer.user_id)
            .where(
                ReviewQuestion.collection_id == collection_id,
                ReviewAnswer.example_id.in_(wanted[start : start + CHUNK]),
            )
            .order_by(User.name)
        )
        for example_id, key, annotator, value in rows:
            found[example_id][key][annotator] = value
    return found


def snapshot_has_answers(session: Session, snapshot_id: int) -> bool:
    """True when the snapshot froze answers to questions (its collection asked some then)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    SnapshotItem.snapshot_id == snapshot_id, SnapshotItem.answers.is_not(None)
                )
            )
        )
    )
