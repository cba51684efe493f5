"""Running a job: claim it, do the work in one transaction, record the outcome.

Domain packages register a handler per job kind with `@job_handler`. A handler does all its
writing in the session it is given, which is committed together with the job's success; its
writes are upserts on natural keys, so a job run twice writes nothing twice. Work too large
for one task registers with `@chunked_job` instead and runs as chunks (see `app.jobs.chunks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

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


class Listener(Protocol):
    """Follows a job run in this process (a progress bar): done, total, and the counts so far
    when a chunk has just settled."""

    def __call__(self, done: int, total: int | None, counts: dict[str, Any] | None = None) -> None:
        """Show how far the job is."""
        ...


class ChunkedWork(Protocol):
    """Work split into chunks that run as separate tasks, each one transaction."""

    def plan(self, session: Session, job: Job) -> tuple[int, list[dict[str, Any]]]:
        """The job's total units and one params dict per chunk, each with its "size"."""
        ...

    def run_chunk(
        self, session: Session, job: Job, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        """Do one chunk in `session`; return counts that add up across chunks."""
        ...


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    handler: Handler | None = None
    chunked: ChunkedWork | None = None


JOB_KINDS: dict[str, JobKind] = {}


def job_handler(kind: str, queue: str) -> Callable[[Handler], Handler]:
    """Register the function that does the work of a job kind."""

    def register(handler: Handler) -> Handler:
        JOB_KINDS[kind] = JobKind(kind, queue, handler=handler)
        return handler

    return register


def chunked_job(kind: str, queue: str) -> Callable[[type[Any]], type[Any]]:
    """Register a class implementing `ChunkedWork` for a job kind."""

    def register(work: type[Any]) -> type[Any]:
        JOB_KINDS[kind] = JobKind(kind, queue, chunked=work())
        return work

    return register


class JobCancelled(Exception):
    """Raised inside a handler when the job was cancelled; its writes roll back."""


class JobPaused(Exception):
    """Raised by a handler when the job's budget is spent, after writing what it paid for:
    that work is committed, and the job waits as paused_budget until it is resumed."""

    def __init__(self, counts: dict[str, Any] | None = None) -> None:
        super().__init__("the budget is spent")
        self.counts = counts or {}


PAUSED_NOTE = "the budget is spent; resume with a larger budget to go on"


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
        listener: Listener | None = None,
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
        self.notify()
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        if cancel_marker(self.job_id).exists():
            raise JobCancelled()
        if not self.durable:
            return
        with transaction() as session:
            self.store(session)
            state = session.scalar(select(Job.state).where(Job.id == self.job_id))
        if state == JobState.CANCELLED.value:
            raise JobCancelled()

    def notify(self) -> None:
        """Tell the listener (a progress bar in this process) how far the job is."""
        if self.listener:
            self.listener(self.done, self.total)

    def store(self, session: Session) -> None:
        """Write the progress and a heartbeat to the job's row."""
        session.execute(
            update(Job)
            .where(Job.id == self.job_id)
            .values(done=self.done, total=self.total, heartbeat_at=utcnow())
        )


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


def pause_job(job_id: int) -> None:
    """Leave a running job waiting as paused_budget until someone resumes it."""
    with transaction() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is not None and job.state == JobState.RUNNING.value:
            job.state = JobState.PAUSED_BUDGET.value
            job.error = PAUSED_NOTE


def finish_job(job_id: int, state: JobState, error: str | None = None) -> None:
    """Record a job's end, unless it has already ended (a cancel wins)."""
    cancel_marker(job_id).unlink(missing_ok=True)
    with transaction() as session:
        job = session.get(Job, job_id)
        if job is not None and not job.is_terminal:
            job.state = state.value
            job.error = error
            job.finished_at = utcnow()


def execute_job(job_id: int, listener: Listener | None = None, *, inline: bool = False) -> str:
    """Run a job in this process; return its state.

    A chunked job is planned here and its chunks sent to the workers (the job stays running
    until the last chunk settles it); with `inline` they run here, one after another.
    """
    claimed = _claim(job_id)
    if claimed is None:
        return "skipped"
    kind = JOB_KINDS.get(claimed.kind)
    if kind is None:
        finish_job(job_id, JobState.FAILED, f"no handler for job kind {claimed.kind!r}")
        return JobState.FAILED.value
    log.info("job.start", job_id=job_id, kind=claimed.kind, attempt=claimed.attempts)
    if kind.chunked is not None:
        # Imported here: chunks builds on this module's registry and Progress.
        from app.jobs.chunks import start_chunked_job

        return start_chunked_job(job_id, kind, listener=listener, inline=inline)
    assert kind.handler is not None
    try:
        with transaction() as session:
            durable = session.get_bind().dialect.name != "sqlite"
            progress = Progress(job_id, durable=durable, listener=listener)
            job = session.get(Job, job_id)
            assert job is not None
            state = _run_handler(session, job, kind.handler, progress)
    except JobCancelled:
        log.info("job.cancelled", job_id=job_id)
        finish_job(job_id, JobState.CANCELLED)
        return JobState.CANCELLED.value
    except SiftError as exc:
        log.info("job.failed", job_id=job_id, error=exc.message)
        finish_job(job_id, JobState.FAILED, exc.message)
        return JobState.FAILED.value
    except Exception as exc:
        log.exception("job.crashed", job_id=job_id)
        finish_job(job_id, JobState.FAILED, f"{type(exc).__name__}: {exc}")
        return JobState.FAILED.value
    cancel_marker(job_id).unlink(missing_ok=True)
    log.info("job.end", job_id=job_id, state=state)
    return state


def _run_handler(session: Session, job: Job, handler: Handler, progress: Progress) -> str:
    try:
        counts = handler(session, job, progress)
        state = JobState.SUCCEEDED
    except JobPaused as paused:
        counts, state = paused.counts, JobState.PAUSED_BUDGET
    # Re-read the state: a cancel that landed after the last check still wins.
    session.refresh(job)
    if job.state == JobState.CANCELLED.value:
        raise JobCancelled()
    job.state = state.value
    job.counts = counts
    job.done = progress.done
    job.total = progress.total if progress.total is not None else progress.done
    if state == JobState.PAUSED_BUDGET:
        job.error = PAUSED_NOTE
    else:
        job.finished_at = utcnow()
    return state.value
