"""Chunked jobs: planned once, each chunk one transaction, settled from the chunk rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.datasets.service import create_dataset
from app.jobs.service import cancel_job, list_jobs, resume_job
from app.models import ChunkState, Dataset, Job, JobChunk, JobState
from app.models.base import utcnow
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from app.platform.jobs.chunked import execute_chunk, settle_job
from app.platform.jobs.dispatch import create_job, run_jobs_here
from app.platform.jobs.progress import JobPaused, Progress
from app.platform.jobs.registry import chunked_job
from app.platform.jobs.runner import execute_job
from app.platform.jobs.sweeper import sweep
from tests.factories import make_example
from tests.jobs.conftest import committed_job, example_count

RUNS: list[int] = []


@chunked_job("test-chunks", queue="cpu")
class WriteExamples:
    """Writes one example per unit; params["fail"] / ["pause"] make a chunk go wrong once."""

    def plan(self, session: Session, job: Job) -> tuple[int, list[dict[str, Any]]]:
        size, units = job.params["chunk"], job.params["units"]
        starts = range(0, units, size)
        return units, [{"start": s, "size": min(size, units - s)} for s in starts]

    def run_chunk(
        self, session: Session, job: Job, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        RUNS.append(params["start"])
        if params["start"] == job.params.get("pause_at") and job.params.get("budget_left") == 0:
            raise JobPaused({"written": 0, "paused": 1})
        dataset = session.get(Dataset, job.dataset_id)
        assert dataset is not None
        for i in range(params["start"], params["start"] + params["size"]):
            make_example(session, dataset, i)
            progress(i - params["start"] + 1)
        if params["start"] == job.params.get("fail_at"):
            raise InvalidInput(f"unit {params['start']} is bad")
        return {"written": params["size"], "last": f"unit {params['start']}"}


def _job(**params: Any) -> int:
    RUNS.clear()
    with transaction() as session:
        dataset = create_dataset(session, f"pool-{len(params)}-{utcnow().timestamp()}")
        run_jobs_here(session)
        job = create_job(session, "test-chunks", params, queue="cpu", dataset_id=dataset.id)
        return job.id


def test_inline_run_does_every_chunk_and_sums_counts(committed: Engine) -> None:
    job_id = _job(units=10, chunk=4)
    seen: list[int] = []
    assert execute_job(job_id, lambda done, *_: seen.append(done), inline=True) == "succeeded"
    job = committed_job(job_id)
    assert (job.done, job.total) == (10, 10)
    assert job.counts == {"written": 10, "last": "unit 8"}
    assert sorted(RUNS) == [0, 4, 8] and example_count() == 10
    assert seen[-1] == 10 and seen == sorted(seen)


def test_a_chunk_delivered_twice_runs_once(committed: Engine) -> None:
    job_id = _job(units=6, chunk=3)
    execute_job(job_id)  # plans, would send the chunks to the workers
    with transaction() as session:
        chunk_ids = session.scalars(select(JobChunk.id).order_by(JobChunk.index)).all()
    for chunk_id in [*chunk_ids, *chunk_ids]:
        execute_chunk(chunk_id)
    assert sorted(RUNS) == [0, 3] and example_count() == 6
    assert committed_job(job_id).state == JobState.SUCCEEDED.value


def test_a_failing_chunk_fails_the_job_and_resume_runs_only_what_is_left(
    committed: Engine,
) -> None:
    job_id = _job(units=9, chunk=3, fail_at=3)
    assert execute_job(job_id, inline=True) == JobState.FAILED.value
    job = committed_job(job_id)
    assert job.error == "unit 3 is bad" and example_count() == 3  # the failed chunk rolled back
    with transaction() as session:
        job_row = session.get(Job, job_id)
        assert job_row is not None
        job_row.params = {**job_row.params, "fail_at": None}
        resume_job(session, job_id)
    RUNS.clear()
    assert execute_job(job_id, inline=True) == JobState.SUCCEEDED.value
    assert sorted(RUNS) == [3, 6] and example_count() == 9


def test_a_paused_chunk_keeps_its_counts_and_resumes(committed: Engine) -> None:
    job_id = _job(units=6, chunk=3, pause_at=3, budget_left=0)
    assert execute_job(job_id, inline=True) == JobState.PAUSED_BUDGET.value
    job = committed_job(job_id)
    assert job.done == 3 and example_count() == 3
    with transaction() as session:
        chunk = session.scalar(select(JobChunk).where(JobChunk.index == 1))
        assert chunk is not None and chunk.state == ChunkState.QUEUED.value
        job_row = session.get(Job, job_id)
        assert job_row is not None
        job_row.params = {**job_row.params, "budget_left": 1}
        resume_job(session, job_id)
    assert execute_job(job_id, inline=True) == JobState.SUCCEEDED.value
    assert example_count() == 6
    assert committed_job(job_id).counts == {"written": 6, "paused": 1, "last": "unit 3"}


def test_cancelled_job_runs_no_more_chunks(committed: Engine) -> None:
    job_id = _job(units=6, chunk=3)
    execute_job(job_id)
    with transaction() as session:
        cancel_job(session, job_id)
        chunk_ids = session.scalars(select(JobChunk.id)).all()
    assert all(execute_chunk(c) == "skipped" for c in chunk_ids)
    assert RUNS == [] and committed_job(job_id).state == JobState.CANCELLED.value


def test_sweeper_queues_again_a_chunk_whose_worker_died(committed: Engine) -> None:
    job_id = _job(units=6, chunk=3)
    execute_job(job_id)
    with transaction() as session:
        first = session.scalars(select(JobChunk.id).order_by(JobChunk.index)).first()
        # As a worker killed mid-chunk leaves it: running, heartbeat long ago.
        session.execute(
            update(JobChunk)
            .where(JobChunk.id == first)
            .values(state="running", attempts=1, heartbeat_at=utcnow() - timedelta(hours=1))
        )
    assert execute_chunk(first) == "skipped"  # a duplicate delivery leaves a running chunk alone
    with transaction() as session:
        assert sweep(session).requeued_chunks == [first]
    with transaction() as session:
        ids = session.scalars(select(JobChunk.id)).all()
    for chunk_id in ids:
        execute_chunk(chunk_id)
    assert settle_job(job_id) == JobState.SUCCEEDED.value and example_count() == 6


def test_the_job_list_shows_how_far_running_chunks_are(committed: Engine) -> None:
    job_id = _job(units=6, chunk=3)
    execute_job(job_id)  # planned: two chunks queued, nothing done
    with transaction() as session:
        first = session.scalars(select(JobChunk).order_by(JobChunk.index)).first()
        assert first is not None
        first.state, first.done = ChunkState.RUNNING.value, 2  # as its heartbeat left it
    with transaction() as session:
        (job,) = [j for j in list_jobs(session) if j.id == job_id]
        assert (job.done, job.total) == (2, 6)
    assert committed_job(job_id).done == 0  # shown, never written
