"""Running a job: claim it, do the work in one transaction, record the outcome.

Domain packages register a handler per job kind with `@job_handler`. A handler does all its
writing in the session it is given, which is committed together with the job's success; its
writes are upserts on natural keys, so a job run twice writes nothing twice. Work too large
for one task registers with `@chunked_job` instead and runs as chunks (see `app.platform.jobs.chunked`).

Only the worker running a job writes its row while it runs, and only in short transactions of
their own (claim, progress, outcome): the handler's unit of work never locks the job's row
until its final write, so a cancel, a heartbeat or the sweeper never waits on it for long.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Job, JobState
from app.models.base import utcnow
from app.platform.db import transaction
from app.platform.errors import SiftError
from app.platform.jobs.batch_wait import (
    WAITING,
    open_scope,
    poll_interval_s,
    tell_listener,
    wait_job,
)
from app.platform.jobs.chunked import start_chunked_job
from app.platform.jobs.heartbeat import beating
from app.platform.jobs.lifecycle import claim_job, finish_job, pause_job
from app.platform.jobs.progress import (
    JOBS_TABLE,
    PAUSED_NOTE,
    JobCancelled,
    JobPaused,
    Listener,
    Progress,
    job_state,
)
from app.platform.jobs.registry import JOB_KINDS, Handler
from app.platform.llm.batch_scope import BatchPending, BatchScope, active

log = structlog.get_logger(__name__)


def execute_job(job_id: int, listener: Listener | None = None, *, inline: bool = False) -> str:
    """Run a job in this process; return its state.

    A chunked job is planned here and its chunks sent to the workers (the job stays running
    until the last chunk settles it); with `inline` they run here, one after another, and a
    job waiting on its Batch API batches is run again here until it ends.
    """
    state = _execute_once(job_id, listener, inline=inline)
    while inline and state == WAITING:
        tell_listener(listener, job_id)
        time.sleep(poll_interval_s())
        state = _execute_once(job_id, listener, inline=inline)
    return state


def _execute_once(job_id: int, listener: Listener | None, *, inline: bool) -> str:
    claimed = claim_job(job_id)
    if claimed is None:
        return "skipped"
    kind = JOB_KINDS.get(claimed.kind)
    if kind is None:
        finish_job(job_id, JobState.FAILED, f"no handler for job kind {claimed.kind!r}")
        return JobState.FAILED.value
    log.info("job.start", job_id=job_id, kind=claimed.kind, attempt=claimed.attempts)
    if kind.chunked is not None:
        return start_chunked_job(job_id, kind, listener=listener, inline=inline)
    assert kind.handler is not None
    scope = open_scope(claimed, None)
    try:
        if scope is not None and scope.refresh():
            return wait_job(job_id, claimed.queue, send=not inline)
        with beating(JOBS_TABLE, job_id), transaction() as session, active(scope):
            progress = Progress(job_id, listener=listener)
            job = session.get(Job, job_id)
            assert job is not None
            state = _run_handler(session, job, kind.handler, progress, scope)
    except BatchPending:
        assert scope is not None
        if job_state(job_id) == JobState.CANCELLED.value:
            return JobState.CANCELLED.value
        if scope.submit():
            return wait_job(job_id, claimed.queue, send=not inline)
        pause_job(job_id)
        return JobState.PAUSED_BUDGET.value
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


def _run_handler(
    session: Session,
    job: Job,
    handler: Handler,
    progress: Progress,
    scope: BatchScope | None = None,
) -> str:
    try:
        counts = handler(session, job, progress)
        state = JobState.SUCCEEDED
    except JobPaused as paused:
        counts, state = paused.counts, JobState.PAUSED_BUDGET
    if scope is not None:
        scope.finish(session)  # BatchPending when it asked for something new
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
