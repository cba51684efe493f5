"""Creating jobs and handing them to the workers once the unit of work commits.

Whether a job goes to the workers or runs in this process is the entry point's decision, made
once per unit of work (`run_jobs_here`): services create and send jobs the same way in both.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Job, JobState, User
from app.models.base import utcnow
from app.platform.db import on_commit
from app.platform.errors import InvalidInput, NotFound

QUEUES = ("io", "cpu", "gpu")
_RUN_HERE = "sift_run_jobs_here"
KEY_COLUMN_LENGTH = 200  # Job.idempotency_key, TrainingRun.idempotency_key


def run_jobs_here(session: Session) -> None:
    """Keep the jobs this unit of work starts from the workers: its caller runs them itself."""
    session.info[_RUN_HERE] = True


def enqueue(job_id: int, queue: str) -> None:
    """Hand a job to the workers of its queue."""
    from app.platform.jobs.broker import get_celery

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
) -> Job:
    """A queued job; it is sent to the workers once this transaction commits. A job created
    earlier by the same caller with the same idempotency key is returned instead, when it was
    asked for with the same content (422 otherwise)."""
    stored_key = scoped_key(user, idempotency_key)
    asked = (kind, dataset_id, canonical_params(params))
    existing = keyed_job(session, user, idempotency_key)
    if existing is not None:
        return _same_request(existing, asked, idempotency_key)
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
        idempotency_key=stored_key,
        counts={},
    )
    if stored_key is None:
        session.add(job)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(job)
                session.flush()
        except IntegrityError:
            # The same key from the same caller, in a request that committed first: its job.
            existing = keyed_job(session, user, idempotency_key)
            if existing is None:
                raise
            return _same_request(existing, asked, idempotency_key)
    send_job(session, job)
    return job


def _same_request(existing: Job, asked: tuple[Any, ...], key: str | None) -> Job:
    """The job a key was first used for, when asked for again with the same content."""
    if (existing.kind, existing.dataset_id, canonical_params(existing.params)) != asked:
        raise reused_key(key)
    return existing


def scoped_key(user: User | None, key: str | None) -> str | None:
    """The stored form of a client's idempotency key: tied to its caller, so that the same key
    from someone else is another key (None for no key, or an empty one)."""
    if not key:
        return None
    owner = f"user-{user.id}" if user is not None and user.id is not None else "system"
    scoped = f"{owner}:{key}"
    if len(scoped) > KEY_COLUMN_LENGTH:
        scoped = f"{owner}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return scoped


def keyed_job(session: Session, user: User | None, key: str | None) -> Job | None:
    """The job this caller created with this idempotency key, if any."""
    stored_key = scoped_key(user, key)
    if stored_key is None:
        return None
    return session.scalar(select(Job).where(Job.idempotency_key == stored_key))


def reused_key(key: str | None) -> InvalidInput:
    """The error for an idempotency key sent again with a different request."""
    return InvalidInput(
        f"the Idempotency-Key {key!r} was used for a different request: use a new key",
        field="Idempotency-Key",
    )


def canonical_params(params: Any) -> Any:
    """Parameters as the database gives them back (tuples as lists, keys as text)."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def get_job(session: Session, job_id: int) -> Job:
    """The job with this id; NotFound otherwise."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def send_job(session: Session, job: Job) -> None:
    """Hand the job to its workers once this transaction commits, and note when; nothing when
    the unit of work runs its jobs itself."""
    if session.info.get(_RUN_HERE):
        return
    job.sent_at = utcnow()
    on_commit(session, partial(enqueue, job.id, job.queue))
