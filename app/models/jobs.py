"""Background jobs and their progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED_BUDGET = "paused_budget"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class Job(IdMixin, CreatedMixin, Base):
    __tablename__ = "jobs"

    kind: Mapped[str] = mapped_column(String(50), index=True)
    queue: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED.value, index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A client-chosen key: the same key twice gives the same job (double clicks, retries).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    dataset_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Spend limit in USD for jobs that call priced LLM endpoints. A call reserves its largest
    # possible cost before it is sent and settles to the real cost when it returns.
    budget_usd: Mapped[float | None] = mapped_column(Float)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0)
    # When its message was last handed to the broker: a job still queued long after is sent
    # again (a message lost with a broker restart or a killed worker).
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The furthest `done` any attempt reached: an attempt cut off past it made progress, so
    # its worker's death does not count against the job's attempts.
    progress_mark: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_terminal(self) -> bool:
        """True once the job can no longer change state by itself."""
        return JobState(self.state) in TERMINAL_STATES


class ChunkState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobChunk(IdMixin, Base):
    """One slice of a chunked job, run as its own task and committed on its own."""

    __tablename__ = "job_chunks"
    __table_args__ = (UniqueConstraint("job_id", "index"),)

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(20), default=ChunkState.QUEUED.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # as on Job
    progress_mark: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LLMBatch(IdMixin, CreatedMixin, Base):
    """One OpenAI Batch API batch that a job (or one of its chunks) submitted: its ids on the
    provider, what it asked, and what came back. A restarted worker polls it again instead of
    submitting the same requests twice."""

    __tablename__ = "llm_batches"

    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    chunk_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("job_chunks.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    # Sent as the batch's metadata, so that a batch created just before a crash is found again.
    marker: Mapped[str] = mapped_column(String(64), unique=True)
    # "submitting" until the provider has it, then the provider's status (validating,
    # in_progress, finalizing, completed, failed, expired, cancelling, cancelled).
    status: Mapped[str] = mapped_column(String(20), default="submitting")
    input_file_id: Mapped[str | None] = mapped_column(String(200))
    batch_id: Mapped[str | None] = mapped_column(String(200))
    output_file_id: Mapped[str | None] = mapped_column(String(200))
    error_file_id: Mapped[str | None] = mapped_column(String(200))
    # request hash -> the response cache's payload of that request
    requests: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    request_counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # request hash -> why no answer came back for it (reported per record, never a number)
    failures: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    reserved_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Its answers are in the response cache and its cost is charged.
    collected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The unit of work that asked has committed what the answers gave.
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
