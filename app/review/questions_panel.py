"""The collection dashboard's questions panel: each question's answers as bars, its
agreement figures, and what the forms to add one need."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Collection
from app.review.answer_agreement import question_agreement
from app.review.answer_stats import distributions
from app.review.questions import KINDS, MAX_OPTIONS


def questions_panel(session: Session, collection: Collection) -> dict[str, Any]:
    """The panel's context: distributions, agreement per question key, and the kinds."""
    return {
        "question_stats": distributions(session, collection),
        "question_agreement": {a.key: a for a in question_agreement(session, collection)},
        "question_kinds": KINDS,
        "max_options": MAX_OPTIONS,
    }
