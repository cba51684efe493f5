"""Jobs that run as Batch API batches (`"batch": true` in their params): a unit of work (a
chunk, or a plain job) that waits on its batches goes back to `queued`, its message sent again
`batch_poll_s` later, without counting the wait as an attempt. See `app.platform.llm.batch_scope`.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.models import ChunkState, Job, JobChunk, JobState
from app.models.base import utcnow
from app.platform.config import get_settings
from app.platform.db import retrying, transaction
from app.platform.jobs.progress import Listener
from app.platform.llm.batch_scope import BatchScope
from app.platform.llm.batch_status import short_state

# What a unit of work that waits on its batches returns instead of a job state.
WAITING = "waiting_batch"


def open_scope(job: Job, chunk_id: int | None) -> BatchScope | None:
    """The unit's batch scope when its job runs as batches, else None."""
    return BatchScope(job.id, chunk_id) if (job.params or {}).get("batch") else None


def poll_interval_s() -> float:
    """How long a waiting unit of work sleeps before it polls its batches again."""
    return get_settings().batch_poll_s


def wait_chunk(chunk_id: int, queue: str, *, send: bool) -> str:
    """Queue a running chunk again for its next poll (its attempt given back)."""
    due = utcnow() + timedelta(seconds=poll_interval_s())
    written = retrying(
        lambda session: session.execute(
            update(JobChunk)
            .where(JobChunk.id == chunk_id, JobChunk.state == ChunkState.RUNNING.value)
            .values(
                state=ChunkState.QUEUED.value,
                attempts=JobChunk.attempts - 1,
                done=0,
                sent_at=due,  # the sweeper resends it only once that is long past
            )
        )
    )
    if send and getattr(written, "rowcount", 0) == 1:
        _send_later("sift.run_chunk", chunk_id, queue)
    return WAITING


def wait_job(job_id: int, queue: str, *, send: bool) -> str:
    """Queue a running plain job again for its next poll (its attempt given back)."""
    due = utcnow() + timedelta(seconds=poll_interval_s())
    written = retrying(
        lambda session: session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.RUNNING.value)
            .values(state=JobState.QUEUED.value, attempts=Job.attempts - 1, sent_at=due)
        )
    )
    if send and getattr(written, "rowcount", 0) == 1:
        _send_later("sift.run_job", job_id, queue)
    return WAITING


def tell_listener(listener: Listener | None, job_id: int) -> None:
    """Show a command following the job here how its batches stand."""
    if listener is None:
        return
    with transaction() as session:
        state = short_state(session, job_id)
    if state:
        listener(0, None, {"batch": state})


def _send_later(task: str, item_id: int, queue: str) -> None:
    from app.platform.jobs.broker import get_celery

    get_celery().send_task(task, args=[item_id], queue=queue, countdown=poll_interval_s())
