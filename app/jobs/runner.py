"""Running a job: claim it, do the work in one transaction, record the outcome.

Domain packages register a handler per job kind with `@job_handler`. A handler does all its
writing in the session it is given, which is committed together with the job's success; its
writes are upserts on natural keys, so a job run twice writes nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.db import transaction
from app.core.errors import SiftError
from app.jobs.service import cancel_marker
from app.models import Job, JobState
from app.models.base import utcnow

log = structlog.get_logger(__name__)

Handler = Callable[[Session, Job, "Progress"], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    handler: Handler


JOB_KINDS: dict[str, JobKind] = {}


def job_handler(kind: str, queue: str) -> Callable[[Handler], Handler]:
    """Register the function that does the work of a job kind."""

    def register(handler: Handler) -> Handler:
        JOB_KINDS[kind] = JobKind(kind, queue, handler)
        return handler

    return register


class JobCancelled(Exception):
    """Raised inside a handler when the job was cancelled; its writes roll back."""


class Progress:
    """Reports progress and heartbeats from a running job, and notices cancellation.

    On PostgreSQL each report is its own short transaction, so the browser sees it while the
    job's work is still uncommitted. SQLite has one writer at a time and the job holds it, so
    there progress stays in memory and reaches the row with the job's final commit, and a
    cancel arrives as a marker file (see `cancel_marker`).
    """

    def __init__(
        self,
        job_id: int,
        *,
        durable: bool,
        listener: Callable[[int, int | None], None] | None = None,
        interval_s: float = 0.5,
    ) -> None:
        self.job_id = job_id
        self.durable = durable
        self.listener = listener
        self.interval_s = interval_s
        self.done = 0
        self.total: int | None = None
        self._last = 0.0

    def __call__(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        """Set (never increment) how much is done; may raise JobCancelled."""
        self.done, self.total = done, total if total is not None else self.total
        if self.listener:
            self.listener(self.done, self.total)
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        if cancel_marker(self.job_id).exists():
            raise JobCancelled()
        if not self.durable:
            return
        with transaction() as session:
            session.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(done=self.done, total=self.total, heartbeat_at=utcnow())
            )
            state = session.scalar(select(Job.state).where(Job.id == self.job_id))
        if state == JobState.CANCELLED.value:
            raise JobCancelled()


def _claim(job_id: int) -> Job | None:
    with transaction() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.is_terminal:
            return None
        if job.state == JobState.PAUSED_BUDGET.value:
            return None
        job.state = JobState.RUNNING.value
        job.attempts += 1
        job.started_at = job.started_at or utcnow()
        job.heartbeat_at = utcnow()
        job.error = None
        session.flush()
        session.expunge(job)
        return job


def _finish(job_id: int, state: JobState, error: str | None = None) -> None:
    cancel_marker(job_id).unlink(missing_ok=True)
    with transaction() as session:
        job = session.get(Job, job_id)
        if job is not None and not job.is_terminal:
            job.state = state.value
            job.error = error
            job.finished_at = utcnow()


def execute_job(job_id: int, listener: Callable[[int, int | None], None] | None = None) -> str:
    """Run a job to its end in this process; return its final state."""
    claimed = _claim(job_id)
    if claimed is None:
        return "skipped"
    kind = JOB_KINDS.get(claimed.kind)
    if kind is None:
        _finish(job_id, JobState.FAILED, f"no handler for job kind {claimed.kind!r}")
        return JobState.FAILED.value
    log.info("job.start", job_id=job_id, kind=claimed.kind, attempt=claimed.attempts)
    try:
        with transaction(writer=True) as session:
            durable = session.get_bind().dialect.name != "sqlite"
            progress = Progress(job_id, durable=durable, listener=listener)
            job = session.get(Job, job_id)
            assert job is not None
            counts = kind.handler(session, job, progress)
            # Re-read the state: a cancel that landed after the last check still wins.
            session.refresh(job)
            if job.state == JobState.CANCELLED.value:
                raise JobCancelled()
            job.state = JobState.SUCCEEDED.value
            job.counts = counts
            job.done = progress.done
            job.total = progress.total if progress.total is not None else progress.done
            job.finished_at = utcnow()
    except JobCancelled:
        log.info("job.cancelled", job_id=job_id)
        _finish(job_id, JobState.CANCELLED)
        return JobState.CANCELLED.value
    except SiftError as exc:
        log.info("job.failed", job_id=job_id, error=exc.message)
        _finish(job_id, JobState.FAILED, exc.message)
        return JobState.FAILED.value
    except Exception as exc:
        log.exception("job.crashed", job_id=job_id)
        _finish(job_id, JobState.FAILED, f"{type(exc).__name__}: {exc}")
        return JobState.FAILED.value
    cancel_marker(job_id).unlink(missing_ok=True)
    log.info("job.done", job_id=job_id, counts=counts)
    return JobState.SUCCEEDED.value
