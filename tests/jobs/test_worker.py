"""A real Celery worker process runs jobs: on Redis with PostgreSQL, and on the embedded
file-system broker with SQLite (what `sift serve` starts)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from app.datasets.service import create_dataset, start_import_job
from app.models import Example, Job
from app.platform.db import transaction
from tests.factories import alpaca_record, write_json


@pytest.fixture
def worker(committed: Engine, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`sift worker` on every queue, with the test's settings; stopped after the test."""
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.entrypoints.cli",
            "worker",
            "--queues",
            "io,cpu,gpu",
            "--concurrency",
            "1",
        ],
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def _wait_for(job_id: int, timeout_s: float = 60) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction() as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.is_terminal:
                session.expunge(job)
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s}s")


def test_worker_runs_import_jobs(
    worker: subprocess.Popen[bytes], committed: Engine, tmp_path: Path
) -> None:
    good = write_json(tmp_path / "good.json", [alpaca_record(i) for i in range(300)])
    bad = write_json(tmp_path / "bad.json", [alpaca_record(1000), {"instruction": "?"}])
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        first = start_import_job(session, dataset, good).id
        again = start_import_job(session, dataset, good).id
        failing = start_import_job(session, dataset, bad).id

    done = _wait_for(first)
    assert done.state == "succeeded", (done.error, (tmp_path / "worker.log").read_text()[-2000:])
    repeated = _wait_for(again)
    assert repeated.state == "succeeded"
    # The broker does not promise order: whichever ran first imported all, the other nothing.
    assert sorted([done.counts["new"], repeated.counts["new"]]) == [0, 300]
    failed = _wait_for(failing)
    assert failed.state == "failed" and "record 2" in (failed.error or "")
    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(Example)) == 300
    assert worker.poll() is None
