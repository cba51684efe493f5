"""Calls to OpenAI-compatible endpoints: `LLMClient`, cached, retried, rate-limited and
budgeted.

`LLMClient.complete` sends one chat request with a per-attempt timeout, retries with backoff
that honours Retry-After (`retry`), spaced by the endpoint's rate limit (`rate_limit`), and a
response cache (`cache`) that sends a request at most once across all workers; with a job
budget (`budget`) it reserves the call's largest cost before sending.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import openai
import structlog
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.platform.config import LLMEndpoint
from app.platform.db import side_transaction
from app.platform.llm.batch_scope import current_scope
from app.platform.llm.batching import Batcher, SideWriter
from app.platform.llm.budget import BudgetExhausted, JobBudget, job_budget, max_cost
from app.platform.llm.cache import ClaimRequest, Renewal, ResponseCache, lookup_each
from app.platform.llm.chat import (
    CallStats,
    ChatRequest,
    ChatResult,
    request_body,
    request_hash,
    request_payload,
)
from app.platform.llm.endpoints import require_priced
from app.platform.llm.rate_limit import rate_limiter
from app.platform.llm.responses import error_message, from_cache, read_completion, to_stored
from app.platform.llm.retry import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    RETRY_STATUSES,
    backoff_s,
    retry_after_seconds,
)

log = structlog.get_logger(__name__)

# How often a call waits to see whether another worker's claim on it has been answered.
POLL_S = 0.1
# A claim outlives its attempt by this much: room for storing the answer and for clock skew
# between workers, so that nobody takes over a claim whose answer is on its way.
LEASE_SLACK_S = 10.0


class _LeaseLost(Exception):
    """Another worker took our claim over while we waited to retry; it will answer."""


@dataclass
class _Lease:
    request_hash: str
    until: datetime


class _Shared:
    """A call in flight in this client, which other coroutines asking the same may wait on."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.result: ChatResult | None = None
        self.error: BaseException | None = None


