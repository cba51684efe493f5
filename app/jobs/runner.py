"""Running a job: claim it, do the work in one transaction, record the outcome.

Domain packages register a handler per job kind with `@job_handler`. A handler does all its
writing in the session it is given, which is committed together with the job's success; its
writes are upserts on natural keys, so a job run twice writes nothing twice. Work too large
for one task registers with `@chunked_job` instead and runs as chunks (see `app.jobs.chunks`).

Only the worker running a job writes its row while it runs, and only in short transactions of
their own (claim, progress, outcome): the handler's unit of work never locks the job's row
until its final write, so a cancel, a heartbeat or the sweeper never waits on it for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from app.core.db import retrying, transaction
from app.core.errors import SiftError
from app.jobs.heartbeat import beating, touch
from app.models import Job, JobState
from app.models.base import utcnow

log = structlog.get_logger(__name__)

Handler = Callable[[Session, Job, "Progress"], dict[str, Any]]
_JOBS: Table = Job.__table__  # type: ignore[assignment]


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
    """Reports progress from a running job, and notices cancellation.

    Each report is its own short transaction (see `app.jobs.heartbeat.touch`), so the browser
    sees it while the job's work is still uncommitted. `durable=False` keeps it in memory (a
    job run inside a test's rolled-back transaction, which no other connection can see).
    """

    def __init__(
        self,
        job_id: int,
        *,
        durable: bool = True,
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
        if not self.durable or (not force and now - self._last < self.interval_s):
            return
        self._last = now
        self.store()
        if job_state(self.job_id) == JobState.CANCELLED.value:
            raise JobCancelled()

    def notify(self) -> None:
        """Tell the listener (a progress bar in this process) how far the job is."""
        if self.listener:
            self.listener(self.done, self.total)

    def store(self) -> None:
        """Write the progress and a heartbeat to the job's row."""
        touch(_JOBS, self.job_id, done=self.done, total=self.total)


def job_state(job_id: int) -> str | None:
    """The job's state as committed now (a plain read: it never waits on a lock)."""
    with transaction() as session:
        return session.scalar(select(Job.state).where(Job.id == job_id))


def _claim(job_id: int) -> Job | None:
    """Mark a queued job running, in one statement; None when it is not queued (a second
    delivery of its message, or a job cancelled, paused or finished meanwhile)."""

    def claim(session: Session) -> Job | None:
        now = utcnow()
        job = session.scalar(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.QUEUED.value)
            .values(
                state=JobState.RUNNING.value,
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now),
                heartbeat_at=now,
                error=None,
            )
            .returning(Job)
        )
        return job

    return retrying(claim)


def pause_job(job_id: int) -> None:
    """Leave a running job waiting as paused_budget until someone resumes it."""
    retrying(
        lambda session: session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.RUNNING.value)
            .values(state=JobState.PAUSED_BUDGET.value, error=PAUSED_NOTE)
        )
    )


def finish_job(job_id: int, state: JobState, error: str | None = None) -> None:
    """Record a job's end, unless it has already ended (a cancel wins)."""
    retrying(
        lambda session: session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
            .values(state=state.value, error=error, finished_at=utcnow())
        )
    )


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
        with beating(_JOBS, job_id), transaction() as session:
            progress = Progress(job_id, listener=listener)
            job = session.get(Job, job_id)
            assert job is not None
            state = _run_handler(session, job, kind.handler, progress)
    except JobCancelled:
        # Cancelled (or taken back by the sweeper) while it ran: its work rolled back, and
        # the row already says what happened.
        log.info("job.stopped", job_id=job_id)
        return job_state(job_id) or JobState.CANCELLED.value
    except SiftError as exc:
        log.info("job.failed", job_id=job_id, error=exc.message)
        finish_job(job_id, JobState.FAILED, exc.message)
        return JobState.FAILED.value
    except Exception as exc:
        log.exception("job.crashed", job_id=job_id)
        finish_job(job_id, JobState.FAILED, f"{type(exc).__name__}: {exc}")
        return JobState.FAILED.value
    log.info("job.end", job_id=job_id, state=state)
    return state


def _run_handler(session: Session, job: Job, handler: Handler, progress: Progress) -> str:
    try:
        counts = handler(session, job, progress)
        state = JobState.SUCCEEDED
    except JobPaused as paused:
        counts, state = paused.counts, JobState.PAUSED_BUDGET
    stopped = state == JobState.PAUSED_BUDGET
    values: dict[str, Any] = {
        "state": state.value,
        "counts": counts,
        "done": progress.done,
        "total": progress.total if progress.total is not None else progress.done,
        "error": PAUSED_NOTE if stopped else None,
        "finished_at": None if stopped else utcnow(),
    }
    # Only a job still running takes its outcome: a cancel that landed after the last check
    # wins, and the work rolls back with this transaction.
    written = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == JobState.RUNNING.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(written, "rowcount", 0) != 1:
        raise JobCancelled()
    return state.value
