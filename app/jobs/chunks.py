"""Chunked jobs: a job planned into chunks, each run as its own task and transaction.

The job row stays `running` while its chunks run, on any number of workers. Each chunk
commits its writes together with its own `done` state, so a chunk that dies rolls back
whole and is simply run again; the last chunk to finish settles the job. Progress is
recomputed from the chunk rows, never incremented.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import transaction
from app.core.errors import SiftError
from app.jobs.runner import (
    JOB_KINDS,
    ChunkedWork,
    JobCancelled,
    JobKind,
    JobPaused,
    Listener,
    Progress,
    finish_job,
    pause_job,
)
from app.jobs.service import cancel_marker, on_commit
from app.models import ChunkState, Job, JobChunk, JobState
from app.models.base import utcnow

log = structlog.get_logger(__name__)


def key_ranges(keys: Sequence[str], size: int) -> list[dict[str, Any]]:
    """Chunk params for sorted keys: ranges [lo, hi] of `size` keys each, with their size."""
    return [
        {"lo": keys[i], "hi": keys[min(i + size, len(keys)) - 1], "size": len(keys[i : i + size])}
        for i in range(0, len(keys), size)
    ]


def enqueue_chunk(chunk_id: int, queue: str) -> None:
    """Hand a chunk to the workers of its queue."""
    from workers.celery_app import get_celery

    get_celery().send_task("sift.run_chunk", args=[chunk_id], queue=queue)


def start_chunked_job(
    job_id: int, kind: JobKind, *, listener: Listener | None = None, inline: bool = False
) -> str:
    """Plan the job's chunks (once), queue those not done, and settle it if nothing is left."""
    try:
        with transaction() as session:
            pending = _plan(session, job_id, kind, send=not inline)
    except SiftError as exc:
        finish_job(job_id, JobState.FAILED, exc.message)
        return JobState.FAILED.value
    if inline:
        for chunk_id in pending:
            state = execute_chunk(chunk_id, listener)
            if state in (JobState.CANCELLED.value, JobState.PAUSED_BUDGET.value, "failed"):
                break
    return settle_job(job_id, listener)


def _plan(session: Session, job_id: int, kind: JobKind, *, send: bool) -> list[int]:
    assert kind.chunked is not None
    job = session.get(Job, job_id)
    assert job is not None
    chunks = list(session.scalars(select(JobChunk).where(JobChunk.job_id == job_id)))
    if not chunks:
        total, plans = kind.chunked.plan(session, job)
        job.total = total
        chunks = [JobChunk(job_id=job_id, index=i, params=p) for i, p in enumerate(plans)]
        session.add_all(chunks)
        session.flush()
    # A re-run (resume, or a sweep after a dead worker) queues again what did not finish.
    pending = [c for c in chunks if c.state != ChunkState.DONE.value]
    for chunk in pending:
        chunk.state = ChunkState.QUEUED.value
        chunk.error = None
        if send:
            on_commit(session, partial(enqueue_chunk, chunk.id, job.queue))
    job.heartbeat_at = utcnow()
    return [c.id for c in pending]


class ChunkProgress(Progress):
    """Progress of one chunk: heartbeats go to the chunk and to its job."""

    def __init__(self, chunk_id: int, job_id: int, base: int, **kwargs: Any) -> None:
        super().__init__(job_id, **kwargs)
        self.chunk_id = chunk_id
        self.base = base  # what the job had done when this chunk started, for listeners

    def notify(self) -> None:
        """Tell the listener how far the whole job is."""
        if self.listener:
            self.listener(self.base + self.done, None)

    def store(self, session: Session) -> None:
        """Write the chunk's progress and heartbeat, and keep its job's heartbeat fresh."""
        now = utcnow()
        session.execute(
            update(JobChunk)
            .where(JobChunk.id == self.chunk_id)
            .values(done=self.done, heartbeat_at=now)
        )
        session.execute(update(Job).where(Job.id == self.job_id).values(heartbeat_at=now))


def _claim_chunk(chunk_id: int) -> tuple[JobChunk, Job] | None:
    """Mark a queued chunk running; None when it is done, taken, or its job is not running."""
    with transaction() as session:
        chunk = session.get(JobChunk, chunk_id, with_for_update=True)
        if chunk is None or chunk.state != ChunkState.QUEUED.value:
            return None
        job = session.get(Job, chunk.job_id)
        if job is None or job.state != JobState.RUNNING.value:
            return None
        if chunk.attempts >= get_settings().job_max_attempts:
            chunk.state = ChunkState.FAILED.value
            chunk.error = f"chunk {chunk.index} was cut off {chunk.attempts} times"
            return None
        chunk.state = ChunkState.RUNNING.value
        chunk.attempts += 1
        chunk.heartbeat_at = utcnow()
        session.flush()
        session.expunge(chunk)
        session.expunge(job)
        return chunk, job


