"""Human review: who decided what about an example, and who holds it right now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, StrEnum


class ReviewAction(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    EDIT = "edit"
    WRITE = "write"
    SKIP = "skip"


class ReviewDecision(IdMixin, CreatedMixin, Base):
    """One decision of one annotator; undo marks it undone and restores what it changed."""

    __tablename__ = "review_decisions"
    __table_args__ = (
        Index("ix_review_decisions_user_id_created_at", "user_id", "created_at"),
        Index(
            "ix_review_decisions_unchecked",
            "id",
            postgresql_where=text("checked_at IS NULL AND undone_at IS NULL"),
        ),
        Index(
            "ix_review_decisions_sent_back",
            "user_id",
            postgresql_where=text("\"check\" = 'sent_back'"),
        ),
    )

    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    # The collection whose queue it was made in; None for a dataset's queue.
    collection_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    # What undo puts back: the example's status before, and the revision an edit made.
    status_before: Mapped[str] = mapped_column(String(20))
    revision_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("revisions.id", ondelete="SET NULL")
    )
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A lead's second pass over an annotator's decision: approved, fixed (edited by the lead,
    # then approved) or sent back (withdrawn, with a note, for the annotator to do again).
    check: Mapped[str | None] = mapped_column(String(20))
    check_note: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_by: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )


class ReviewCheck(StrEnum):
    APPROVED = "approved"
    FIXED = "fixed"
    SENT_BACK = "sent_back"


class ReviewLease(Base):
    """An example handed to one annotator; nobody else is given it until the lease expires."""

    __tablename__ = "review_leases"

    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ReviewAssignment(CreatedMixin, Base):
    """An example set aside for one annotator by a lead: it goes to their queue first, and to
    nobody else's (several assignees share it, for a collection reviewed by several)."""

    __tablename__ = "review_assignments"
    # "What is assigned to me" walks this index in id order.
    __table_args__ = (Index("ix_review_assignments_user_id_example_id", "user_id", "example_id"),)

    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    assigned_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
