"""The LLM response cache (LLMCall rows), written in batches through side transactions.

A request is claimed before it is sent (a pending row with a lease), stored once answered,
and released if it failed, so that no two workers ever pay for the same request. Its writes
go through the client's `Batcher` (see `batching`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.scoring import LLMCall, LLMCallState
from app.platform.db import conflict_insert
from app.platform.llm.batching import Batcher, SideWriter

T = TypeVar("T")

# IN lists stay well below the drivers' limits on bound parameters.
_ROWS_PER_STATEMENT = 500
_PENDING = LLMCallState.PENDING.value
# What a store overwrites in a row that holds a claim (or an older answer).
_STORED_COLUMNS = (
    "state",
    "lease_until",
    "response",
    "response_text",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_ms",
    "endpoint",
    "model",
)
_DONE = LLMCallState.DONE.value


@dataclass(frozen=True)
class CachedAnswer:
    """A stored answer, as read back from its LLMCall row."""

    text: str
    response: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_ms: float | None


@dataclass(frozen=True)
class ClaimRequest:
    """A claim to send one request, held until `lease_until`."""

    request_hash: str
    endpoint: str
    model: str
    request: dict[str, Any]
    lease_until: datetime


@dataclass(frozen=True)
class ClaimOutcome:
    """Ours to send (`lease_until` set), already answered (`answer` set), or busy (neither)."""

    lease_until: datetime | None = None
    answer: CachedAnswer | None = None


@dataclass(frozen=True)
class StoredCall:
    """An answer to keep."""

    request_hash: str
    endpoint: str
    model: str
    request: dict[str, Any]
    text: str
    response: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float | None = None


@dataclass(frozen=True)
class Renewal:
    """Move a held lease from `current` to `until`."""

    request_hash: str
    current: datetime
    until: datetime


BUSY = ClaimOutcome()

_ANSWER_COLUMNS = (
    LLMCall.request_hash,
    LLMCall.state,
    LLMCall.response_text,
    LLMCall.response,
    LLMCall.prompt_tokens,
    LLMCall.completion_tokens,
    LLMCall.cost,
    LLMCall.latency_ms,
)


_TABLE: Any = LLMCall.__table__


@lru_cache
def _claim_statement() -> Any:
    insert = conflict_insert(_TABLE)
    return insert.on_conflict_do_nothing(index_elements=["request_hash"]).returning(
        _TABLE.c.request_hash
    )


@lru_cache
def _store_statement() -> Any:
    insert = conflict_insert(_TABLE)
    return insert.on_conflict_do_update(
        index_elements=["request_hash"],
        set_={name: getattr(insert.excluded, name) for name in _STORED_COLUMNS},
    )


def _answer(row: Any) -> CachedAnswer:
    return CachedAnswer(
        text=row.response_text or "",
        response=row.response or {},
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        latency_ms=row.latency_ms,
    )


def _hash_in(hashes: Sequence[str]) -> Any:
    """`request_hash IN (...)` with the hashes written into the SQL text.

    As bound parameters the query text would repeat, psycopg would prepare it, and PostgreSQL
    would keep a generic plan made while the table was empty: a sequential scan comparing every
    row with every parameter, which took 13 s for 20,000 lookups right after a first run.
    """
    return LLMCall.request_hash.in_(bindparam("hashes", list(hashes), literal_execute=True))


def _slices(items: list[T]) -> list[list[T]]:
    return [items[i : i + _ROWS_PER_STATEMENT] for i in range(0, len(items), _ROWS_PER_STATEMENT)]


def lookup_answers(side: Session, hashes: Sequence[str]) -> dict[str, CachedAnswer]:
    """The stored answers among `hashes`."""
    found: dict[str, CachedAnswer] = {}
    for part in _slices(sorted(set(hashes))):
        rows = side.execute(select(*_ANSWER_COLUMNS).where(_hash_in(part), LLMCall.state == _DONE))
        found.update((row.request_hash, _answer(row)) for row in rows)
    return found


def lookup_each(side: Session, hashes: list[str]) -> list[CachedAnswer | None]:
    """The stored answer of each hash, or None (a batch of single lookups)."""
    found = lookup_answers(side, hashes)
    return [found.get(key) for key in hashes]


def claim_calls(side: Session, claims: list[ClaimRequest]) -> list[ClaimOutcome]:
    """Claim each request: insert its pending row, or take over one whose lease ran out."""
    wanted = {claim.request_hash: claim for claim in reversed(claims)}
    # Sorted, so that two workers inserting overlapping batches lock rows in the same order.
    ordered = [wanted[key] for key in sorted(wanted)]
    now = utcnow()
    # One statement, compiled once: executemany with RETURNING is sent as a multi-row insert.
    rows = [_pending_row(claim, now) for claim in ordered]
    inserted = set(side.execute(_claim_statement(), rows).scalars())
    outcomes: dict[str, ClaimOutcome] = {
        c.request_hash: ClaimOutcome(c.lease_until) for c in ordered if c.request_hash in inserted
    }
    taken = [claim for claim in ordered if claim.request_hash not in outcomes]
    outcomes.update(_existing(side, taken, now))
    seen: set[str] = set()
    results = []
    for claim in claims:
        first = claim.request_hash not in seen
        seen.add(claim.request_hash)
        results.append(outcomes.get(claim.request_hash, BUSY) if first else BUSY)
    return results


def _pending_row(claim: ClaimRequest, now: datetime) -> dict[str, Any]:
    return {
        "request_hash": claim.request_hash,
        "endpoint": claim.endpoint,
        "model": claim.model,
        "state": _PENDING,
        "lease_until": claim.lease_until,
        "request": claim.request,
        "created_at": now,
    }


def _existing(side: Session, claims: list[ClaimRequest], now: datetime) -> dict[str, ClaimOutcome]:
    """Outcomes for requests that already had a row: its answer, a takeover, or busy."""
    if not claims:
        return {}
    outcomes: dict[str, ClaimOutcome] = {}
    pending = []
    for part in _slices(claims):
        keys = [claim.request_hash for claim in part]
        for row in side.execute(select(*_ANSWER_COLUMNS).where(_hash_in(keys))):
            if row.state == _DONE:
                outcomes[row.request_hash] = ClaimOutcome(answer=_answer(row))
            else:
                pending.append(row.request_hash)
    by_hash = {claim.request_hash: claim for claim in claims}
    for key in sorted(pending):
        if _take_over(side, by_hash[key], now):
            outcomes[key] = ClaimOutcome(by_hash[key].lease_until)
    return outcomes


def _take_over(side: Session, claim: ClaimRequest, now: datetime) -> bool:
    """Take a pending row whose holder's lease has run out (the holder died or gave up)."""
    result = side.execute(
        update(LLMCall)
        .where(
            LLMCall.request_hash == claim.request_hash,
            LLMCall.state == _PENDING,
            or_(LLMCall.lease_until.is_(None), LLMCall.lease_until < now),
        )
        .values(lease_until=claim.lease_until, endpoint=claim.endpoint, model=claim.model)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def store_calls(side: Session, calls: list[StoredCall]) -> list[None]:
    """Keep the answers (overwriting their claims): they are never sent again."""
    unique = {call.request_hash: call for call in calls}
    now = utcnow()
    rows = [_done_row(unique[key], now) for key in sorted(unique)]
    side.execute(_store_statement(), rows)
    return [None] * len(calls)


def _done_row(call: StoredCall, now: datetime) -> dict[str, Any]:
    return {
        "request_hash": call.request_hash,
        "endpoint": call.endpoint,
        "model": call.model,
        "state": _DONE,
        "lease_until": None,
        "request": call.request,
        "response": call.response,
        "response_text": call.text,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost": call.cost,
        "latency_ms": call.latency_ms,
        "created_at": now,
    }


def release_claims(side: Session, claims: list[tuple[str, datetime]]) -> list[None]:
    """Drop pending rows that are still ours (same lease), so that a later run may send them."""
    for key, lease_until in sorted(claims):
        side.execute(
            delete(LLMCall)
            .where(
                LLMCall.request_hash == key,
                LLMCall.state == _PENDING,
                LLMCall.lease_until == lease_until,
            )
            .execution_options(synchronize_session=False)
        )
    return [None] * len(claims)


def renew_claims(side: Session, renewals: list[Renewal]) -> list[bool]:
    """Extend leases still held; False where another worker has taken the claim over."""
    kept: dict[tuple[str, datetime], bool] = {}
    for renewal in sorted(renewals, key=lambda r: r.request_hash):
        result = side.execute(
            update(LLMCall)
            .where(
                LLMCall.request_hash == renewal.request_hash,
                LLMCall.state == _PENDING,
                LLMCall.lease_until == renewal.current,
            )
            .values(lease_until=renewal.until)
            .execution_options(synchronize_session=False)
        )
        kept[(renewal.request_hash, renewal.current)] = getattr(result, "rowcount", 0) == 1
    return [kept[(r.request_hash, r.current)] for r in renewals]


class ResponseCache:
    """One client's view of the cache: batched claims, stores, releases and renewals."""

    def __init__(self, batcher: Batcher, writer: SideWriter) -> None:
        self._batcher = batcher
        self._writer = writer

    async def lookup(self, hashes: Sequence[str]) -> dict[str, CachedAnswer]:
        """The stored answers among `hashes`, in one query."""
        if not hashes:
            return {}
        [found] = await self._writer.run([lambda side: lookup_answers(side, hashes)])
        return found

    async def claim(self, claim: ClaimRequest) -> ClaimOutcome:
        """Claim a request before sending it."""
        outcome: ClaimOutcome = await self._batcher.submit(claim_calls, claim)
        return outcome

    async def store(self, call: StoredCall) -> None:
        """Keep an answer."""
        await self._batcher.submit(store_calls, call)

    async def release(self, request_hash: str, lease_until: datetime) -> None:
        """Give a claim up after a failure."""
        await self._batcher.submit(release_claims, (request_hash, lease_until))

    def release_later(self, request_hash: str, lease_until: datetime) -> None:
        """Give a claim up without waiting (the call was cancelled)."""
        self._batcher.post(release_claims, (request_hash, lease_until))

    async def renew(self, renewal: Renewal) -> bool:
        """Extend a lease; False when the claim is no longer ours."""
        kept: bool = await self._batcher.submit(renew_claims, renewal)
        return kept
