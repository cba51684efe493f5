"""The HTTP shape of a job, which every domain's API answers with when it starts one."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.models import Job, Role, User

HIDDEN = "(hidden)"
# Parameters that name a place on the server, whatever their value looks like.
PATH_KEYS = frozenset({"path", "model_path", "base_model", "output_dir", "upload", "file"})
# A file-system path inside a message: "/x/y", "~/x", "./x", "C:\\x"; not a URL, not "4/5".
_PATH_IN_TEXT = re.compile(r"(?<![\w.:/~])(?:~|\.{1,2})?/(?:[^\s'\"/]+/?)+|\b[A-Za-z]:\\[^\s'\"]+")


def looks_like_path(value: str) -> bool:
    """True for text that names a file or folder on the server."""
    # Not "stackexchange/physics" (a source) nor "4/5": only what starts like a path.
    return value.startswith(("/", "~", "./", "../")) or re.match(r"[A-Za-z]:\\", value) is not None


def hide_server_paths(value: Any, key: str = "") -> Any:
    """`value` (job or run parameters) with every server path replaced by "(hidden)"."""
    if isinstance(value, dict):
        return {k: hide_server_paths(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [hide_server_paths(v, key) for v in value]
    if isinstance(value, str) and (
        key in PATH_KEYS or key.endswith(("_path", "_dir", "_file")) or looks_like_path(value)
    ):
        return HIDDEN
    return value


def hide_paths_in_text(text: str | None) -> str | None:
    """A message (an error, a log) with the server paths in it replaced by "(hidden)"."""
    return _PATH_IN_TEXT.sub(HIDDEN, text) if text else text


def sees_server_paths(user: User | None) -> bool:
    """Leads and admins see where things are on the server; annotators do not."""
    return user is not None and user.has_role(Role.LEAD)


class ShownJob:
    """A job for a page an annotator sees: its error and parameters without server paths, the
    rest as it is."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self.error = hide_paths_in_text(job.error)
        self.params = hide_server_paths(job.params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)


def shown_jobs(jobs: list[Job], user: User | None) -> list[Job] | list[ShownJob]:
    """The jobs as `user` may see them on a page."""
    return jobs if sees_server_paths(user) else [ShownJob(job) for job in jobs]


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    queue: str
    state: str
    done: int
    total: int | None
    counts: dict[str, Any]
    error: str | None
    attempts: int
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    budget_usd: float | None
    spent_usd: float
    # The job's OpenAI Batch API batches (filled where one job is asked for).
    batches: list[dict[str, Any]] = []

    @classmethod
    def shown_to(cls, job: Job, user: User | None) -> JobOut:
        """The job as `user` may see it: without server paths for an annotator."""
        out = cls.model_validate(job)
        if sees_server_paths(user):
            return out
        return out.model_copy(
            update={"params": hide_server_paths(out.params), "error": hide_paths_in_text(out.error)}
        )
