"""What the client hands back: the API's objects as typed dataclasses, its errors, and export
records shaped for Arrow."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import httpx

FINISHED = frozenset({"succeeded", "failed", "cancelled", "paused_budget"})
T = TypeVar("T")


class SiftError(Exception):
    """An answer of the API that is not a success: its status and the server's one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class JobFailed(SiftError):
    """A job that ended without succeeding (failed, cancelled, or paused on its budget)."""

    def __init__(self, job: Job) -> None:
        super().__init__(409, f"job {job.id} ({job.kind}) {job.state}: {job.error or ''}".strip())
        self.job = job


def build(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass from an API object, ignoring fields this client does not know (yet)."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    example_count: int
    created_at: str


@dataclass(frozen=True)
class Example:
    id: int
    dataset: str
    messages: list[dict[str, str]]
    instruction: str | None
    input: str | None
    output: str | None
    source: str | None
    category: str | None
    meta: dict[str, Any]
    external_id: str | None
    content_hash: str
    origin: str
    status: str
    version: int
    created_at: str
    updated_at: str | None = None


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: str
    done: int
    total: int | None
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    queue: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    spent_usd: float = 0.0
    budget_usd: float | None = None

    @property
    def finished(self) -> bool:
        """True once the job will change no more (unless resumed)."""
        return self.state in FINISHED


@dataclass(frozen=True)
class Collection:
    name: str
    description: str
    target_size: int
    size: int
    quotas: dict[str, dict[str, int]]
    filled: dict[str, dict[str, int]]
    recipes: list[dict[str, Any]]
    overlap: int = 1
    consensus: str = "majority"
    created_at: str = ""


@dataclass(frozen=True)
class Snapshot:
    id: int
    digest: str
    example_count: int
    note: str
    only_accepted: bool
    left_out: dict[str, int]
    created_at: str


Progress = Callable[[Job], None]


def arrow_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Export records as Arrow tables hold them: `meta` (free-form, a different shape on each
    example) as JSON text, as Sift's Parquet export writes it; everything else unchanged."""
    rows = []
    for record in records:
        row = dict(record)
        if "meta" in row and not isinstance(row["meta"], str):
            row["meta"] = json.dumps(row["meta"], ensure_ascii=False)
        rows.append(row)
    return rows


def raise_for(answer: httpx.Response) -> None:
    """SiftError for an answer that is not a success, with the server's one-line reason."""
    if answer.status_code < 400:
        return
    try:
        body = answer.json()
        message = body.get("error") or body.get("detail") or answer.text
    except (ValueError, AttributeError):
        message = answer.text
    raise SiftError(answer.status_code, str(message))
