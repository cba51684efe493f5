"""Evaluation fixtures: the test LLM server as three endpoints (two models and a judge)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.entrypoints.domains import load_every_job_kind
from app.evaluation.service import import_test_set_records, start_evaluation
from app.models import EvalItem, EvalRun, Job
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from tests.endpoints import configure_endpoint
from tests.llm_server import LLMServer

load_every_job_kind()

# Endpoint name -> the model it asks; all three are the same test server.
ENDPOINTS = {"alpha": "alpha-model", "beta": "beta-model", "judge": "judge-model"}


@pytest.fixture(scope="session")
def _shared_server() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture
def llm(_shared_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The test server, reset, as the priced endpoints `alpha`, `beta` and `judge`; alpha and
    beta answer "<name> answer to <the prompt's first word>"."""
    _shared_server.reset()
    for name, model in ENDPOINTS.items():
        configure_endpoint(
            monkeypatch,
            name,
            base_url=_shared_server.base_url,
            model=model,
            price_in=0.01,
            price_out=0.02,
            timeout_s=2,
            max_attempts=2,
        )
    for name in ("alpha", "beta"):
        _shared_server.script(r"^(\S+)", f"{name} answer to \\1", model=ENDPOINTS[name])
    yield _shared_server
    get_settings.cache_clear()


def make_test_set(name: str, prompts: list[Any]) -> None:
    """A test set of prompts (strings, or lists of turns), ids p1, p2, ..."""
    records = [
        {"question_id": f"p{i}", "turns": p if isinstance(p, list) else [p]}
        for i, p in enumerate(prompts, 1)
    ]
    with transaction() as session:
        import_test_set_records(session, name, records)


def run_evaluation(test_set: str, a: str = "alpha", b: str = "beta", **options: Any) -> int:
    """Start an evaluation and run its job here, to its end; the evaluation's id."""
    with transaction() as session:
        run_jobs_here(session)
        run = start_evaluation(session, a, b, test_set, "judge", **options)
        run_id, job_id = run.id, run.job_id
    assert job_id is not None
    execute_job(job_id, inline=True)
    return run_id


def load_run(run_id: int) -> tuple[EvalRun, Job, dict[str, EvalItem]]:
    """An evaluation, its job, and its items by prompt id, detached."""
    with transaction() as session:
        run = session.get(EvalRun, run_id)
        assert run is not None and run.job_id is not None
        job = session.get(Job, run.job_id)
        assert job is not None
        items = session.scalars(select(EvalItem).where(EvalItem.run_id == run_id)).all()
        session.expunge_all()
    return run, job, {item.prompt_id: item for item in items}


@pytest.fixture
def db(committed: Engine) -> Engine:
    """The committed database (an alias that reads better in these tests)."""
    return committed
