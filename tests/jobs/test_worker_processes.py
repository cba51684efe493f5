"""Jobs on real worker processes, Redis and PostgreSQL, where concurrency is the point.

- Eight io worker processes score one dataset in many small chunks against a priced endpoint,
  pause on the budget, and resume: before heartbeats and settling stopped locking the job's
  row, several chunks settling at once left every process waiting on each other (a chunk's
  score rows held a key-share lock on the job, `settle_job`'s FOR UPDATE queued behind it, and
  the chunk's own heartbeat, on another connection of the same process, behind that).
  Throughout, no connection waits on a lock for as long as the lock timeout.
- Workers and a Redis of the test's own are killed and restarted mid-job, three times: the
  job ends succeeded, every example scored once, with attempts to spare.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from app.datasets.service import create_dataset
from app.jobs.service import resume_job
from app.models import ChunkState, Job, JobChunk, JobState, Score
from app.platform.config import get_settings
from app.platform.db import LOCK_TIMEOUT_MS, transaction
from app.scoring.service import start_score_job
from tests.conftest import reset_caches
from tests.factories import make_example
from tests.llm_server import LLMServer


def _endpoint_settings(llm: LLMServer, **extra: str) -> dict[str, str]:
    return {
        "SIFT_LLM__DEFAULT__BASE_URL": llm.base_url,
        "SIFT_LLM__DEFAULT__MODEL": "test-model",
        "SIFT_LLM__DEFAULT__CONCURRENCY": "4",
        "SIFT_LLM__DEFAULT__TIMEOUT_S": "5",
        "SIFT_LLM__DEFAULT__MAX_ATTEMPTS": "3",
        "SIFT_JOB_HEARTBEAT_S": "0.5",
        "SIFT_JOB_STALE_AFTER_S": "4",
        "SIFT_JOB_SWEEP_INTERVAL_S": "1",
        **extra,
    }


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Set SIFT_ variables for this process and the workers it starts."""

    def apply(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reset_caches()

    yield apply
    get_settings.cache_clear()


def start_worker(
    log: Path, queues: str, concurrency: int, *, beat: bool
) -> subprocess.Popen[bytes]:
    """`sift worker` in a session of its own, so that a kill takes its pool's children too."""
    argv = [sys.executable, "-m", "app.entrypoints.cli", "worker", "--queues", queues]
    argv += ["--concurrency", str(concurrency), *(["--beat"] if beat else [])]
    return subprocess.Popen(
        argv,
        env=os.environ.copy(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process group and wait for it."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    """Poll until `condition` holds; fail with the workers' log tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-4000:]}")


def job_state(job_id: int) -> str:
    with transaction() as session:
        return session.get_one(Job, job_id).state


def chunks_done(job_id: int) -> int:
    with transaction() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    JobChunk.job_id == job_id, JobChunk.state == ChunkState.DONE.value
                )
            )
            or 0
        )


def _done_at_least(job_id: int, count: int) -> bool:
    return chunks_done(job_id) >= count


def scores_per_example() -> list[int]:
    with transaction() as session:
        return list(
            session.scalars(select(func.count()).select_from(Score).group_by(Score.content_hash))
        )