def execute_chunk(chunk_id: int, listener: Listener | None = None) -> str:
    """Run one chunk in one transaction, then settle its job; safe to deliver twice."""
    claimed = _claim_chunk(chunk_id)
    if claimed is None:
        _settle_owner(chunk_id)
        return "skipped"
    chunk, job = claimed
    kind = JOB_KINDS[job.kind]
    # Only a listener in this process needs to know how far the whole job is.
    base = _chunks_done(job) if listener else 0
    assert kind.chunked is not None
    log.info("chunk.start", job_id=job.id, chunk=chunk.index, attempt=chunk.attempts)
    try:
        with transaction() as session:
            durable = session.get_bind().dialect.name != "sqlite"
            progress = ChunkProgress(chunk.id, job.id, base, durable=durable, listener=listener)
            live_job = session.get(Job, job.id)
            assert live_job is not None
            paused = _run_chunk(session, live_job, chunk, kind.chunked, progress)
    except JobCancelled:
        _release_chunk(chunk.id)
        return JobState.CANCELLED.value
    except Exception as exc:
        message = exc.message if isinstance(exc, SiftError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, SiftError):
            log.exception("chunk.crashed", job_id=job.id, chunk=chunk.index)
        _release_chunk(chunk.id, error=message)
        settle_job(job.id)
        return "failed"
    if paused:
        pause_job(job.id)
        settle_job(job.id, listener)
        return JobState.PAUSED_BUDGET.value
    log.info("chunk.done", job_id=job.id, chunk=chunk.index)
    return settle_job(job.id, listener)


def _run_chunk(
    session: Session, job: Job, chunk: JobChunk, work: ChunkedWork, progress: ChunkProgress
) -> bool:
    """Do the chunk and record it done; True when it stopped for the budget (what it did so
    far is kept, and the chunk waits in the queue's state for the job to resume)."""
    try:
        counts = work.run_chunk(session, job, chunk.params, progress)
        paused = False
    except JobPaused as stop:
        counts, paused = stop.counts, True
    session.refresh(job)
    if job.state == JobState.CANCELLED.value:
        raise JobCancelled()
    # Counts add up over runs: a chunk paused once reports both of its runs.
    total = dict(chunk.counts)
    add_counts(total, counts)
    values: dict[str, Any] = {"counts": total}
    if paused:
        values.update(state=ChunkState.QUEUED.value, done=progress.done)
    else:
        values.update(
            state=ChunkState.DONE.value, done=chunk.params.get("size", 0), finished_at=utcnow()
        )
    session.execute(update(JobChunk).where(JobChunk.id == chunk.id).values(**values))
    return paused


def _release_chunk(chunk_id: int, error: str | None = None) -> None:
    """Put a chunk back in the queue's state (or mark it failed) after its work rolled back."""
    with transaction() as session:
        session.execute(
            update(JobChunk)
            .where(JobChunk.id == chunk_id)
            .values(
                state=ChunkState.FAILED.value if error else ChunkState.QUEUED.value,
                error=error,
                done=0,
            )
        )


def _settle_owner(chunk_id: int) -> None:
    with transaction() as session:
        job_id = session.scalar(select(JobChunk.job_id).where(JobChunk.id == chunk_id))
    if job_id is not None:
        settle_job(job_id)


def _job_done(total: int | None, chunks: Sequence[Any]) -> int:
    """What the job has done: what needed no chunk, and what each chunk has done."""
    planned = sum(chunk.params.get("size", 0) for chunk in chunks)
    return max((total or 0) - planned, 0) + sum(chunk.done for chunk in chunks)


def _chunks_done(job: Job) -> int:
    with transaction() as session:
        rows = session.execute(
            select(JobChunk.params, JobChunk.done).where(JobChunk.job_id == job.id)
        ).all()
    return _job_done(job.total, rows)


def add_counts(total: dict[str, Any], counts: dict[str, Any]) -> None:
    """Add one chunk's counts into a running total (numbers add, other values overwrite)."""
    for key, value in counts.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value


def settle_job(job_id: int, listener: Listener | None = None) -> str:
    """Recompute a chunked job's progress and counts from its chunks; end it when they have."""
    with transaction() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            return "skipped"
        # Plain columns, read once: this runs after every chunk of a job.
        chunks = session.execute(
            select(JobChunk.state, JobChunk.params, JobChunk.done, JobChunk.counts, JobChunk.error)
            .where(JobChunk.job_id == job_id)
            .order_by(JobChunk.index)
        ).all()
        counts: dict[str, Any] = {}
        for chunk in chunks:
            add_counts(counts, chunk.counts)
        job.counts = counts
        job.done = _job_done(job.total, chunks)
        if listener:
            listener(job.done, job.total, counts)
        if job.state != JobState.RUNNING.value:
            return job.state
        failed = [c for c in chunks if c.state == ChunkState.FAILED.value]
        if failed:
            job.state = JobState.FAILED.value
            job.error = failed[0].error
        elif all(c.state == ChunkState.DONE.value for c in chunks):
            job.state = JobState.SUCCEEDED.value
        else:
            return job.state
        job.finished_at = utcnow()
        cancel_marker(job_id).unlink(missing_ok=True)
        log.info("job.done", job_id=job_id, state=job.state, counts=counts)
        return job.state


def sweep_stale_chunks(session: Session) -> list[int]:
    """Queue again the chunks of running jobs whose worker stopped sending heartbeats."""
    cutoff = utcnow() - timedelta(seconds=get_settings().job_stale_after_s)
    stale = session.execute(
        select(JobChunk, Job.queue)
        .join(Job, Job.id == JobChunk.job_id)
        .where(
            Job.state == JobState.RUNNING.value,
            JobChunk.state == ChunkState.RUNNING.value,
            JobChunk.heartbeat_at < cutoff,
        )
    ).all()
    for chunk, queue in stale:
        chunk.state = ChunkState.QUEUED.value
        chunk.done = 0
        on_commit(session, partial(enqueue_chunk, chunk.id, queue))
    return [chunk.id for chunk, _ in stale]
