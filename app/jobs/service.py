"""Creating, listing, cancelling and resuming jobs. Jobs are enqueued only after commit."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Conflict, InvalidInput, NotFound
from app.models import ChunkState, Job, JobChunk, JobState, User
from app.models.base import utcnow

QUEUES = ("io", "cpu", "gpu")
_AFTER_COMMIT = "sift_after_commit"


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed: never if it rolls back,
    nor if the savepoint it was registered in rolls back."""
    registered_in = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_AFTER_COMMIT, []).append((registered_in, callback))


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for _, callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, rolled_back: SessionTransaction) -> None:
    pending = session.info.get(_AFTER_COMMIT)
    if pending:
        session.info[_AFTER_COMMIT] = [
            (where, callback) for where, callback in pending if not _within(where, rolled_back)
        ]


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def enqueue(job_id: int, queue: str) -> None:
    """Hand a job to the workers of its queue."""
    from workers.celery_app import get_celery

    get_celery().send_task("sift.run_job", args=[job_id], queue=queue)


def create_job(
    session: Session,
    kind: str,
    params: dict[str, Any],
    *,
    queue: str,
    user: User | None = None,
    dataset_id: int | None = None,
    total: int | None = None,
    idempotency_key: str | None = None,
    send: bool = True,
) -> Job:
    """A queued job; it is sent to the workers once this transaction commits."""
    if idempotency_key:
        existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is not None:
            if existing.kind != kind:
                raise Conflict(f"idempotency key {idempotency_key!r} belongs to another job")
            return existing
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    job = Job(
        kind=kind,
        queue=queue,
        params=params,
        state=JobState.QUEUED.value,
        created_by_id=user.id if user else None,
        dataset_id=dataset_id,
        total=total,
        idempotency_key=idempotency_key,
        counts={},
    )
    session.add(job)
    session.flush()
    if send:
        send_job(session, job)
    return job


def get_job(session: Session, job_id: int) -> Job:
    """The job with this id; NotFound otherwise."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(session: Session, limit: int = 50, active_only: bool = False) -> list[Job]:
    """The newest jobs first."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if active_only:
        query = query.where(Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
    jobs = list(session.scalars(query))
    show_chunk_progress(session, jobs)
    return jobs


def show_chunk_progress(session: Session, jobs: list[Job]) -> None:
    """Let running chunked jobs show how far their chunks are now (the job's row is
    recomputed only when a chunk ends): loaded values only, nothing is written."""
    running = {job.id: job for job in jobs if job.state == JobState.RUNNING.value}
    if not running:
        return
    planned = func.sum(JobChunk.params["size"].as_integer())
    rows = session.execute(
        select(JobChunk.job_id, func.sum(JobChunk.done), planned)
        .where(JobChunk.job_id.in_(list(running)))
        .group_by(JobChunk.job_id)
    )
    for job_id, done, size in rows:
        job = running[job_id]
        # As `chunks._job_done`: what needed no chunk, and what each chunk has done.
        set_committed_value(job, "done", max((job.total or 0) - (size or 0), 0) + int(done))


def cancel_job(session: Session, job_id: int) -> Job:
    """Cancel a job that has not ended; a running task stops at its next progress report, and
    its uncommitted work rolls back. Nothing that a job holds makes this wait."""
    job = get_job(session, job_id)
    if job.state == JobState.CANCELLED.value:
        return job  # cancelling twice is not an error
    if job.is_terminal:
        raise Conflict(f"job {job_id} has already {job.state}", state=job.state)
    job.state = JobState.CANCELLED.value
    job.finished_at = utcnow()
    return job


def resume_job(
    session: Session, job_id: int, *, budget_usd: float | None = None, send: bool = True
) -> Job:
    """Queue any job that is not running again, optionally with a new budget; its task skips
    what is already written (a queued job's message is sent again)."""
    job = get_job(session, job_id)
    if job.state == JobState.RUNNING.value:
        raise Conflict(f"job {job_id} is running; cancel it first to start it again")
    if budget_usd is not None:
        if job.budget_usd is None:
            raise Conflict(f"job {job_id} has no budget to raise")
        if budget_usd < job.spent_usd:
            raise InvalidInput(
                f"budget_usd: {budget_usd} is below what job {job_id} has spent ({job.spent_usd})"
            )
        job.budget_usd = budget_usd
    # Nothing of this job is running now: what was reserved and never settled was lost with
    # the calls of a dead or stopped worker.
    job.reserved_usd = 0.0
    job.state = JobState.QUEUED.value
    job.error = None
    job.attempts = 0
    job.finished_at = None
    session.execute(
        update(JobChunk)
        .where(JobChunk.job_id == job_id, JobChunk.state != ChunkState.DONE.value)
        .values(attempts=0)
    )
    if send:
        send_job(session, job)
    return job


def send_job(session: Session, job: Job) -> None:
    """Hand the job to its workers once this transaction commits, and note when."""
    job.sent_at = utcnow()
    on_commit(session, partial(enqueue, job.id, job.queue))
