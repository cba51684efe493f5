"""A real Celery worker killed (SIGKILL) while its score job waits on Batch API batches: the
worker started after it polls the same batches (their ids are in the database) and sends
nothing twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from app.datasets.service import create_dataset
from app.models import Job, LLMBatch, Score
from app.platform.config import get_settings
from app.platform.db import transaction
from app.scoring.service import start_score_job
from tests.factories import make_example
from tests.llm_server import LLMServer
from tests.scoring.test_worker_kill import _start_worker, _wait

EXAMPLES = 8


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    with LLMServer() as llm:
        settings = {
            "SIFT_LLM__DEFAULT__BASE_URL": llm.base_url,
            "SIFT_LLM__DEFAULT__MODEL": "test-model",
            "SIFT_SCORE_CHUNK_SIZE": "4",
            "SIFT_BATCH_POLL_S": "0.3",
            "SIFT_JOB_STALE_AFTER_S": "2",
            "SIFT_JOB_SWEEP_INTERVAL_S": "1",
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield llm
    get_settings.cache_clear()


def _polled_batches() -> int:
    with transaction() as session:
        rows = session.scalars(select(LLMBatch)).all()
        return sum(row.batch_id is not None and row.status == "in_progress" for row in rows)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_mid_batch_leaves_nothing_sent_twice(
    committed: Engine, server: LLMServer, tmp_path: Path
) -> None:
    server.hold_batches()
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        for i in range(EXAMPLES):
            make_example(session, dataset, i)
        job_id = start_score_job(session, dataset, "alpagasus", batch=True).id
    log = tmp_path / "worker.log"
    worker = _start_worker(log)
    try:
        _wait(lambda: _polled_batches() == 2, 60, "both batches submitted and polled")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        with transaction() as session:
            assert session.get_one(Job, job_id).state == "running"
            assert session.scalars(select(Score)).first() is None

        server.release_batches()
        worker = _start_worker(log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with transaction() as session:
                job = session.get_one(Job, job_id)
                if job.is_terminal:
                    break
            time.sleep(0.2)
        assert job.state == "succeeded", (job.error, log.read_text()[-3000:])
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)

    stats = server.batch_stats()
    assert (stats["files_uploaded"], stats["batches_created"], stats["lines_answered"]) == (
        2,
        2,
        EXAMPLES,
    )
    assert sorted(server.stats()["by_prompt"].values()) == [1] * EXAMPLES
    with transaction() as session:
        assert sorted(session.scalars(select(Score.state))) == ["ok"] * EXAMPLES
        assert job.counts["batched"] == EXAMPLES
