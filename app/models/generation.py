"""Where a generated example came from: method, round, parent, prompt, endpoint and model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum


class GenerationMethod(StrEnum):
    SELF_INSTRUCT = "self-instruct"
    EVOL_INSTRUCT = "evol-instruct"
    EVOL_QUALITY = "evol-quality"


class Provenance(IdMixin, CreatedMixin, Base):
    """One generated example's origin; at most one row per example."""

    __tablename__ = "generation_provenance"

    example_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="CASCADE"), unique=True
    )
    method: Mapped[str] = mapped_column(String(20))
    # The evolution round (1 for the first); 1 for Self-Instruct.
    round: Mapped[int] = mapped_column(Integer, default=1)
    parent_example_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("examples.id", ondelete="SET NULL"), index=True
    )
    # The prompt that produced the example's new content, exactly as sent.
    prompt: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    # Evol-Quality: the example every variant of one answer was grown from (its group).
    variant_group: Mapped[int | None] = mapped_column(BigId, index=True)
    # The operation (e.g. "deepen", "helpfulness") and anything else worth showing.
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
