"""Chunked jobs: a job planned into chunks, each run as its own task and transaction.

The job row stays `running` while its chunks run, on any number of workers. Each chunk
commits its writes together with its own `done` state, so a chunk that dies rolls back
whole and is simply run again; whichever chunk finishes last settles the job. Progress is
recomputed from the chunk rows, never incremented.

Nothing here holds a lock across work: a chunk's heartbeats and progress go to its own row
(from its own worker only), claiming and settling are single short transactions, and settling
a job serialises on an advisory lock instead of the job's row, so a chunk whose unit of work
references the job (a score's job_id) never makes another connection wait.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog
from sqlalchemy import Table, select, text, update
from sqlalchemy.orm import Session

from app.models import ChunkState, Job, JobChunk, JobState
from app.models.base import utcnow
from app.platform.config import get_settings
from app.platform.db import on_commit, retrying, transaction
from app.platform.errors import SiftError
from app.platform.jobs.batch_wait import (
    WAITING,
    open_scope,
    poll_interval_s,
    tell_listener,
    wait_chunk,
)
from app.platform.jobs.heartbeat import beating, touch
from app.platform.jobs.lifecycle import finish_job, pause_job
from app.platform.jobs.progress import JobCancelled, JobPaused, Listener, Progress, job_state
from app.platform.jobs.registry import JOB_KINDS, ChunkedWork, JobKind
from app.platform.llm.batch_scope import BatchPending, BatchScope, active

log = structlog.get_logger(__name__)
_CHUNKS: Table = JobChunk.__table__  # type: ignore[assignment]
# The advisory lock class under which a job's settling is serialised (the job id is the key).
_SETTLE_LOCK = 51_001


def key_ranges(keys: Sequence[str], size: int) -> list[dict[str, Any]]:
    """Chunk params for sorted keys: ranges [lo, hi] of `size` keys each, with their size."""
    return [
        {"lo": keys[i], "hi": keys[min(i + size, len(keys)) - 1], "size": len(keys[i : i + size])}
        for i in range(0, len(keys), size)
    ]


def enqueue_chunk(chunk_id: int, queue: str) -> None:
    """Hand a chunk to the workers of its queue."""
    from app.platform.jobs.broker import get_celery

    get_celery().send_task("sift.run_chunk", args=[chunk_id], queue=queue)


def start_chunked_job(
    job_id: int, kind: JobKind, *, listener: Listener | None = None, inline: bool = False
) -> str:
    """Plan the job's chunks (once), queue those not done, and settle it if nothing is left."""
    try:
        pending = retrying(lambda session: _plan(session, job_id, kind, send=not inline))
    except SiftError as exc:
        finish_job(job_id, JobState.FAILED, exc.message)
        return JobState.FAILED.value
    except Exception as exc:
        # A job whose plan crashed must not stay running until the sweeper notices.
        log.exception("job.plan_crashed", job_id=job_id)
        finish_job(job_id, JobState.FAILED, f"{type(exc).__name__}: {exc}")
        return JobState.FAILED.value
    while inline and pending:
        waiting = []
        for chunk_id in pending:
            state = execute_chunk(chunk_id, listener, send=False)
            if state in (JobState.CANCELLED.value, JobState.PAUSED_BUDGET.value, "failed"):
                return settle_job(job_id, listener)
            if state == WAITING:
                waiting.append(chunk_id)
        if waiting:
            tell_listener(listener, job_id)
            time.sleep(poll_interval_s())
        pending = waiting
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
    # A re-run (resume) queues again what did not finish; a chunk still running is left to
    # its worker (or to the sweeper, if that worker died).
    pending = [c for c in chunks if c.state in (ChunkState.QUEUED.value, ChunkState.FAILED.value)]
    now = utcnow()
    for chunk in pending:
        chunk.state = ChunkState.QUEUED.value
        chunk.error = None
        chunk.sent_at = now
        if send:
            on_commit(session, partial(enqueue_chunk, chunk.id, job.queue))
    job.heartbeat_at = now
    return [c.id for c in pending]


class ChunkProgress(Progress):
    """Progress of one chunk: it goes to the chunk's own row."""

    def __init__(self, chunk_id: int, job_id: int, base: int, **kwargs: Any) -> None:
        super().__init__(job_id, **kwargs)
        self.chunk_id = chunk_id
        self.base = base  # what the job had done when this chunk started, for listeners

    def notify(self) -> None:
        """Tell the listener how far the whole job is."""
        if self.listener:
            self.listener(self.base + self.done, None)

    def store(self) -> None:
        """Write the chunk's progress and heartbeat."""
        touch(_CHUNKS, self.chunk_id, done=self.done)


def _claim_chunk(chunk_id: int) -> JobChunk | None:
    """Mark a queued chunk of a running job running, in one statement; None when it is done,
    taken, or its job is not running. A chunk cut off too often fails instead."""
    max_attempts = get_settings().job_max_attempts

    def claim(session: Session) -> JobChunk | None:
        running_job = (
            select(Job.id)
            .where(Job.id == JobChunk.job_id, Job.state == JobState.RUNNING.value)
            .exists()
        )
        chunk = session.scalar(
            update(JobChunk)
            .where(JobChunk.id == chunk_id, JobChunk.state == ChunkState.QUEUED.value, running_job)
            .values(
                state=ChunkState.RUNNING.value,
                attempts=JobChunk.attempts + 1,
                heartbeat_at=utcnow(),
                done=0,
            )
            .returning(JobChunk)
        )
        if chunk is not None and chunk.attempts > max_attempts:
            chunk.state = ChunkState.FAILED.value
            chunk.error = f"chunk {chunk.index} was cut off {chunk.attempts - 1} times"
            return None
        return chunk

    return retrying(claim)


