"""Job budgets for priced LLM calls: reserve the most a call can cost before it is sent,
settle to what it did cost when it returns.

Reservations live on the job row (`reserved_usd`) and are written in side transactions, so
every worker sees them at once: spend can pass the budget only by what calls already in flight
cost beyond their reservation (a prompt that tokenises worse than the estimate). A call that
the budget cannot cover raises `BudgetExhausted` before it is sent; `run_all_paid` keeps the
work that was paid for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from app.models.jobs import Job
from app.platform.config import LLMEndpoint
from app.platform.errors import SiftError
from app.platform.llm.batching import Batcher

# A generous prompt estimate: three UTF-8 bytes per token (English runs near four characters
# per token, CJK near one), plus the chat template's tokens per message and per request.
_BYTES_PER_TOKEN = 3
_TOKENS_PER_MESSAGE = 8
_TOKENS_PER_REQUEST = 16


def estimate_prompt_tokens(messages: tuple[tuple[str, str], ...]) -> int:
    """An upper estimate of the prompt tokens of a chat request."""
    content = sum(len(text.encode("utf-8")) for _, text in messages)
    return (
        content // _BYTES_PER_TOKEN + 1 + _TOKENS_PER_MESSAGE * len(messages) + _TOKENS_PER_REQUEST
    )


def call_cost(endpoint: LLMEndpoint, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for a call's tokens at the endpoint's prices (0 when unpriced)."""
    if not endpoint.priced:
        return 0.0
    assert endpoint.price_in is not None and endpoint.price_out is not None
    return prompt_tokens / 1000 * endpoint.price_in + completion_tokens / 1000 * endpoint.price_out


def max_cost(
    endpoint: LLMEndpoint, messages: tuple[tuple[str, str], ...], max_tokens: int
) -> float:
    """The most a call can cost: the prompt estimate plus every completion token it may use."""
    return call_cost(endpoint, estimate_prompt_tokens(messages), max_tokens)


def job_budget(session: Session, job_id: int) -> float | None:
    """The job's budget in USD, or None when it has none."""
    budget: float | None = session.scalar(select(Job.budget_usd).where(Job.id == job_id))
    return budget


@dataclass(frozen=True)
class _Settlement:
    job_id: int
    reserved: float
    cost: float


def reserve_amounts(side: Session, reservations: list[tuple[int, float]]) -> list[bool]:
    """Reserve each amount if it still fits its job's budget; one conditional update each."""
    fits = []
    for job_id, amount in reservations:
        result = side.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.budget_usd.is_not(None),
                Job.spent_usd + Job.reserved_usd + amount <= Job.budget_usd,
            )
            .values(reserved_usd=Job.reserved_usd + amount)
            .execution_options(synchronize_session=False)
        )
        fits.append(getattr(result, "rowcount", 0) == 1)
    return fits


def settle_amounts(side: Session, settlements: list[_Settlement]) -> list[None]:
    """Turn reservations into spend, one update per job for the whole batch."""
    totals: dict[int, tuple[float, float]] = {}
    for item in settlements:
        reserved, cost = totals.get(item.job_id, (0.0, 0.0))
        totals[item.job_id] = (reserved + item.reserved, cost + item.cost)
    for job_id, (reserved, cost) in sorted(totals.items()):
        # Never below zero: a resume may have zeroed reservations that calls still held.
        remaining = case((Job.reserved_usd > reserved, Job.reserved_usd - reserved), else_=0.0)
        side.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(reserved_usd=remaining, spent_usd=Job.spent_usd + cost)
            .execution_options(synchronize_session=False)
        )
    return [None] * len(settlements)


class JobBudget:
    """One job's budget as a client charges it, through the client's write batcher."""

    def __init__(self, batcher: Batcher, job_id: int) -> None:
        self._batcher = batcher
        self.job_id = job_id

    async def reserve(self, amount: float) -> bool:
        """Reserve `amount` USD; False when it does not fit."""
        fits: bool = await self._batcher.submit(reserve_amounts, (self.job_id, amount))
        return fits

    async def settle(self, reserved: float, cost: float) -> None:
        """Replace a reservation by the call's real cost (0 for a failed call)."""
        await self._batcher.submit(settle_amounts, _Settlement(self.job_id, reserved, cost))

    def settle_later(self, reserved: float, cost: float) -> None:
        """Settle without waiting (the call was cancelled)."""
        self._batcher.post(settle_amounts, _Settlement(self.job_id, reserved, cost))


def settle_now(side: Session, job_id: int, reserved: float, cost: float) -> None:
    """Replace a reservation by what was spent, in `side`'s transaction (a collected batch)."""
    settle_amounts(side, [_Settlement(job_id, reserved, cost)])


class BudgetExhausted(SiftError):
    """The job's budget cannot cover the next call; nothing was sent."""

    status_code = 409


class CallDeferred(BudgetExhausted):
    """The call goes into a Batch API batch instead of being sent now. Callers stop as they do
    for a spent budget (keeping what was answered); the job runner rolls the unit of work back
    and waits on its batches instead of pausing (see `batch_scope`)."""


async def run_all_paid(
    work: Sequence[Coroutine[Any, Any, Any]], progress: Callable[[int], Any]
) -> bool:
    """Run every piece of work at once, reporting how many have ended; True when some could
    not be paid for (the others are kept). Any other error is raised once every piece has
    been cancelled and has ended, so that no call is left running on its own."""
    tasks = [asyncio.create_task(piece) for piece in work]
    paused, finished = False, 0
    try:
        for next_done in asyncio.as_completed(tasks):
            try:
                await next_done
            except BudgetExhausted:
                paused = True
            finished += 1
            progress(finished)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return paused
