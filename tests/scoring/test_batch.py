"""Score jobs through the OpenAI Batch API (`--batch`), against the test server's /v1/files and
/v1/batches: the same scores as live calls, each request sent once, the same response cache,
half the price in the budget, and a batch stopped mid-way polled again instead of sent again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from typer.testing import CliRunner

from app.entrypoints.cli import cli
from app.jobs.service import cancel_job, resume_job
from app.models import Job, JobChunk, JobState, LLMBatch, LLMCall, Score
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.jobs.batch_wait import WAITING
from app.platform.jobs.chunked import execute_chunk
from app.platform.jobs.runner import execute_job
from app.platform.llm.batch_status import batch_lines, job_batches
from tests.llm_server import LLMServer
from tests.scoring.test_tasks import _dataset, _score, _scores

PRICE_IN, PRICE_OUT = 0.01, 0.02
LABELS = {
    "plain": "",
    "three": "[[reply:3\\nok]]",
    "prose": "[[reply:A fine answer, all things considered.]]",
    "eleven": "[[reply:11/10\\nSuperb.]]",
    "colon": "[[reply:The Score: 3.5 overall]]",
    "broken": "[[status:500:times=99]]",
    "cut": "[[reply:4][[finish:length]]",
}


@pytest.fixture
def server(committed: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The test server as the `default` endpoint, priced; batches polled every 50 ms."""
    with LLMServer() as llm:
        for name, value in {
            "BASE_URL": llm.base_url,
            "MODEL": "test-model",
            "PRICE_IN": str(PRICE_IN),
            "PRICE_OUT": str(PRICE_OUT),
            "TIMEOUT_S": "2",
            "MAX_ATTEMPTS": "2",
        }.items():
            monkeypatch.setenv(f"SIFT_LLM__DEFAULT__{name}", value)
        monkeypatch.setenv("SIFT_SCORE_CHUNK_SIZE", "4")
        monkeypatch.setenv("SIFT_BATCH_POLL_S", "0.05")
        get_settings.cache_clear()
        yield llm
    get_settings.cache_clear()


def _shape(scores: dict[str, Score]) -> dict[str, tuple[Any, ...]]:
    return {
        h: (s.state, s.value, s.raw if s.state != "failed" else None) for h, s in scores.items()
    }


def _forget(*, answers: bool) -> None:
    with transaction() as session:
        session.execute(delete(Score))
        if answers:
            session.execute(delete(LLMCall))


def test_batch_scores_equal_live_scores_and_each_request_goes_out_once(server: LLMServer) -> None:
    labels = _dataset(LABELS)
    job = _score("alpagasus", batch=True)
    assert job.state == JobState.SUCCEEDED.value, job.error
    batched = _scores("alpagasus")
    chunks = -(-len(LABELS) // 4)
    assert server.batch_stats() | {"statuses": {}} == {
        "files_uploaded": chunks,
        "batches_created": chunks,
        "lines_answered": len(LABELS),
        "statuses": {},
    }
    assert server.stats()["total"] == len(LABELS)  # no live request
    assert (job.counts["batched"], job.counts["sent"], job.counts["failed"]) == (6, 0, 1)
    broken = next(h for h, label in labels.items() if label == "broken")
    assert batched[broken].state == "failed" and batched[broken].value is None
    assert "HTTP 500" in (batched[broken].raw or "")  # reported per record, never a number

    # The answers went into the response cache under the live path's keys: nothing is sent.
    _forget(answers=False)
    live = _score("alpagasus")
    assert server.stats()["total"] == len(LABELS) + 2  # only the failed one, tried twice
    assert live.counts["cache_hits"] == len(LABELS) - 1

    # And live calls, with nothing cached, store exactly what the batch stored.
    _forget(answers=True)
    assert _score("alpagasus").state == JobState.SUCCEEDED.value
    assert _shape(_scores("alpagasus")) == _shape(batched)


def test_a_batch_costs_half_the_live_price_and_is_reserved_first(server: LLMServer) -> None:
    _dataset({f"t{i}": "" for i in range(6)})
    batch = _score("alpagasus", batch=True, budget_usd=1.0)
    assert batch.state == JobState.SUCCEEDED.value, batch.error
    with transaction() as session:
        rows = session.scalars(select(LLMBatch)).all()
        assert sum(row.reserved_usd for row in rows) > sum(row.cost_usd for row in rows) > 0
    _forget(answers=True)
    live = _score("alpagasus", budget_usd=1.0)
    assert batch.spent_usd == pytest.approx(live.spent_usd / 2)
    assert batch.reserved_usd == 0 and live.reserved_usd == 0
    assert sum(s.cost for s in _scores("alpagasus").values()) == pytest.approx(live.spent_usd)


def test_a_budget_too_small_for_a_batch_pauses_before_sending(server: LLMServer) -> None:
    _dataset({f"t{i}": "" for i in range(4)})
    # One request reserves about 0.0035 USD at the batch price (256 tokens out).
    job = _score("alpagasus", batch=True, budget_usd=0.004)
    assert job.state == JobState.PAUSED_BUDGET.value
    assert 1 <= server.batch_stats()["lines_answered"] < 4
    assert server.stats()["total"] == server.batch_stats()["lines_answered"]
    assert job.spent_usd <= 0.004 and job.reserved_usd == 0
    with transaction() as session:
        resume_job(session, job.id, budget_usd=1.0)
    assert execute_job(job.id, inline=True) == JobState.SUCCEEDED.value
    assert len(_scores("alpagasus")) == 4
    assert all(count == 1 for count in server.stats()["by_prompt"].values())


def test_a_job_stopped_mid_batch_polls_the_same_batch_when_resumed(server: LLMServer) -> None:
    _dataset({f"t{i}": "" for i in range(6)})
    server.hold_batches()
    with transaction() as session:
        from app.models import Dataset
        from app.scoring.service import start_score_job

        pool = session.scalars(select(Dataset)).one()
        job_id = start_score_job(session, pool, "alpagasus", batch=True).id
    assert execute_job(job_id) == JobState.RUNNING.value  # planned; its chunks go to workers
    with transaction() as session:
        chunk_ids = session.scalars(select(JobChunk.id).where(JobChunk.job_id == job_id)).all()
    assert [execute_chunk(c, send=False) for c in chunk_ids] == [WAITING, WAITING]
    assert [execute_chunk(c, send=False) for c in chunk_ids] == [WAITING, WAITING]  # polled
    with transaction() as session:
        line = batch_lines(session, [job_id])[job_id]
        assert line == "Batch API: 2 batches (2 in_progress), 0 of 6 requests answered"
    shown = CliRunner().invoke(cli, ["jobs", "show", str(job_id)])
    assert shown.exit_code == 0, shown.output
    assert "2 in_progress" in shown.output and "0/4" in shown.output and "batch-0" in shown.output
    with transaction() as session:
        cancel_job(session, job_id)
    with transaction() as session:
        resume_job(session, job_id)
    server.release_batches()
    assert execute_job(job_id, inline=True) == JobState.SUCCEEDED.value
    assert server.batch_stats()["batches_created"] == 2
    assert server.batch_stats()["files_uploaded"] == 2
    assert sorted(server.stats()["by_prompt"].values()) == [1] * 6
    with transaction() as session:
        views = job_batches(session, [job_id])[job_id]
        assert [(v.status, v.completed, v.collected) for v in views] == [
            ("completed", 4, True),
            ("completed", 2, True),
        ]
        assert session.get(Job, job_id).counts["batched"] == 6  # type: ignore[union-attr]
    assert len(_scores("alpagasus")) == 6