def execute_chunk(chunk_id: int, listener: Listener | None = None, *, send: bool = True) -> str:
    """Run one chunk in one transaction, then settle its job; safe to deliver twice. A chunk
    of a Batch API job that waits on its batches is queued again (sent later unless `send`
    is False: its caller runs it again itself)."""
    chunk = _claim_chunk(chunk_id)
    if chunk is None:
        _settle_owner(chunk_id)
        return "skipped"
    with transaction() as session:
        job = session.get(Job, chunk.job_id)
        assert job is not None
    kind = JOB_KINDS[job.kind]
    assert kind.chunked is not None
    # Only a listener in this process needs to know how far the whole job is.
    base = _chunks_done(job) if listener else 0
    log.info("chunk.start", job_id=job.id, chunk=chunk.index, attempt=chunk.attempts)
    scope = open_scope(job, chunk.id)
    try:
        if scope is not None and scope.refresh():
            return wait_chunk(chunk.id, job.queue, send=send)
        with beating(_CHUNKS, chunk.id), transaction() as session, active(scope):
            progress = ChunkProgress(chunk.id, job.id, base, listener=listener)
            live_job = session.get(Job, job.id)
            assert live_job is not None
            paused = _run_chunk(session, live_job, chunk, kind.chunked, progress, scope)
    except BatchPending:
        assert scope is not None
        if job_state(job.id) == JobState.CANCELLED.value:
            _release_chunk(chunk.id)
            return JobState.CANCELLED.value
        if scope.submit():
            return wait_chunk(chunk.id, job.queue, send=send)
        _release_chunk(chunk.id)
        paused = True
    except JobCancelled:
        _release_chunk(chunk.id)
        return job_state(job.id) or JobState.CANCELLED.value
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
    session: Session,
    job: Job,
    chunk: JobChunk,
    work: ChunkedWork,
    progress: ChunkProgress,
    scope: BatchScope | None = None,
) -> bool:
    """Do the chunk and record it done; True when it stopped for the budget (what it did so
    far is kept, and the chunk waits in the queue's state for the job to resume)."""
    try:
        counts = work.run_chunk(session, job, chunk.params, progress)
        paused = False
    except JobPaused as stop:
        counts, paused = stop.counts, True
    if scope is not None:
        scope.finish(session)  # BatchPending when it asked for something new
    # A plain read: a cancel that landed after the last check still wins.
    if session.scalar(select(Job.state).where(Job.id == job.id)) == JobState.CANCELLED.value:
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
    # Only while this worker still owns it (the sweeper may have taken it back meanwhile).
    written = session.execute(
        update(JobChunk)
        .where(JobChunk.id == chunk.id, JobChunk.state == ChunkState.RUNNING.value)
        .values(**values)
    )
    if getattr(written, "rowcount", 0) != 1:
        raise JobCancelled()
    return paused


def _release_chunk(chunk_id: int, error: str | None = None) -> None:
    """Put a chunk back in the queue's state (or mark it failed) after its work rolled back."""
    retrying(
        lambda session: session.execute(
            update(JobChunk)
            .where(JobChunk.id == chunk_id, JobChunk.state == ChunkState.RUNNING.value)
            .values(
                state=ChunkState.FAILED.value if error else ChunkState.QUEUED.value,
                error=error,
                done=0,
            )
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
    settled = retrying(lambda session: _settle(session, job_id))
    if settled is None:
        return "skipped"
    state, done, total, counts = settled
    if listener:
        listener(done, total, counts)
    return state


def _settle(session: Session, job_id: int) -> tuple[str, int, int | None, dict[str, Any]] | None:
    # Settles of one job run one at a time (each after its chunk committed), so the last one
    # sees every chunk; the lock is released with this short transaction.
    session.execute(
        text("SELECT pg_advisory_xact_lock(:kind, :job)"), {"kind": _SETTLE_LOCK, "job": job_id}
    )
    job = session.execute(select(Job.state, Job.total).where(Job.id == job_id)).one_or_none()
    if job is None:
        return None
    chunks = session.execute(
        select(JobChunk.state, JobChunk.params, JobChunk.done, JobChunk.counts, JobChunk.error)
        .where(JobChunk.job_id == job_id)
        .order_by(JobChunk.index)
    ).all()
    counts: dict[str, Any] = {}
    # What needed no chunk (scored, embedded, answered before): said, not left as a blank.
    already = (job.total or 0) - sum(int(c.params.get("size", 0)) for c in chunks)
    if already > 0:
        counts["already_done"] = already
    for chunk in chunks:
        add_counts(counts, chunk.counts)
    done = _job_done(job.total, chunks)
    values: dict[str, Any] = {"counts": counts, "done": done}
    state = job.state
    if state == JobState.RUNNING.value:
        failed = [c for c in chunks if c.state == ChunkState.FAILED.value]
        if failed:
            state = JobState.FAILED.value
            values.update(state=state, error=failed[0].error, finished_at=utcnow())
        elif all(c.state == ChunkState.DONE.value for c in chunks):
            state = JobState.SUCCEEDED.value
            values.update(state=state, finished_at=utcnow())
    session.execute(update(Job).where(Job.id == job_id, Job.state == job.state).values(**values))
    if state != job.state:
        log.info("job.done", job_id=job_id, state=state, counts=counts)
    return state, done, job.total, counts
