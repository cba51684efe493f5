"""The set being assembled, what is in it, and its frozen snapshots."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json
from app.models.datasets import ExampleContent


class Collection(IdMixin, CreatedMixin, Base):
    __tablename__ = "collections"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    target_size: Mapped[int] = mapped_column(Integer, default=1000)
    # {"source": {"stackexchange/physics": 200, ...}} or {"category": {...}}
    quotas: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    recipes: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # How many different annotators decide each example, and how their decisions become its
    # status: "majority" (more than half agree) or "unanimous". With 1, a decision is final.
    overlap: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    consensus: Mapped[str] = mapped_column(
        String(20), default="majority", server_default="majority"
    )


class CollectionItem(IdMixin, CreatedMixin, Base):
    __tablename__ = "collection_items"
    __table_args__ = (UniqueConstraint("collection_id", "example_id"),)

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("collections.id", ondelete="CASCADE")
    )
    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), index=True
    )
    added_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    recipe: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")


class Snapshot(IdMixin, CreatedMixin, Base):
    """An immutable copy of a collection; `digest` hashes its items in order."""

    __tablename__ = "snapshots"

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("collections.id", ondelete="RESTRICT"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    example_count: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # Frozen from the accepted examples only (otherwise accepted and unreviewed ones); rejected
    # examples are never frozen. `left_out` counts what stayed behind, by review status.
    only_accepted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    left_out: Mapped[dict[str, int]] = mapped_column(
        Json, default=dict, server_default=text("'{}'::jsonb")
    )


class SnapshotItem(IdMixin, ExampleContent, Base):
    """A frozen example: its content is copied, never read from the live row."""

    __tablename__ = "snapshot_items"
    __table_args__ = (UniqueConstraint("snapshot_id", "position"),)

    snapshot_id: Mapped[int] = mapped_column(BigId, ForeignKey("snapshots.id", ondelete="CASCADE"))
    # The example's review status when it was frozen (None in snapshots made before statuses
    # were frozen).
    status: Mapped[str | None] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    example_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="SET NULL")
    )
    # The answers to the collection's questions when it was frozen: {key: {annotator: value}}
    # (None when there were none).
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
