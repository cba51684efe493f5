"""Job budgets: the most a call can cost is reserved before it is sent; spend never runs past."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.jobs.service import resume_job
from app.models.jobs import Job, JobState
from app.platform.config import LLMEndpoint, get_settings
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.llm.budget import BudgetExhausted, call_cost, estimate_prompt_tokens, max_cost
from app.platform.llm.chat import ChatRequest, ChatResult
from app.platform.llm.endpoints import get_endpoint, require_priced
from tests.llm_server import DEFAULT_REPLY, LLMServer
from tests.scoring.conftest import ask, client_for, complete_all, gather_in


def make_job(budget_usd: float | None) -> int:
    """A job with a budget (or none)."""
    with transaction() as session:
        job = Job(kind="score", queue="io", budget_usd=budget_usd)
        session.add(job)
        session.flush()
        return job.id


def money(job_id: int) -> tuple[float, float]:
    """The job's (spent, reserved) USD, as committed."""
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.spent_usd, job.reserved_usd


def set_spent(job_id: int, spent_usd: float) -> None:
    with transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(spent_usd=spent_usd))


def most(endpoint: LLMEndpoint, request: ChatRequest) -> float:
    return max_cost(endpoint, request.messages, request.max_tokens)


def concurrently(
    endpoint: LLMEndpoint, requests: list[ChatRequest], job_id: int
) -> list[ChatResult | BaseException]:
    with transaction() as session:
        results, _ = asyncio.run(gather_in(session, endpoint, requests, job_id))
    return results


def test_a_budget_needs_a_priced_endpoint() -> None:
    half = LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="m", price_in=0.001)
    with pytest.raises(InvalidInput) as refused:
        require_priced("cheap", half)
    assert "'cheap'" in refused.value.message
    assert "SIFT_LLM__CHEAP__PRICE_IN" in refused.value.message
    assert "SIFT_LLM__CHEAP__PRICE_OUT" in refused.value.message
    require_priced("cheap", half.model_copy(update={"price_out": 0.002}))


def test_the_largest_cost_covers_prompt_and_every_completion_token() -> None:
    endpoint = LLMEndpoint(base_url="http://x/v1", model="m", price_in=0.001, price_out=0.002)
    request = ask("x" * 3000, max_tokens=100)
    prompt_tokens = estimate_prompt_tokens(request.messages)
    assert prompt_tokens > sum(len(text) for _, text in request.messages) / 4
    assert most(endpoint, request) == pytest.approx(call_cost(endpoint, prompt_tokens, 100))
    # A character outside ASCII can be a token of its own: the estimate grows with UTF-8 bytes.
    assert estimate_prompt_tokens((("user", "漢" * 300),)) >= 300


@pytest.mark.usefixtures("committed")
def test_an_unpriced_endpoint_is_refused_for_a_job_with_a_budget(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIFT_LLM__DEFAULT__PRICE_OUT")
    get_settings.cache_clear()
    endpoint = get_endpoint("default")
    job_id = make_job(1.0)
    with pytest.raises(InvalidInput, match="SIFT_LLM__DEFAULT__PRICE_OUT"):
        complete_all(endpoint, [ask("Rate this.")], job_id=job_id)
    assert llm_server.stats()["total"] == 0
    assert complete_all(endpoint, [ask("Rate this.")], job_id=make_job(None))[0][0].text


@pytest.mark.usefixtures("committed")
def test_a_call_that_does_not_fit_is_not_sent(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("Rate this.")
    job_id = make_job(most(llm_endpoint, request) * 0.9)
    with pytest.raises(BudgetExhausted):
        complete_all(llm_endpoint, [request], job_id=job_id)
    assert llm_server.stats()["total"] == 0
    assert money(job_id) == (0.0, 0.0)
    # The claim it took was given back: a job with money sends it.
    [result], _ = complete_all(llm_endpoint, [request], job_id=make_job(1.0))
    assert result.text == DEFAULT_REPLY and not result.cached
    assert llm_server.stats()["total"] == 1


@pytest.mark.usefixtures("committed")
def test_spend_is_the_sum_of_the_answers_and_nothing_stays_reserved(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    job_id = make_job(1.0)
    results, stats = complete_all(llm_endpoint, [ask(f"Rate {i}.") for i in range(6)], job_id)
    spent, reserved = money(job_id)
    assert spent == pytest.approx(sum(r.cost for r in results)) == pytest.approx(stats.cost)
    assert reserved == pytest.approx(0.0)


@pytest.mark.usefixtures("committed")
def test_calls_in_flight_cannot_reserve_more_than_the_budget(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    requests = [ask(f"[[latency:0.2]] Rate {i}.") for i in range(10)]
    budget = most(llm_endpoint, requests[0]) * 3.5
    job_id = make_job(budget)
    results = concurrently(llm_endpoint, requests, job_id)
    answered = [r for r in results if isinstance(r, ChatResult)]
    assert len(answered) == 3 and all(r.text == DEFAULT_REPLY for r in answered)
    assert sum(isinstance(r, BudgetExhausted) for r in results) == 7
    assert llm_server.stats()["total"] == 3
    spent, reserved = money(job_id)
    assert spent == pytest.approx(sum(r.cost for r in answered)) and spent <= budget
    assert reserved == pytest.approx(0.0)


@pytest.mark.usefixtures("committed")
def test_a_failed_call_gives_its_reservation_back(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    job_id = make_job(1.0)
    [failed], _ = complete_all(llm_endpoint, [ask("[[status:500:times=9]] Rate.")], job_id)
    assert failed.failed
    assert money(job_id) == (0.0, 0.0)


@pytest.mark.usefixtures("committed")
def test_an_answer_without_usage_is_charged_its_reservation(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("[[usage:none]] Rate this.")
    job_id = make_job(1.0)
    [result], _ = complete_all(llm_endpoint, [request], job_id)
    assert result.text == DEFAULT_REPLY and result.prompt_tokens == 0
    assert money(job_id) == (pytest.approx(most(llm_endpoint, request)), pytest.approx(0.0))


@pytest.mark.usefixtures("committed")
def test_cached_answers_cost_nothing_and_need_no_budget(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    requests = [ask(f"Rate {i}.") for i in range(3)]
    complete_all(llm_endpoint, requests)
    job_id = make_job(0.01)
    set_spent(job_id, 0.01)
    results, stats = complete_all(llm_endpoint, requests, job_id)
    assert all(r.cached for r in results) and stats.cache_hits == 3
    assert money(job_id) == (0.01, 0.0)
    assert llm_server.stats()["total"] == 3


def test_resume_forgets_what_stopped_calls_held(committed: Engine) -> None:
    job_id = make_job(1.0)
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(reserved_usd=0.4, state=JobState.PAUSED_BUDGET.value)
        )
    with transaction() as session:
        run_jobs_here(session)
        resume_job(session, job_id)
    assert money(job_id) == (0.0, 0.0)


@pytest.mark.usefixtures("committed")
def test_a_cancelled_call_gives_its_reservation_back(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    job_id = make_job(1.0)

    async def cancel_midway(session: Session) -> None:
        async with client_for(session, llm_endpoint, job_id) as client:
            call = asyncio.ensure_future(client.complete(ask("[[hang]] Rate this.")))
            await asyncio.sleep(0.2)
            held = session.scalar(select(Job.reserved_usd).where(Job.id == job_id))
            assert held is not None and held > 0
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call

    with transaction() as session:
        asyncio.run(cancel_midway(session))
    assert money(job_id) == (0.0, 0.0)
