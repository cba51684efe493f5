"""The response cache: a request is sent once, ever, also by workers asking at the same moment."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.scoring import LLMCall, LLMCallState
from app.platform.config import LLMEndpoint
from app.platform.db import side_transaction, transaction
from app.platform.llm import client as llm
from app.platform.llm.cache import StoredCall, store_calls
from app.platform.llm.chat import ChatRequest, ChatResult, request_hash, request_payload
from app.platform.llm.endpoints import get_endpoint
from tests.endpoints import configure_endpoint
from tests.llm_server import DEFAULT_REPLY, LLMServer
from tests.scoring.conftest import ask, client_for, complete_all, complete_one


def calls() -> list[LLMCall]:
    """Every row of the cache, as committed."""
    with transaction() as session:
        return list(session.scalars(select(LLMCall).order_by(LLMCall.id)))


def hold_claim(endpoint: LLMEndpoint, request: ChatRequest, lease_s: float) -> None:
    """Leave a pending claim as another worker would (a negative lease: a dead one)."""
    with transaction() as session:
        session.add(
            LLMCall(
                request_hash=request_hash(endpoint, request),
                endpoint="default",
                model=endpoint.model,
                state=LLMCallState.PENDING.value,
                lease_until=utcnow() + timedelta(seconds=lease_s),
                request=request_payload(endpoint, request),
            )
        )


def test_a_repeated_call_is_never_sent_again(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("Rate: the capital of France is Paris.")
    first, _ = complete_one(llm_endpoint, request)
    again, stats = complete_one(llm_endpoint, request)
    assert llm_server.stats()["total"] == 1
    assert again.cached and again.cost == 0 and again.text == first.text == DEFAULT_REPLY
    assert (again.prompt_tokens, again.completion_tokens) == (
        first.prompt_tokens,
        first.completion_tokens,
    )
    assert (stats.sent, stats.cache_hits) == (0, 1)
    [row] = calls()
    assert row.state == LLMCallState.DONE.value and row.lease_until is None
    assert row.response_text == DEFAULT_REPLY and row.cost == pytest.approx(first.cost)
    assert row.request["messages"][-1] == ["user", "Rate: the capital of France is Paris."]
    assert row.endpoint == "default" and row.model == "test-model"


def test_sampling_parameters_make_a_different_call(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    prompt = "Rate: water boils at 100 C at sea level."
    requests = [ask(prompt), ask(prompt, temperature=0.7), ask(prompt, max_tokens=64)]
    complete_all(llm_endpoint, requests)
    complete_all(llm_endpoint, requests)
    assert llm_server.count(prompt) == 3


def test_a_failure_is_not_cached(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    prompt = "[[status:503:times=3]] Rate this."
    failed, _ = complete_one(llm_endpoint, ask(prompt))
    assert failed.failed and calls() == []
    answered, _ = complete_one(llm_endpoint, ask(prompt))
    assert answered.text == DEFAULT_REPLY and not answered.cached
    assert llm_server.count(prompt) == 4
    assert [row.state for row in calls()] == [LLMCallState.DONE.value]


def test_prefetched_answers_touch_neither_database_nor_network(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    requests = [ask(f"Rate answer {i}.") for i in range(5)]
    complete_all(llm_endpoint, requests)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async def reuse(session: Session) -> list[ChatResult]:
        async with client_for(session, llm_endpoint) as client:
            await client.prefetch(requests)
            event.listen(committed, "before_cursor_execute", count)
            try:
                return await asyncio.gather(*(client.complete(r) for r in requests))
            finally:
                event.remove(committed, "before_cursor_execute", count)

    with transaction() as session:
        results = asyncio.run(reuse(session))
    assert all(r.cached and r.text == DEFAULT_REPLY for r in results)
    assert statements == [] and llm_server.stats()["total"] == 5


def test_one_client_sends_a_request_asked_twice_at_once_only_once(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    prompt = "[[latency:0.2]] Rate this."
    results, stats = complete_all(llm_endpoint, [ask(prompt)] * 5)
    assert llm_server.count(prompt) == 1
    assert [r.text for r in results] == [DEFAULT_REPLY] * 5
    assert (stats.sent, stats.cache_hits) == (1, 4)


def test_two_clients_asking_at_once_send_once(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    """The second client finds the first one's claim in the database and waits for its answer."""
    prompt = "[[latency:0.3]] Rate this."

    async def both(session: Session) -> list[ChatResult]:
        async with (
            client_for(session, llm_endpoint) as one,
            client_for(session, llm_endpoint) as two,
        ):
            return await asyncio.gather(one.complete(ask(prompt)), two.complete(ask(prompt)))

    with transaction() as session:
        results = asyncio.run(both(session))
    assert llm_server.count(prompt) == 1
    assert [r.text for r in results] == [DEFAULT_REPLY] * 2
    assert sorted(r.cached for r in results) == [False, True]


