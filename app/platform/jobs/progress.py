"""A running job's progress and heartbeat, and the exceptions that stop it."""

from __future__ import annotations

import time
from typing import Any, Protocol

from sqlalchemy import Table, select

from app.models import Job, JobState
from app.platform.db import transaction
from app.platform.jobs.heartbeat import touch

JOBS_TABLE: Table = Job.__table__  # type: ignore[assignment]


class Listener(Protocol):
    """Follows a job run in this process (a progress bar): done, total, and the counts so far
    when a chunk has just settled."""

    def __call__(self, done: int, total: int | None, counts: dict[str, Any] | None = None) -> None:
        """Show how far the job is."""
        ...


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

    Each report is its own short transaction (see `app.platform.jobs.heartbeat.touch`), so the browser
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
        touch(JOBS_TABLE, self.job_id, done=self.done, total=self.total)


def job_state(job_id: int) -> str | None:
    """The job's state as committed now (a plain read: it never waits on a lock)."""
    with transaction() as session:
        return session.scalar(select(Job.state).where(Job.id == job_id))
