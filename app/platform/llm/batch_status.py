"""How a job's Batch API batches stand, for the jobs page, `sift jobs show` and the API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import LLMBatch


@dataclass(frozen=True)
class BatchView:
    """One batch of a job, as the provider last described it."""

    id: int
    chunk_id: int | None
    endpoint: str
    batch_id: str | None
    status: str
    total: int
    completed: int
    failed: int
    unanswered: int  # requests that came back with no answer (reported per record)
    reserved_usd: float
    cost_usd: float
    error: str | None
    created_at: datetime
    collected: bool

    def as_dict(self) -> dict[str, Any]:
        """The batch as JSON-ready values."""
        values = asdict(self)
        values["created_at"] = self.created_at.isoformat()
        return values


def job_batches(session: Session, job_ids: Sequence[int]) -> dict[int, list[BatchView]]:
    """The batches of each job, oldest first (jobs without any are left out)."""
    if not job_ids:
        return {}
    rows = session.scalars(
        select(LLMBatch).where(LLMBatch.job_id.in_(list(job_ids))).order_by(LLMBatch.id)
    )
    found: dict[int, list[BatchView]] = {}
    for row in rows:
        counts = row.request_counts or {}
        found.setdefault(row.job_id, []).append(
            BatchView(
                id=row.id,
                chunk_id=row.chunk_id,
                endpoint=row.endpoint,
                batch_id=row.batch_id,
                status=row.status,
                total=int(counts.get("total") or len(row.requests)),
                completed=int(counts.get("completed") or 0),
                failed=int(counts.get("failed") or 0),
                unanswered=len(row.failures or {}),
                reserved_usd=row.reserved_usd,
                cost_usd=row.cost_usd,
                error=row.error,
                created_at=row.created_at,
                collected=row.collected_at is not None,
            )
        )
    return found


def summary_line(batches: Sequence[BatchView]) -> str:
    """One line for a job's batches: their states, and how many requests came back."""
    states = Counter(batch.status for batch in batches)
    order = sorted(states, key=lambda s: (s in ("completed", "failed", "expired", "cancelled"), s))
    shown = ", ".join(f"{states[s]} {s}" for s in order)
    total = sum(batch.total for batch in batches)
    done = sum(batch.completed for batch in batches)
    failed = sum(batch.failed for batch in batches)
    noun = "batch" if len(batches) == 1 else "batches"
    line = f"Batch API: {len(batches)} {noun} ({shown}), {done:,} of {total:,} requests answered"
    return line + (f", {failed:,} failed" if failed else "")


def waiting_on_batches(session: Session, job_ids: Sequence[int]) -> set[int]:
    """The jobs among `job_ids` that have a batch not collected yet."""
    if not job_ids:
        return set()
    return set(
        session.scalars(
            select(LLMBatch.job_id)
            .where(LLMBatch.job_id.in_(list(job_ids)), LLMBatch.collected_at.is_(None))
            .distinct()
        )
    )


def reserved_by_open_batches(session: Session, job_id: int) -> float:
    """What the job's batches not yet collected hold in its budget."""
    held = session.scalar(
        select(func.coalesce(func.sum(LLMBatch.reserved_usd), 0.0)).where(
            LLMBatch.job_id == job_id, LLMBatch.collected_at.is_(None)
        )
    )
    return float(held or 0.0)


def short_state(session: Session, job_id: int) -> str | None:
    """The job's batches in a few words ("in_progress 40/100"), None when it has none."""
    views = job_batches(session, [job_id]).get(job_id)
    if not views:
        return None
    open_views = [view for view in views if not view.collected] or views[-1:]
    states = "+".join(sorted({view.status for view in open_views}))
    done = sum(view.completed + view.failed for view in open_views)
    return f"{states} {done:,}/{sum(view.total for view in open_views):,}"


def batch_lines(session: Session, job_ids: Sequence[int]) -> dict[int, str]:
    """A summary line for each job that has batches."""
    return {job_id: summary_line(views) for job_id, views in job_batches(session, job_ids).items()}