def test_two_workers_asking_at_once_send_once(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    """Two workers (threads, each with its own session and event loop) over the same requests,
    in opposite orders, at the same moment: each request reaches the server once."""
    prompts = [f"[[latency:0.2]] Rate answer {i}." for i in range(20)]
    start = threading.Barrier(2)
    outcomes: list[list[ChatResult]] = []

    async def work(session: Session, order: list[str]) -> list[ChatResult]:
        async with client_for(session, llm_endpoint) as client:
            start.wait()
            return await asyncio.gather(*(client.complete(ask(p)) for p in order))

    def worker(order: list[str]) -> None:
        with transaction() as session:
            outcomes.append(asyncio.run(work(session, order)))

    threads = [threading.Thread(target=worker, args=(order,)) for order in (prompts, prompts[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 2
    assert llm_server.stats()["total"] == 20
    assert all(r.text == DEFAULT_REPLY for results in outcomes for r in results)
    assert sum(not r.cached for results in outcomes for r in results) == 20


def test_a_live_claim_of_another_worker_is_waited_for(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("Rate this.")
    hold_claim(llm_endpoint, request, lease_s=30)

    async def other_worker_answers(session: Session) -> None:
        await asyncio.sleep(0.3)
        answer = StoredCall(
            request_hash(llm_endpoint, request),
            "default",
            "test-model",
            request_payload(llm_endpoint, request),
            text="2\nAnswered by the other worker.",
            response={"finish_reason": "stop"},
        )
        with side_transaction(session) as side:
            store_calls(side, [answer])

    async def ask_meanwhile(session: Session) -> ChatResult:
        async with client_for(session, llm_endpoint) as client:
            result, _ = await asyncio.gather(
                client.complete(request), other_worker_answers(session)
            )
            return result

    with transaction() as session:
        result = asyncio.run(ask_meanwhile(session))
    assert result.text == "2\nAnswered by the other worker." and result.cached
    assert llm_server.stats()["total"] == 0


def test_a_dead_workers_claim_is_taken_over_once_its_lease_ran_out(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("Rate this.")
    hold_claim(llm_endpoint, request, lease_s=-1)
    result, stats = complete_one(llm_endpoint, request)
    assert result.text == DEFAULT_REPLY and not result.cached and stats.sent == 1
    assert llm_server.stats()["total"] == 1
    [row] = calls()
    assert row.state == LLMCallState.DONE.value


def test_a_claim_is_kept_alive_through_a_long_retry_after(
    committed: Engine,
    llm_endpoint: LLMEndpoint,
    llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lease shorter than the wait is renewed first, so a second client polling meanwhile
    never takes it over and sends the request again."""
    monkeypatch.setattr(llm, "LEASE_SLACK_S", 0.2)
    configure_endpoint(monkeypatch, "default", timeout_s=0.3)
    endpoint = get_endpoint("default")
    prompt = "[[status:429:times=1:retry_after=1]] Rate this."

    async def both(session: Session) -> list[ChatResult]:
        async with client_for(session, endpoint) as one, client_for(session, endpoint) as two:
            first = asyncio.ensure_future(one.complete(ask(prompt)))
            await asyncio.sleep(0.1)
            return await asyncio.gather(first, two.complete(ask(prompt)))

    with transaction() as session:
        results = asyncio.run(both(session))
    assert [r.text for r in results] == [DEFAULT_REPLY] * 2
    assert llm_server.count(prompt) == 2  # the 429 and its retry, nothing more


def test_the_cache_outlives_a_task_that_rolls_back(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("Rate this.")

    async def ask_once(session: Session) -> None:
        async with client_for(session, llm_endpoint) as client:
            await client.complete(request)

    with pytest.raises(RuntimeError), transaction() as session:
        asyncio.run(ask_once(session))
        raise RuntimeError("the chunk failed after its calls")
    again, _ = complete_one(llm_endpoint, request)
    assert again.cached and llm_server.stats()["total"] == 1


def test_a_cancelled_call_gives_its_claim_back(
    committed: Engine, llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    async def cancel_midway(session: Session) -> None:
        async with client_for(session, llm_endpoint) as client:
            call = asyncio.ensure_future(client.complete(ask("[[hang]] Rate this.")))
            await asyncio.sleep(0.2)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call

    with transaction() as session:
        asyncio.run(cancel_midway(session))
    assert llm_server.stats()["total"] == 1
    assert calls() == []
