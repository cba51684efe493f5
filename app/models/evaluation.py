"""Pairwise evaluations: two models, a test set, a judge, verdicts in both answer orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json


class EvalRun(IdMixin, CreatedMixin, Base):
    __tablename__ = "eval_runs"

    model_a: Mapped[str] = mapped_column(String(500))
    model_b: Mapped[str] = mapped_column(String(500))
    test_set: Mapped[str] = mapped_column(String(200))
    judge: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    wins: Mapped[int] = mapped_column(Integer, default=0)
    ties: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EvalItem(IdMixin, Base):
    __tablename__ = "eval_items"
    __table_args__ = (UniqueConstraint("run_id", "prompt_id"),)

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("eval_runs.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(100))
    prompt: Mapped[str] = mapped_column(Text)
    answer_a: Mapped[str | None] = mapped_column(Text)
    answer_b: Mapped[str | None] = mapped_column(Text)
    # "a", "b", "tie" or "error" for the order (a, b) and the swapped order (b, a).
    verdict_ab: Mapped[str | None] = mapped_column(String(10))
    verdict_ba: Mapped[str | None] = mapped_column(String(10))
    verdict: Mapped[str | None] = mapped_column(String(10))
    raw: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
