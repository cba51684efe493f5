"""The job kinds: what each domain registers (a handler or chunked work, and its queue), and
the domains' task modules that register them, imported on first need."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from app.models import Job

if TYPE_CHECKING:
    from app.platform.jobs.progress import Progress

Handler = Callable[[Session, Job, "Progress"], dict[str, Any]]
_TASK_MODULES: list[str] = []


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


def declare_task_modules(modules: Iterable[str]) -> None:
    """Name the modules whose imports register job kinds (the entry point's list of domains)."""
    _TASK_MODULES.extend(m for m in modules if m not in _TASK_MODULES)


def load_job_kinds() -> None:
    """Import every declared task module, so that every job kind is known here."""
    for module in _TASK_MODULES:
        importlib.import_module(module)
