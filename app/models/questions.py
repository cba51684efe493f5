"""Questions a lead asks about a collection's examples beyond accept and reject, and each
annotator's answers to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum, utcnow


class QuestionKind(StrEnum):
    RATING = "rating"  # a whole number from 1 to 5
    LABEL = "label"  # one of the options
    LABELS = "labels"  # any number of the options
    TEXT = "text"  # free text
    RANKING = "ranking"  # the variants of the example's Evol-Quality group, best first


class ReviewQuestion(IdMixin, CreatedMixin, Base):
    """One question of a collection, named by a key that exports and filters use."""

    __tablename__ = "review_questions"
    __table_args__ = (UniqueConstraint("collection_id", "key"),)

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    prompt: Mapped[str] = mapped_column(Text, default="")
    # The choices of a label or labels question, in the order the keys 1-9 pick them.
    options: Mapped[list[str]] = mapped_column(Json, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )


class ReviewAnswer(IdMixin, CreatedMixin, Base):
    """One person's answer to one question about one example; answering again replaces it
    (each annotator's answer is kept apart, as their decisions are)."""

    __tablename__ = "review_answers"
    __table_args__ = (UniqueConstraint("question_id", "example_id", "user_id"),)

    question_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("review_questions.id", ondelete="CASCADE")
    )
    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # An int (rating), a string (label, text), a list of strings (labels) or of example ids
    # (ranking, best first).
    value: Mapped[Any] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), onupdate=utcnow
    )