class LockWatch:
    """Samples how long any connection of the test database has waited on a lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.longest_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        query = text(
            "SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0) "
            "FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        while not self._stop.wait(0.2):
            with self.engine.connect() as conn:
                self.longest_s = max(self.longest_s, float(conn.scalar(query) or 0))


def make_pool(size: int) -> int:
    """A dataset of `size` examples; its id."""
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        for i in range(size):
            make_example(session, dataset, i)
        return dataset.id


@pytest.mark.postgres
@pytest.mark.redis
def test_eight_io_processes_pause_and_resume_without_waiting_on_each_other(
    committed: Engine, configure: Callable[[dict[str, str]], None], tmp_path: Path
) -> None:
    examples = 240
    with LLMServer(latency_s=0.05) as llm:
        configure(
            _endpoint_settings(
                llm,
                SIFT_SCORE_CHUNK_SIZE="8",
                SIFT_LLM__DEFAULT__PRICE_IN="0.001",
                SIFT_LLM__DEFAULT__PRICE_OUT="0.002",
            )
        )
        dataset_id = make_pool(examples)
        with transaction() as session:
            from app.models import Dataset

            dataset = session.get_one(Dataset, dataset_id)
            job_id = start_score_job(session, dataset, "alpagasus", budget_usd=0.03).id
        log = tmp_path / "workers.log"
        workers = start_worker(log, "io", 8, beat=False)
        try:
            with LockWatch(committed) as locks:
                wait_for(
                    lambda: job_state(job_id) == JobState.PAUSED_BUDGET.value, 180, "the pause", log
                )
                # Chunks still in flight settle after the pause; let them, then resume.
                time.sleep(1)
                with transaction() as session:
                    resume_job(session, job_id, budget_usd=50.0)
                wait_for(lambda: job_state(job_id) == JobState.SUCCEEDED.value, 240, "the end", log)
            assert locks.longest_s < LOCK_TIMEOUT_MS / 1000, log.read_text()[-3000:]
        finally:
            stop(workers)
    counts = scores_per_example()
    assert len(counts) == examples and set(counts) == {1}
    with transaction() as session:
        job = session.get_one(Job, job_id)
        assert job.spent_usd <= 50.0 and job.reserved_usd == pytest.approx(0.0, abs=1e-9)
        assert job.counts["scored"] == examples


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(server: subprocess.Popen[bytes], port: int) -> bool:
    """True once `server` accepts connections on `port`; False if it exited first."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return server.poll() is None
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A Redis server of this test's own that keeps nothing on disk; calling the fixture's
    value (re)starts it empty and returns its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process: list[subprocess.Popen[bytes]] = []

    def restart() -> str:
        if process:
            # Wait for the old server to be gone: a new one started while it still holds the
            # port exits at once, and the test then waited on a Redis that never came back.
            old = process.pop()
            old.kill()
            old.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            server = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp_path),
                ],
                stdout=subprocess.DEVNULL,
            )
            if _listening(server, port):
                process.append(server)
                break
            server.kill()
            server.wait()
        else:
            raise AssertionError(f"the test's own Redis did not start on port {port}")
        return f"redis://127.0.0.1:{port}/0"

    yield restart
    for running in process:
        running.kill()
        running.wait()


@pytest.mark.postgres
@pytest.mark.redis
def test_workers_and_redis_killed_three_times_the_job_still_succeeds(
    committed: Engine,
    configure: Callable[[dict[str, str]], None],
    own_redis: Callable[[], str],
    tmp_path: Path,
) -> None:
    examples, chunk = 120, 8
    with LLMServer(latency_s=0.1) as llm:
        configure(_endpoint_settings(llm, SIFT_SCORE_CHUNK_SIZE=str(chunk)))
        configure({"SIFT_REDIS_URL": own_redis()})
        dataset_id = make_pool(examples)
        with transaction() as session:
            from app.models import Dataset

            dataset = session.get_one(Dataset, dataset_id)
            job_id = start_score_job(session, dataset, "alpagasus").id
        log = tmp_path / "workers.log"
        workers = start_worker(log, "io,cpu", 2, beat=True)
        try:
            for kill in range(1, 4):
                wait_for(partial(_done_at_least, job_id, 2 * kill), 120, f"kill {kill}", log)
                stop(workers, signal.SIGKILL)
                own_redis()  # messages in flight and queued are lost with it
                workers = start_worker(log, "io,cpu", 2, beat=True)
            wait_for(lambda: job_state(job_id) == JobState.SUCCEEDED.value, 240, "the end", log)
        finally:
            stop(workers)
    counts = scores_per_example()
    assert len(counts) == examples and set(counts) == {1}
    with transaction() as session:
        job = session.get_one(Job, job_id)
        attempts = list(session.scalars(select(JobChunk.attempts).where(JobChunk.job_id == job_id)))
    assert job.attempts == 1  # planned once; the chunks carried the recovery
    assert max(attempts) < get_settings().job_max_attempts  # attempts to spare
