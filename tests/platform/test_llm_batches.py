"""The Batch API pieces on their own, against the test server: a batch created just before a
crash is found again by its marker instead of created twice, and lines a batch never answered
(it expired) are failures of their requests, never answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest
from sqlalchemy import Engine, select

from app.models import LLMBatch, LLMCall
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.errors import SiftError
from app.platform.jobs.dispatch import create_job, run_jobs_here
from app.platform.llm import batch_api
from app.platform.llm.batch_results import body_of
from app.platform.llm.batch_scope import BatchScope
from app.platform.llm.chat import ChatRequest, request_hash, request_payload
from app.platform.llm.endpoints import get_endpoint
from tests.endpoints import configure_endpoint
from tests.llm_server import LLMServer


@pytest.fixture
def llm(committed: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    with LLMServer() as server:
        configure_endpoint(monkeypatch, "default", base_url=server.base_url, model="m")
        yield server
    get_settings.cache_clear()


def _row(prompts: list[str], marker: str, **fields: object) -> tuple[int, int, dict[str, dict]]:
    """A job and a batch row asking `prompts`: (job id, row id, payload by request hash)."""
    endpoint = get_endpoint("default")
    payloads = {}
    for prompt in prompts:
        request = ChatRequest.of([{"role": "user", "content": prompt}])
        payloads[request_hash(endpoint, request)] = request_payload(endpoint, request)
    with transaction() as session:
        run_jobs_here(session)
        job = create_job(session, "score", {"batch": True}, queue="io")
        row = LLMBatch(job_id=job.id, endpoint="default", model="m", marker=marker,
                       status="submitting", requests=payloads, request_counts={},
                       failures={}, reserved_usd=0.0, cost_usd=0.0, **fields)  # fmt: skip
        session.add(row)
        session.flush()
        return job.id, row.id, payloads


def _settle(scope: BatchScope) -> None:
    deadline = time.monotonic() + 20
    while scope.refresh():
        assert time.monotonic() < deadline, "the batch never ended"
        time.sleep(0.05)


def test_a_batch_created_before_a_crash_is_polled_not_created_again(llm: LLMServer) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="none")
    prompts = ["What is the capital of France?", "Name a prime number."]
    endpoint = get_endpoint("default")
    lines = []
    for prompt in prompts:
        request = ChatRequest.of([{"role": "user", "content": prompt}])
        lines.append((request_hash(endpoint, request), body_of(request_payload(endpoint, request))))
    file_id = batch_api.upload(client, batch_api.input_file(lines), "before-the-crash.jsonl")
    made = batch_api.create(client, file_id, "crashed-marker", "24h")
    # The worker died after creating the batch and before writing its id down.
    job_id, row_id, payloads = _row(prompts, "crashed-marker", input_file_id=file_id)

    _settle(BatchScope(job_id, None))

    assert llm.batch_stats()["batches_created"] == 1
    assert llm.batch_stats()["files_uploaded"] == 1
    with transaction() as session:
        row = session.get_one(LLMBatch, row_id)
        assert (row.batch_id, row.status, row.failures) == (made.batch_id, "completed", {})
        cached = session.scalars(select(LLMCall.request_hash)).all()
    assert sorted(cached) == sorted(payloads)


def test_lines_an_expired_batch_never_answered_are_failures(llm: LLMServer) -> None:
    job_id, row_id, payloads = _row(["Fine.", "Never answered [[hang]]"], "expiring")

    scope = BatchScope(job_id, None)
    _settle(scope)

    with transaction() as session:
        row = session.get_one(LLMBatch, row_id)
        assert row.status == "expired" and row.collected_at is not None
        failures = row.failures
        answered = session.scalars(select(LLMCall.request_hash)).all()
    assert len(answered) == 1 and len(failures) == 1
    [(failed, why)] = failures.items()
    assert failed not in answered and why.startswith("batch_expired")
    assert scope.failures[failed].startswith("endpoint 'default': batch batch-")
    assert set(scope.answers) == set(payloads) - {failed}


def test_the_server_refuses_a_bad_input_file_and_cancels_a_held_batch(llm: LLMServer) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="none")
    bad = batch_api.upload(client, b'{"custom_id": "a", "method": "GET", "url": "/x"}\n', "b")
    refused = batch_api.create(client, bad, "bad", "24h")
    deadline = time.monotonic() + 10
    while not (refused := batch_api.retrieve(client, refused.batch_id)).ended:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert refused.status == "failed" and refused.errors and "url must be" in refused.errors
    llm.hold_batches()
    good = batch_api.input_file([("k", {"model": "m", "messages": []})])
    held = batch_api.create(client, batch_api.upload(client, good, "g"), "held", "24h")
    batch_api.cancel(client, held.batch_id)
    while not (held := batch_api.retrieve(client, held.batch_id)).ended:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert held.status == "cancelled" and llm.batch_stats()["lines_answered"] == 0


def test_an_endpoint_without_the_batch_api_is_one_clear_error(
    llm: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_endpoint(monkeypatch, "default", base_url=llm.base_url + "/none", model="m")
    job_id, _, _ = _row(["Hello?"], "nowhere")
    with pytest.raises(SiftError, match=r"endpoint 'default': batch of job \d+: HTTP 404"):
        BatchScope(job_id, None).refresh()