class LLMClient:
    """Chat completions from one named endpoint, cached, retried, rate-limited and budgeted.

    One client belongs to one event loop and to the session of the task that uses it.
    """

    def __init__(
        self,
        name: str,
        endpoint: LLMEndpoint,
        session: Session,
        *,
        job_id: int | None = None,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.session = session
        self.job_id = job_id
        self.stats = CallStats()
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._writer = SideWriter(session)
        self._batcher = Batcher(self._writer)
        self._cache = ResponseCache(self._batcher, self._writer)
        self._budget: JobBudget | None = None
        self._budget_read = job_id is None
        self._slots = asyncio.Semaphore(max(1, endpoint.concurrency))
        self._ahead = asyncio.Semaphore(2 * max(1, endpoint.concurrency))
        self._limiter = rate_limiter(name, endpoint)
        self._known: dict[str, ChatResult] = {}
        self._inflight: dict[str, _Shared] = {}
        self._keys: dict[ChatRequest, str] = {}  # computed by prefetch, used once by complete
        self._http: openai.AsyncOpenAI | None = None
        self._scope = current_scope(job_id)  # a Batch API job: nothing is sent live

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish pending cache writes and close the HTTP connections."""
        await self._batcher.drain()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def prefetch(self, requests: Sequence[ChatRequest]) -> None:
        """Look the requests up in one query, so that cached ones cost nothing later."""
        for request in requests:
            self._keys[request] = request_hash(self.endpoint, request)
        missing = list({key for key in self._keys.values() if key not in self._known})
        for key, answer in (await self._cache.lookup(missing)).items():
            self._known[key] = from_cache(answer, key)

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The answer to `request`: from the cache, or sent (once) with retries.

        Never raises for HTTP or response trouble (the result carries `error`); raises
        BudgetExhausted before sending when the job's budget cannot cover the call.
        """
        key = self._keys.pop(request, None) or request_hash(self.endpoint, request)
        if self._scope is not None:
            return await self._scope.answer(self, key, request)
        known = self._known.get(key)
        if known is not None:
            return self._hit(known)
        shared = self._inflight.get(key)
        if shared is not None:
            return await self._wait_for(shared, request)
        shared = self._inflight[key] = _Shared()
        try:
            result = await self._fetch(key, request)
            shared.result = result
            return result
        except Exception as exc:
            shared.error = exc
            raise
        finally:
            shared.done.set()
            del self._inflight[key]

    async def cached(self, key: str) -> ChatResult | None:
        """The cached answer of the request with this key (a cache hit), or None."""
        known = self._known.get(key)
        if known is None:
            answer = await self._batcher.submit(lookup_each, key)
            if answer is None:
                return None
            known = self._known[key] = from_cache(answer, key)
        return self._hit(known)

    async def _wait_for(self, shared: _Shared, request: ChatRequest) -> ChatResult:
        await shared.done.wait()
        if shared.error is not None:
            raise shared.error
        if shared.result is None:  # its owner was cancelled: ask ourselves
            return await self.complete(request)
        if shared.result.failed:
            self.stats.failed += 1
            return dataclasses.replace(shared.result)
        return self._hit(shared.result)

    def _hit(self, result: ChatResult) -> ChatResult:
        self.stats.cache_hits += 1
        return dataclasses.replace(result, cached=True, cost=0.0, extra=dict(result.extra))

    async def _fetch(self, key: str, request: ChatRequest) -> ChatResult:
        payload = request_payload(self.endpoint, request)
        self._read_budget()
        while True:
            result = await self._try(key, request, payload)
            if result is not None:
                return result
            # Another worker is sending it: wait for its answer (or for its lease to run out).
            await asyncio.sleep(POLL_S)

    async def _try(
        self, key: str, request: ChatRequest, payload: dict[str, Any]
    ) -> ChatResult | None:
        """Claim the request and send it; None when another worker holds the claim."""
        # Claims run a little ahead of the sends, so that their round trip to the database is
        # not spent holding a slot, and not so far ahead that their leases run low in the queue.
        async with self._ahead:
            outcome = await self._cache.claim(self._claim(key, payload))
            if outcome.answer is not None:
                self._known[key] = from_cache(outcome.answer, key)
                return self._hit(self._known[key])
            if outcome.lease_until is None:
                return None
            lease = _Lease(key, outcome.lease_until)
            reserved = 0.0
            try:
                async with self._slots:
                    reserved = await self._reserve(request)
                    result = await self._send(lease, request, key)
            except _LeaseLost:
                await self._settle(reserved, 0.0)
                return None
            except BudgetExhausted:
                await self._cache.release(lease.request_hash, lease.until)
                raise
            except BaseException:
                self._abandon(lease, reserved)
                raise
        return await asyncio.shield(self._finish(lease, payload, reserved, result))

    def _claim(self, key: str, payload: dict[str, Any]) -> ClaimRequest:
        until = utcnow() + timedelta(seconds=self.endpoint.timeout_s + LEASE_SLACK_S)
        return ClaimRequest(key, self.name, self.endpoint.model, payload, until)

    def _read_budget(self) -> None:
        """Whether the job has a budget, read once (and refused on an unpriced endpoint)."""
        if self._budget_read:
            return
        assert self.job_id is not None
        # Its own short read: the task's session holds no transaction while calls run.
        with side_transaction(self.session) as side:
            budget = job_budget(side, self.job_id)
        if budget is not None:
            require_priced(self.name, self.endpoint)
            self._budget = JobBudget(self._batcher, self.job_id)
        self._budget_read = True

    async def _reserve(self, request: ChatRequest) -> float:
        """Reserve the call's largest cost (0 without a budget); BudgetExhausted if it won't fit."""
        if self._budget is None:
            return 0.0
        amount = max_cost(self.endpoint, request.messages, request.max_tokens)
        if await self._budget.reserve(amount):
            return amount
        raise BudgetExhausted(
            f"job {self.job_id}: its budget cannot cover another call (up to ${amount:.6f})",
            job_id=self.job_id,
        )

    async def _settle(self, reserved: float, cost: float) -> None:
        if self._budget is not None:
            await self._budget.settle(reserved, cost)

    def _abandon(self, lease: _Lease, reserved: float) -> None:
        """Cancelled mid-call: give the claim and the reservation back without waiting."""
        self._cache.release_later(lease.request_hash, lease.until)
        if self._budget is not None and reserved:
            self._budget.settle_later(reserved, 0.0)

    async def _finish(
        self, lease: _Lease, payload: dict[str, Any], reserved: float, result: ChatResult
    ) -> ChatResult:
        if result.failed:
            self.stats.failed += 1
            log.warning("llm.failed", endpoint=self.name, error=result.error)
            await asyncio.gather(
                self._cache.release(lease.request_hash, lease.until), self._settle(reserved, 0.0)
            )
            return result
        # Without usage figures the real cost is unknown: charge the reservation instead.
        charged = reserved if result.extra.get("usage_missing") else result.cost
        await asyncio.gather(
            self._cache.store(
                to_stored(self.name, self.endpoint.model, lease.request_hash, payload, result)
            ),
            self._settle(reserved, charged),
        )
        self.stats.prompt_tokens += result.prompt_tokens
        self.stats.completion_tokens += result.completion_tokens
        self.stats.cost += result.cost
        self._known[lease.request_hash] = result
        return result

    def _client(self) -> openai.AsyncOpenAI:
        if self._http is None:
            # Our own retries only: the SDK's would retry before a long Retry-After.
            self._http = openai.AsyncOpenAI(
                base_url=self.endpoint.base_url,
                api_key=self.endpoint.api_key or "none",
                max_retries=0,
                timeout=self.endpoint.timeout_s,
            )
        return self._http

    async def _send(self, lease: _Lease, request: ChatRequest, key: str) -> ChatResult:
        """Up to max_attempts attempts; the result carries the last error if none succeeded."""
        body = request_body(self.endpoint.model, request)
        attempts = max(1, self.endpoint.max_attempts)
        last = "no attempt made"
        for attempt in range(1, attempts + 1):
            if self._limiter is not None:
                await self._limiter.wait()
            await self._keep_lease(lease, self.endpoint.timeout_s)
            if attempt == 1:
                self.stats.sent += 1
            else:
                self.stats.retries += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.endpoint.timeout_s):
                    # The generic post skips the typed create()'s request transformation and
                    # response models: a fifth of the SDK's CPU per call, and CPU bounds us.
                    data = await self._client().post("/chat/completions", cast_to=object, body=body)
                return self._answer(data, started, key, request)
            except openai.APIStatusError as exc:
                last, wait, final = self._status_failure(exc)
                if final:
                    return self._failure(last)
            except (openai.APITimeoutError, TimeoutError):
                last, wait = f"timed out ({self.endpoint.timeout_s:g} s)", None
            except openai.APIConnectionError as exc:
                last, wait = f"connection error: {exc.__cause__ or exc}", None
            except openai.OpenAIError as exc:
                return self._failure(f"{type(exc).__name__}: {exc}")
            if attempt < attempts:
                await self._pause(lease, attempt, last, wait)
        return self._failure(f"{last} after {attempts} attempts")

    def _status_failure(self, exc: openai.APIStatusError) -> tuple[str, float | None, bool]:
        """(error text, Retry-After, whether to give up now) for an HTTP error answer."""
        status = exc.status_code
        text = f"HTTP {status}"
        if status not in RETRY_STATUSES and status < 500:
            return f"{text}: {error_message(exc)}", None, True
        wait = retry_after_seconds(exc.response.headers)
        if wait is not None and wait > self.endpoint.max_retry_wait_s:
            limit = self.endpoint.max_retry_wait_s
            return (
                f"{text} asked to retry after {wait:g} s, beyond max_retry_wait_s={limit:g}",
                wait,
                True,
            )
        return text, wait, False

    async def _pause(self, lease: _Lease, attempt: int, last: str, wait: float | None) -> None:
        """Sleep before the next attempt: at least Retry-After, else backoff with jitter."""
        if wait is not None:
            # A little jitter on top, never below: clients told the same time spread out.
            delay = wait + random.uniform(0.01, 0.01 + min(1.0, wait * 0.1))
        else:
            delay = backoff_s(attempt, *self._backoff)
        log.info(
            "llm.retry", endpoint=self.name, attempt=attempt, error=last, wait_s=round(delay, 3)
        )
        await self._keep_lease(lease, delay + self.endpoint.timeout_s)
        await asyncio.sleep(delay)

    async def _keep_lease(self, lease: _Lease, ahead_s: float) -> None:
        """Make sure our claim lasts `ahead_s` more seconds (and the slack), or give up."""
        now = utcnow()
        if lease.until >= now + timedelta(seconds=ahead_s + LEASE_SLACK_S / 2):
            return
        until = now + timedelta(seconds=ahead_s + LEASE_SLACK_S)
        if not await self._cache.renew(Renewal(lease.request_hash, lease.until, until)):
            raise _LeaseLost()
        lease.until = until

    def _answer(self, data: Any, started: float, key: str, request: ChatRequest) -> ChatResult:
        latency_ms = (time.perf_counter() - started) * 1000
        result = read_completion(
            data,
            self.endpoint,
            key,
            logprobs=request.top_logprobs is not None,
            latency_ms=latency_ms,
        )
        if result is None:
            return self._failure(f"malformed response: {str(data)[:200]!r}")
        return result

    def _failure(self, error: str) -> ChatResult:
        return ChatResult(text=None, error=f"endpoint '{self.name}': {error}")
