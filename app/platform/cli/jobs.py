"""Starting a job from a command: in this process (the embedded default with no `sift serve`
running) or on the workers, then following it to its end."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.models import Job
from app.platform.cli.console import fail, format_counts, out, progress_bar, user_errors
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.jobs.dispatch import get_job, run_jobs_here
from app.platform.jobs.registry import load_job_kinds
from app.platform.jobs.runner import execute_job
from app.platform.llm.batch_status import short_state


def pid_file() -> Path:
    """Where `sift serve` records its process id."""
    return get_settings().data_dir / "serve.pid"


def embedded_server_running() -> bool:
    """True when a `sift serve` with its own worker is running on this data directory."""
    try:
        pid = int(pid_file().read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def runs_here() -> bool:
    """True when a job started now must run in this process: the embedded default, with no
    `sift serve` (and its worker) running."""
    return get_settings().embedded and not embedded_server_running()


@contextmanager
def job_transaction() -> Iterator[Session]:
    """A command's unit of work: the jobs it starts go to the workers, or stay for this
    process to run when `runs_here()`; a user's mistake is one error line."""
    with user_errors(), transaction() as session:
        hold_jobs_here(session)
        yield session


def hold_jobs_here(session: Session) -> None:
    """Keep the jobs this unit of work starts for this process to run, when `runs_here()`."""
    if runs_here():
        run_jobs_here(session)


def launch(start: Callable[[Session], Job], title: str | Callable[[Job], str], wait: bool) -> None:
    """Create a job with `start(session)` in a `job_transaction`, then run it here or follow it."""
    with job_transaction() as session:
        job = start(session)
        job_id, heading = job.id, title(job) if callable(title) else title
    run_job(job_id, heading, wait)


def run_job(job_id: int, title: str, wait: bool) -> None:
    """Run a job here (embedded, no server) or leave it to the workers, following it if asked."""
    if runs_here():
        load_job_kinds()
        with progress_bar() as bar:
            task = bar.add_task(title, total=None, counts="")

            def show(done: int, total: int | None, counts: dict[str, Any] | None = None) -> None:
                bar.update(task, completed=done, total=total)
                if counts:
                    bar.update(task, counts=format_counts(counts))

            state = execute_job(job_id, show, inline=True)
    elif wait:
        state = follow_job(job_id, title)
    else:
        out.print(f"job {job_id} queued; follow it with: sift jobs --watch")
        return
    report_job(job_id, state)


def follow_job(job_id: int, title: str) -> str:
    """Show a job's progress until it ends; return its final state."""
    with progress_bar() as bar:
        task = bar.add_task(title, total=None, counts="")
        while True:
            with transaction() as session:
                job = get_job(session, job_id)
                state, done, total, counts = job.state, job.done, job.total, dict(job.counts)
                terminal = job.is_terminal or state == "paused_budget"
                batches = None if terminal else short_state(session, job_id)
            if batches:
                counts["batch"] = batches
            bar.update(task, completed=done, total=total, counts=format_counts(counts))
            if terminal:
                return state
            time.sleep(0.5)


def report_job(job_id: int, state: str) -> None:
    """The one-line ending of a job command; non-zero exit if it did not succeed."""
    with transaction() as session:
        job = get_job(session, job_id)
        counts = format_counts(job.counts)
        error = job.error
    if state == "succeeded":
        out.print(f"job {job_id} succeeded: {counts}")
        return
    fail(f"job {job_id} {state}" + (f": {error}" if error else ""))
