"""Pools of candidate examples, the examples themselves, and every change to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum, utcnow


class ExampleStatus(StrEnum):
    CANDIDATE = "candidate"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Origin(StrEnum):
    IMPORT = "import"
    GENERATED = "generated"
    WRITTEN = "written"


class Dataset(IdMixin, CreatedMixin, Base):
    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )

    examples: Mapped[list[Example]] = relationship(back_populates="dataset", passive_deletes=True)


class ExampleContent:
    """The content of an example, shared by live examples and frozen snapshot items."""

    # Canonical content: [{"role": "system"|"user"|"assistant", "content": str}, ...]
    messages: Mapped[list[dict[str, str]]] = mapped_column(Json)
    # Single-turn Alpaca-style fields, kept so that export in the source format round-trips.
    instruction: Mapped[str | None] = mapped_column(Text)
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(200))
    # Fields of the source record that Sift has no column for, exported back unchanged.
    meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    external_id: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(32))
    # The format the record came in and its keys in order, for an exact round trip.
    source_format: Mapped[str | None] = mapped_column(String(20))
    source_keys: Mapped[list[str] | None] = mapped_column(Json)


# The text that full-text filters match: every message's content as a 'simple' tsvector (no
# stemming, no stop words; messages hold instruction, input and output too). Stored, so that a
# search reads it instead of parsing text; kept by a trigger on every insert and change of
# `messages` (migration 0025, which spells the same expression), except in a large import,
# which leaves it NULL for a job to fill (app/datasets/search_index.py).
SEARCH_TEXT = (
    "jsonb_to_tsvector('simple'::regconfig, "
    "jsonb_path_query_array(messages, '$[*].content'::jsonpath), '[\"string\"]'::jsonb)"
)


class Example(IdMixin, CreatedMixin, ExampleContent, Base):
    __tablename__ = "examples"
    __table_args__ = (
        UniqueConstraint("dataset_id", "content_hash"),
        Index("ix_examples_dataset_id_id", "dataset_id", "id"),
        # Review queues walk a dataset's undecided examples in id order.
        Index("ix_examples_dataset_id_status_id", "dataset_id", "status", "id"),
        # The dashboard's exact status counts read this index alone (no id: small, deduplicated).
        Index(
            "ix_examples_dataset_id_status_source_category",
            "dataset_id",
            "status",
            "source",
            "category",
        ),
        Index("ix_examples_content_hash", "content_hash"),
        Index("ix_examples_search", "search_text", postgresql_using="gin"),
        # The rows a large import left for the search-index job (none once it has run).
        Index(
            "ix_examples_unsearched",
            "dataset_id",
            "id",
            postgresql_where=text("search_text IS NULL"),
        ),
    )

    dataset_id: Mapped[int] = mapped_column(BigId, ForeignKey("datasets.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(20), default=Origin.IMPORT.value)
    status: Mapped[str] = mapped_column(String(20), default=ExampleStatus.CANDIDATE.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), onupdate=utcnow)
    # Deferred: only a search's WHERE reads it, never a loaded example. Written by the trigger
    # and the search-index job only.
    search_text: Mapped[str | None] = mapped_column(TSVECTOR, deferred=True)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (read once by the mapper)

    dataset: Mapped[Dataset] = relationship(back_populates="examples")


class Revision(IdMixin, CreatedMixin, Base):
    __tablename__ = "revisions"

    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any]] = mapped_column(Json)
    after: Mapped[dict[str, Any]] = mapped_column(Json)
