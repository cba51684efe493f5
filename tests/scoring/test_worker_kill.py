"""A real Celery worker killed (SIGKILL) in the middle of a scoring job on Redis and
PostgreSQL: after a restart every example is scored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from app.datasets.service import create_dataset
from app.models import ChunkState, Job, JobChunk, Score
from app.platform.config import get_settings
from app.platform.db import transaction
from app.scoring.service import start_score_job
from tests.factories import make_example
from tests.llm_server import LLMServer

EXAMPLES = 48
CONCURRENCY = 3


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """A slow endpoint, so that the worker is killed with calls in flight."""
    with LLMServer(latency_s=0.15) as llm:
        settings = {
            "SIFT_LLM__DEFAULT__BASE_URL": llm.base_url,
            "SIFT_LLM__DEFAULT__MODEL": "test-model",
            "SIFT_LLM__DEFAULT__CONCURRENCY": str(CONCURRENCY),
            "SIFT_LLM__DEFAULT__TIMEOUT_S": "2",
            "SIFT_LLM__DEFAULT__MAX_ATTEMPTS": "2",
            "SIFT_SCORE_CHUNK_SIZE": "8",
            "SIFT_JOB_STALE_AFTER_S": "2",
            "SIFT_JOB_SWEEP_INTERVAL_S": "1",
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield llm
    get_settings.cache_clear()


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so that the kill takes the pool's child processes too.
    argv = [
        sys.executable,
        "-m",
        "app.entrypoints.cli",
        "worker",
        "--queues",
        "io,cpu",
        "--concurrency",
        "1",
    ]
    return subprocess.Popen(
        [*argv, "--beat"],
        env=os.environ.copy(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _chunks(job_id: int) -> dict[str, int]:
    with transaction() as session:
        rows = session.execute(
            select(JobChunk.state, func.count())
            .where(JobChunk.job_id == job_id)
            .group_by(JobChunk.state)
        ).all()
    return {state: count for state, count in rows}


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.redis
def test_a_killed_worker_leaves_nothing_scored_twice(
    committed: Engine, server: LLMServer, tmp_path: Path
) -> None:
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        for i in range(EXAMPLES):
            make_example(session, dataset, i)
        job_id = start_score_job(session, dataset, "alpagasus").id
    log = tmp_path / "worker.log"
    worker = _start_worker(log)
    try:
        # Kill it once a chunk is done and the next one is half way.
        _wait(lambda: _chunks(job_id).get(ChunkState.DONE.value, 0) >= 1, 60, "a first chunk")
        stats_url = server.base_url.removesuffix("/v1") + "/_stats"
        done_calls = httpx.get(stats_url).json()["total"]
        _wait(lambda: httpx.get(stats_url).json()["total"] >= done_calls + 4, 30, "calls")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert _chunks(job_id).get(ChunkState.DONE.value, 0) < EXAMPLES // 8  # cut off

        worker = _start_worker(log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with transaction() as session:
                job = session.get(Job, job_id)
                assert job is not None
                if job.is_terminal:
                    break
            time.sleep(0.2)
        assert job.state == "succeeded", (job.error, log.read_text()[-3000:])
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)

    with transaction() as session:
        per_hash = session.execute(
            select(Score.content_hash, func.count()).group_by(Score.content_hash)
        ).all()
        states = set(session.scalars(select(Score.state)))
    assert len(per_hash) == EXAMPLES and all(count == 1 for _, count in per_hash)
    assert states == {"ok"}
    sent = httpx.get(server.base_url.removesuffix("/v1") + "/_stats").json()["by_prompt"]
    assert len(sent) == EXAMPLES
    # Answers are cached as they arrive (written at the next tick of the event loop): only
    # calls in flight at the kill, or answered in its last tick, go out again.
    assert sum(count - 1 for count in sent.values()) <= 2 * CONCURRENCY
