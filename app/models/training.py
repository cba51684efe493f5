"""Fine-tune runs and their metrics over steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Shown, never stored: the job says running but its worker stopped sending heartbeats.
    STALLED = "stalled"


class TrainingRun(IdMixin, CreatedMixin, Base):
    __tablename__ = "training_runs"

    snapshot_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("snapshots.id", ondelete="RESTRICT"), index=True
    )
    base_model: Mapped[str] = mapped_column(String(500))
    method: Mapped[str] = mapped_column(String(20), default="lora")
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    output_dir: Mapped[str | None] = mapped_column(String(500))
    # A double click, a client retry or a CLI launch run twice gives back the same run.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    artifacts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    logs: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainingMetric(IdMixin, Base):
    __tablename__ = "training_metrics"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("training_runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    epoch: Mapped[float | None] = mapped_column(Float)
