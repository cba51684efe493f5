"""The job runner: one transaction per job, idempotent, cancellable, with progress."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.datasets.service import create_dataset, start_import_job
from app.entrypoints.domains import load_every_job_kind
from app.jobs.service import cancel_job, resume_job
from app.models import Dataset, Job, JobState
from app.models.base import utcnow
from app.platform.db import transaction
from app.platform.errors import Conflict
from app.platform.jobs.dispatch import create_job, run_jobs_here
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler
from app.platform.jobs.runner import execute_job
from app.platform.jobs.sweeper import sweep
from tests.factories import alpaca_record, write_json
from tests.jobs.conftest import committed_job, example_count

load_every_job_kind()


def _import_job(tmp_path: Path, records: list[dict[str, Any]], **options: Any) -> int:
    path = write_json(tmp_path / "records.json", records)
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        run_jobs_here(session)
        return start_import_job(session, dataset, path, **options).id


def test_import_job_succeeds_with_counts_and_progress(committed: Engine, tmp_path: Path) -> None:
    job_id = _import_job(tmp_path, [alpaca_record(i) for i in range(50)])
    seen: list[tuple[int, int | None]] = []
    assert execute_job(job_id, lambda done, total: seen.append((done, total))) == "succeeded"
    job = committed_job(job_id)
    assert job.counts["new"] == 50 and job.counts["invalid"] == 0
    assert job.attempts == 1 and job.finished_at is not None
    assert job.total and job.done == job.total  # bytes of the file, set not incremented
    assert seen[-1][0] == seen[-1][1]
    assert example_count() == 50


def test_a_job_delivered_twice_runs_once(committed: Engine, tmp_path: Path) -> None:
    job_id = _import_job(tmp_path, [alpaca_record(i) for i in range(5)])
    assert execute_job(job_id) == "succeeded"
    assert execute_job(job_id) == "skipped"
    assert committed_job(job_id).attempts == 1


def test_a_crashed_job_rerun_writes_nothing_twice(committed: Engine, tmp_path: Path) -> None:
    job_id = _import_job(tmp_path, [alpaca_record(i) for i in range(5)])
    assert execute_job(job_id) == "succeeded"
    with transaction() as session:  # as the sweeper leaves a job whose worker died
        job = session.get(Job, job_id)  # before recording success
        assert job is not None
        job.state = JobState.QUEUED.value
    assert execute_job(job_id) == "succeeded"
    assert committed_job(job_id).counts["new"] == 0
    assert example_count() == 5


def test_invalid_file_fails_the_job_and_writes_nothing(committed: Engine, tmp_path: Path) -> None:
    job_id = _import_job(tmp_path, [alpaca_record(1), {"instruction": "no answer"}])
    assert execute_job(job_id) == "failed"
    job = committed_job(job_id)
    assert "record 2" in (job.error or "") and "output" in (job.error or "")
    assert example_count() == 0


def test_cancel_while_running_rolls_back(committed: Engine) -> None:
    cancelling = threading.Thread()

    @job_handler("test-cancelled-midway", queue="cpu")
    def handler(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
        nonlocal cancelling
        create_dataset(session, "half-written")
        session.flush()

        def cancel() -> None:
            with transaction() as other:  # never waits on the running job
                cancel_job(other, job.id)

        cancelling = threading.Thread(target=cancel)
        cancelling.start()
        for _ in range(200):
            time.sleep(0.05)
            progress(1, 10, force=True)
        raise AssertionError("progress never noticed the cancel")

    with transaction() as session:
        run_jobs_here(session)
        job_id = create_job(session, "test-cancelled-midway", {}, queue="cpu").id
    assert execute_job(job_id) == "cancelled"
    cancelling.join(timeout=30)
    assert committed_job(job_id).state == JobState.CANCELLED.value
    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0


def test_a_cancelled_queued_job_never_runs(committed: Engine, tmp_path: Path) -> None:
    job_id = _import_job(tmp_path, [alpaca_record(1)])
    with transaction() as session:
        cancel_job(session, job_id)
    assert execute_job(job_id) == "skipped"
    assert example_count() == 0


def test_sweeper_requeues_stale_jobs_and_gives_up_after_max_attempts(committed: Engine) -> None:
    with transaction() as session:
        run_jobs_here(session)
        stale = create_job(session, "import", {}, queue="cpu")
        run_jobs_here(session)
        dead = create_job(session, "import", {}, queue="cpu")
        run_jobs_here(session)
        fresh = create_job(session, "import", {}, queue="cpu")
        for job, attempts in ((stale, 1), (dead, 3), (fresh, 1)):
            job.state = JobState.RUNNING.value
            job.attempts = attempts
            job.heartbeat_at = utcnow() - timedelta(hours=1)
        fresh.heartbeat_at = utcnow()
        session.flush()
        ids = (stale.id, dead.id, fresh.id)
        report = sweep(session)
        session.info.pop("sift_after_commit", None)  # nothing to deliver in this test
    assert report.requeued_jobs == [ids[0]] and report.failed_jobs == [ids[1]]
    assert [committed_job(i).state for i in ids] == ["queued", "failed", "running"]


def test_resume_takes_any_job_that_is_not_running(committed: Engine, tmp_path: Path) -> None:
    job_id = _import_job(tmp_path, [alpaca_record(1), {"instruction": "x"}])
    execute_job(job_id)
    assert committed_job(job_id).state == "failed"
    with transaction() as session:
        resume_job(session, job_id)
        session.info.pop("sift_after_commit", None)
    assert committed_job(job_id).state == "queued"
    with transaction() as session:
        resume_job(session, job_id)  # a queued job: its message is sent again
        session.info.pop("sift_after_commit", None)
        session.get_one(Job, job_id).state = JobState.RUNNING.value
    with pytest.raises(Conflict, match="is running"), transaction() as session:
        resume_job(session, job_id)


def test_jobs_are_enqueued_only_after_commit(committed: Engine) -> None:
    import redis

    from tests.services import REDIS_URL

    broker = redis.Redis.from_url(REDIS_URL)
    with pytest.raises(RuntimeError), transaction() as session:
        create_job(session, "import", {}, queue="cpu")
        raise RuntimeError("the request failed after creating the job")
    assert broker.llen("cpu") == 0
    with transaction() as session:
        job_id = create_job(session, "import", {}, queue="cpu").id
        assert broker.llen("cpu") == 0  # not before the commit
    assert broker.llen("cpu") == 1
    assert committed_job(job_id).state == "queued"


def test_a_job_created_in_a_savepoint_that_rolls_back_is_never_sent(committed: Engine) -> None:
    import redis

    from tests.services import REDIS_URL

    broker = redis.Redis.from_url(REDIS_URL)
    with transaction() as session:
        with pytest.raises(RuntimeError), session.begin_nested():
            create_job(session, "import", {}, queue="cpu")
            raise RuntimeError("this part of the request failed")
        with session.begin_nested():
            kept = create_job(session, "import", {}, queue="cpu").id
    assert broker.llen("cpu") == 1  # only the job whose savepoint was kept
    assert committed_job(kept).state == "queued"


def test_a_unit_of_work_that_runs_its_jobs_here_sends_nothing(committed: Engine) -> None:
    import redis

    from tests.services import REDIS_URL

    broker = redis.Redis.from_url(REDIS_URL)
    with transaction() as session:
        run_jobs_here(session)
        here = create_job(session, "import", {}, queue="cpu").id
    with transaction() as session:
        sent = create_job(session, "import", {}, queue="cpu").id
    assert broker.llen("cpu") == 1  # only the job of the ordinary unit of work
    assert committed_job(here).sent_at is None
    assert committed_job(sent).sent_at is not None
