"""Near-duplicate clusters and saved selection recipes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum


class DuplicateMethod(StrEnum):
    EXACT = "exact"
    MINHASH = "minhash"
    EMBEDDING = "embedding"


class DuplicateCluster(IdMixin, CreatedMixin, Base):
    """Examples of one dataset that one method found to be near-duplicates of each other."""

    __tablename__ = "duplicate_clusters"

    dataset_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(20))
    # What the method ran with (threshold, shingle size, embedding model...).
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # The member kept by "one per cluster": the best-scored, else the oldest.
    representative_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE")
    )
    size: Mapped[int] = mapped_column(Integer)


class DuplicateMember(IdMixin, Base):
    __tablename__ = "duplicate_members"
    __table_args__ = (UniqueConstraint("cluster_id", "example_id"),)

    cluster_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("duplicate_clusters.id", ondelete="CASCADE")
    )
    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), index=True
    )


class Selection(IdMixin, CreatedMixin, Base):
    """A saved, named selection recipe: the same inputs and seed give the same set."""

    __tablename__ = "selections"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    method: Mapped[str] = mapped_column(String(20))  # threshold | deita | lima-quota | random
    dataset_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
