"""A unit of work's Batch API batches (a chunk's, or a plain job's): its calls answered from
the batches it collected, or deferred into a new batch instead of being sent.

A job started with `--batch` runs each unit of work as usual with a `BatchScope` active: the LLM
client answers a request from the response cache, or from a batch this unit collected, and
otherwise defers it (`CallDeferred`, which callers treat as a budget stop). When the work ends
with deferred requests, its writes roll back (`BatchPending`); the requests go out as one batch
per endpoint, reserved in the budget at the batch price first, and the unit waits: queued again
every `batch_poll_s`, it polls its batches, collects those that ended (answers into the response
cache under the live path's keys, failures per request, the cost charged) and runs again. Work
that asked for nothing new commits, and its batches are done with.

Every step is written to the batch's row in a short transaction of its own before the next call
to the provider, so a restarted worker finds the file and batch ids and polls the same batch; a
batch created just before a crash is found again by the marker in its metadata.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import openai
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Job, LLMBatch
from app.models.base import utcnow
from app.platform.config import LLMEndpoint
from app.platform.db import retrying, transaction
from app.platform.errors import SiftError
from app.platform.llm import batch_api
from app.platform.llm.batch_results import batch_results, body_of
from app.platform.llm.budget import (
    CallDeferred,
    job_budget,
    max_cost,
    reserve_amounts,
    settle_now,
)
from app.platform.llm.cache import lookup_answers, store_calls
from app.platform.llm.chat import CallStats, ChatRequest, ChatResult, request_payload
from app.platform.llm.endpoints import get_endpoint, require_priced
from app.platform.llm.responses import error_message, from_cache

log = structlog.get_logger(__name__)
_CURRENT: ContextVar[BatchScope | None] = ContextVar("sift_batch_scope", default=None)
# Trouble worth waiting out: the next poll tries again.
_PASSING = (
    openai.APIConnectionError,
    openai.APITimeoutError,
    openai.RateLimitError,
    openai.InternalServerError,
)


def current_scope(job_id: int | None) -> BatchScope | None:
    """The batch scope of the unit of work running `job_id` here, if it runs as batches."""
    scope = _CURRENT.get()
    return scope if scope is not None and job_id is not None and scope.job_id == job_id else None


@contextmanager
def active(scope: BatchScope | None) -> Iterator[None]:
    """Make `scope` the one the LLM clients of this unit of work use."""
    token = _CURRENT.set(scope)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class AskingClient(Protocol):
    """What the scope needs of the LLM client that asks it (`app.platform.llm.client`)."""

    name: str
    endpoint: LLMEndpoint
    stats: CallStats

    async def cached(self, key: str) -> ChatResult | None:
        """The cached answer of a request, counted as a hit, or None."""
        ...


class BatchPending(Exception):
    """The unit of work deferred calls into batches: its writes roll back while it waits."""


@dataclass(frozen=True)
class _Deferred:
    endpoint_name: str
    endpoint: LLMEndpoint
    payload: dict[str, Any]
    most: float  # the most it can cost, at the batch price


@dataclass(frozen=True)
class _Row:
    id: int
    endpoint: str
    model: str
    marker: str
    batch_id: str | None
    input_file_id: str | None
    requests: dict[str, Any]
    failures: dict[str, Any]
    reserved_usd: float


class BatchScope:
    """The batches of one unit of work: a chunk (`chunk_id`) or a plain job (None)."""

    def __init__(self, job_id: int, chunk_id: int | None) -> None:
        self.job_id = job_id
        self.chunk_id = chunk_id
        self.answers: dict[str, ChatResult] = {}
        self.failures: dict[str, str] = {}
        self.deferred: dict[str, _Deferred] = {}

    def _mine(self) -> Any:
        chunk = (
            LLMBatch.chunk_id.is_(None)
            if self.chunk_id is None
            else LLMBatch.chunk_id == self.chunk_id
        )
        return (LLMBatch.job_id == self.job_id) & chunk

    # ------------------------------------------------------------ answering the client

    async def answer(self, client: AskingClient, key: str, request: ChatRequest) -> ChatResult:
        """A collected batch's answer, else the cache's, else the request is deferred."""
        batched = self.answers.pop(key, None)
        if batched is not None:
            client.stats.batched += 1
            client.stats.prompt_tokens += batched.prompt_tokens
            client.stats.completion_tokens += batched.completion_tokens
            client.stats.cost += batched.cost
            return batched
        if key in self.failures:
            client.stats.failed += 1
            return ChatResult(text=None, error=self.failures[key])
        hit = await client.cached(key)
        if hit is not None:
            return hit
        if key not in self.deferred:
            factor = client.endpoint.batch_price_factor
            self.deferred[key] = _Deferred(
                client.name,
                client.endpoint,
                request_payload(client.endpoint, request),
                max_cost(client.endpoint, request.messages, request.max_tokens) * factor,
            )
        raise CallDeferred(
            f"job {self.job_id}: the call goes into a Batch API batch", job_id=self.job_id
        )

    def finish(self, session: Session) -> None:
        """End the unit of work: wait on new batches (BatchPending), or mark its collected
        batches done with, in the unit's own transaction."""
        if self.deferred:
            raise BatchPending()
        session.execute(
            update(LLMBatch)
            .where(self._mine(), LLMBatch.collected_at.is_not(None), LLMBatch.consumed_at.is_(None))
            .values(consumed_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    # ------------------------------------------------------------ polling and collecting

    def refresh(self) -> bool:
        """Move every open batch of this unit on, collecting those that ended, and load what
        the collected ones answered; True while one is still running."""
        with transaction() as session:
            open_ids = list(
                session.scalars(
                    select(LLMBatch.id)
                    .where(self._mine(), LLMBatch.collected_at.is_(None))
                    .order_by(LLMBatch.id)
                )
            )
        running = False
        for row_id in open_ids:
            running = not self._advance(row_id) or running
        self._load_answers()
        return running

    def _read(self, row_id: int) -> _Row:
        with transaction() as session:
            row = session.get(LLMBatch, row_id)
            assert row is not None
            return _Row(
                row.id,
                row.endpoint,
                row.model,
                row.marker,
                row.batch_id,
                row.input_file_id,
                dict(row.requests),
                dict(row.failures),
                row.reserved_usd,
            )

    def _write(self, row_id: int, **values: Any) -> None:
        retrying(
            lambda session: session.execute(
                update(LLMBatch)
                .where(LLMBatch.id == row_id)
                .values(updated_at=utcnow(), **values)
                .execution_options(synchronize_session=False)
            )
        )

    def _advance(self, row_id: int) -> bool:
        """Submit, poll or collect one batch; True once it is collected."""
        row = self._read(row_id)
        endpoint = get_endpoint(row.endpoint)
        with batch_api.batch_client(endpoint) as client:
            try:
                remote = self._remote(client, row, endpoint)
                self._write(
                    row.id,
                    status=remote.status,
                    request_counts=remote.counts,
                    output_file_id=remote.output_file_id,
                    error_file_id=remote.error_file_id,
                    error=remote.errors,
                )
                if not remote.ended:
                    return False
                self._collect(client, row, endpoint, remote)
            except _PASSING as exc:
                log.warning("llm.batch.retry_later", batch=row.batch_id, error=str(exc))
                return False
            except openai.APIStatusError as exc:
                where = row.batch_id or f"of job {self.job_id}"
                raise SiftError(
                    f"endpoint '{row.endpoint}': batch {where}: HTTP {exc.status_code}: "
                    f"{error_message(exc)}"
                ) from exc
        return True

    def _remote(
        self, client: openai.OpenAI, row: _Row, endpoint: LLMEndpoint
    ) -> batch_api.RemoteBatch:
        """The batch as the provider sees it, uploading and creating it first if need be."""
        if row.batch_id is not None:
            return batch_api.retrieve(client, row.batch_id)
        file_id = row.input_file_id
        if file_id is None:
            lines = [(key, body_of(payload)) for key, payload in row.requests.items()]
            name = f"sift-job{self.job_id}-batch{row.id}.jsonl"
            file_id = batch_api.upload(client, batch_api.input_file(lines), name)
            self._write(row.id, input_file_id=file_id)
        else:
            # A file uploaded before a crash: the batch may exist already.
            found = batch_api.find(client, row.marker)
            if found is not None:
                self._write(row.id, batch_id=found.batch_id)
                return found
        made = batch_api.create(client, file_id, row.marker, endpoint.batch_window)
        self._write(row.id, batch_id=made.batch_id, status=made.status)
        log.info("llm.batch.created", job_id=self.job_id, batch=made.batch_id, n=len(row.requests))
        return made

    def _collect(
        self,
        client: openai.OpenAI,
        row: _Row,
        endpoint: LLMEndpoint,
        remote: batch_api.RemoteBatch,
    ) -> None:
        """Keep an ended batch's answers in the response cache and charge them, once."""
        outcomes: dict[str, batch_api.LineOutcome] = {}
        for file_id in (remote.error_file_id, remote.output_file_id):  # an answer wins
            if file_id:
                outcomes.update(batch_api.read_lines(client, file_id))
        stored, failures = batch_results(
            row.requests, outcomes, remote, (row.endpoint, endpoint), row.reserved_usd
        )
        cost = sum(call.cost for call in stored)

        def keep(session: Session) -> None:
            # Only the first collector of a batch stores and charges it.
            first = session.execute(
                update(LLMBatch)
                .where(LLMBatch.id == row.id, LLMBatch.collected_at.is_(None))
                .values(collected_at=utcnow(), failures=failures, cost_usd=cost)
                .returning(LLMBatch.id)
            ).first()
            if first is None:
                return
            if stored:
                store_calls(session, stored)
            if job_budget(session, self.job_id) is not None:
                settle_now(session, self.job_id, row.reserved_usd, cost)

        retrying(keep)
        log.info(
            "llm.batch.collected", batch=remote.batch_id, answers=len(stored), failed=len(failures)
        )

    def _load_answers(self) -> None:
        """What the collected batches of this unit answered, and what they could not."""
        with transaction() as session:
            rows = session.execute(
                select(LLMBatch.endpoint, LLMBatch.batch_id, LLMBatch.requests, LLMBatch.failures)
                .where(
                    self._mine(),
                    LLMBatch.collected_at.is_not(None),
                    LLMBatch.consumed_at.is_(None),
                )
                .order_by(LLMBatch.id)
            ).all()
            answered = [key for row in rows for key in row.requests if key not in row.failures]
            found = lookup_answers(session, answered)
        for key, stored in found.items():
            self.answers[key] = dataclasses.replace(from_cache(stored, key), cached=False)
        for row in rows:
            for key, why in row.failures.items():
                self.failures[key] = f"endpoint '{row.endpoint}': batch {row.batch_id}: {why}"

    # ------------------------------------------------------------ submitting

    def submit(self) -> bool:
        """Send the deferred requests as batches, one per endpoint (reserved in the budget
        first); False when the budget could not cover a single one."""
        groups: dict[str, list[tuple[str, _Deferred]]] = {}
        for key, deferred in self.deferred.items():
            groups.setdefault(deferred.endpoint_name, []).append((key, deferred))
        self.deferred = {}
        with transaction() as session:
            budgeted = job_budget(session, self.job_id) is not None
        made = 0
        for name, items in groups.items():
            if budgeted:
                require_priced(name, items[0][1].endpoint)
            for start in range(0, len(items), batch_api.MOST_LINES):
                part = items[start : start + batch_api.MOST_LINES]
                row_id, taken = retrying(partial(self._insert, items=part, budgeted=budgeted))
                if row_id is None:
                    return made > 0
                made += 1
                self._advance(row_id)
                if taken < len(part):
                    return True
        return True

    def _insert(
        self, session: Session, items: list[tuple[str, _Deferred]], budgeted: bool
    ) -> tuple[int | None, int]:
        """A new batch row for the requests the budget covers (reserved with it); its id and
        how many requests it took (None, 0 when the budget covers none)."""
        taken = items
        if budgeted:
            budget, spent, reserved = session.execute(
                select(Job.budget_usd, Job.spent_usd, Job.reserved_usd).where(Job.id == self.job_id)
            ).one()
            left, count = (budget or 0.0) - spent - reserved, 0
            for _, deferred in items:
                if deferred.most > left:
                    break
                left -= deferred.most
                count += 1
            taken = items[:count]
            if not taken:
                return None, 0
        total = sum(deferred.most for _, deferred in taken) if budgeted else 0.0
        if budgeted and not reserve_amounts(session, [(self.job_id, total)])[0]:
            return None, 0
        first = taken[0][1]
        row = LLMBatch(
            job_id=self.job_id,
            chunk_id=self.chunk_id,
            endpoint=first.endpoint_name,
            model=first.endpoint.model,
            marker=uuid.uuid4().hex,
            status="submitting",
            requests={key: deferred.payload for key, deferred in taken},
            request_counts={"total": len(taken), "completed": 0, "failed": 0},
            failures={},
            reserved_usd=total,
            cost_usd=0.0,
        )
        session.add(row)
        session.flush()
        return row.id, len(taken)
