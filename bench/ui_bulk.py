"""bench/ui.py --only bulk: bulk work on the bench pool (issue 13).

- A bulk reject of every example matching a score filter that selects 100,000 of the pool
  (`length` below its 10th percentile), through the services as the page and the API run it:
  the request (count, the job created) and then the job in this process, as a worker would,
  timed from the request to the job's end. Target: under 30 s on a million. Reference, measured
  in the same run: the same work in plain SQL (one UPDATE of the statuses, one INSERT of the
  decisions) in a transaction that is rolled back.
- The first page of the examples table sorted by a score (alpagasus, highest first) and the
  review queue's table sorted the same way: their plans (the scores index read in order, no
  sort of the pool) and their times (p50 of --repeat).

The pool needs no vectors for this: `--only bulk` builds it without embeddings, in a database of
its own (`sift_bench_ui_bulk`), so that a later full run does not reuse a pool without them.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

TARGET_S = 30.0
SELECTED = 100_000
POOL = "pool"


def bulk_only(url: str, n: int, repeat: int) -> bool:
    """Time the bulk reject and the sorted tables; True when the target is met."""
    from app.entrypoints.domains import load_every_job_kind
    from app.models import Dataset, Job, User
    from app.platform.db import transaction
    from app.platform.jobs.runner import execute_job
    from app.review.bulk import BulkAction, start_bulk
    from app.users.service import create_user

    load_every_job_kind()
    share = min(SELECTED / n, 1.0)
    with transaction() as session:
        dataset = session.query(Dataset).filter_by(name=POOL).one()
        threshold = session.execute(
            text(
                "SELECT percentile_disc(:share) WITHIN GROUP (ORDER BY s.value) FROM scores s "
                "JOIN scorers r ON r.id = s.scorer_id AND r.name = 'length' "
                "JOIN examples e ON e.content_hash = s.content_hash AND e.dataset_id = :d"
            ),
            {"share": share, "d": dataset.id},
        ).scalar_one()
        lead = session.query(User).filter_by(name="bulk-lead").one_or_none() or create_user(
            session, "bulk-lead", "lead", "bench password"
        )
        lead_id, dataset_id = lead.id, dataset.id
    action = BulkAction(action="reject", reason="bench: too short", score=[f"length<{threshold}"])
    reference = _plain_sql_s(dataset_id, lead_id, float(threshold))
    started = time.perf_counter()
    with transaction() as session:
        dataset = session.get_one(Dataset, dataset_id)
        lead = session.get_one(User, lead_id)
        matched, _, job = start_bulk(session, lead, dataset, action)
        assert job is not None, "a bulk action this large runs as a job"
        job_id = job.id
    requested = time.perf_counter() - started
    state = execute_job(job_id)
    elapsed = time.perf_counter() - started
    with transaction() as session:
        counts = session.get_one(Job, job_id).counts
    met = state == "succeeded" and elapsed < TARGET_S
    print(
        f"\nBulk reject of all matching length<{threshold:g} ({matched:,} of {n:,}): the request "
        f"{requested:.1f} s, the job done {elapsed:.1f} s after it ({state}, {counts}); "
        f"< {TARGET_S:.0f} s: {'ok' if met else 'MISSED'}; plain SQL of the same work "
        f"{reference:.1f} s, so {elapsed / reference:.2f}x that"
    )
    _sorted_tables(dataset_id, repeat)
    return met


def _plain_sql_s(dataset_id: int, user_id: int, threshold: float) -> float:
    """The floor: the same UPDATE and INSERT in plain SQL, rolled back; seconds."""
    from app.platform.db import transaction

    started = time.perf_counter()
    with transaction() as session:
        session.execute(
            text(
                "WITH chosen AS (SELECT e.id, e.status FROM examples e WHERE e.dataset_id = :d "
                "AND e.status <> 'rejected' AND EXISTS (SELECT 1 FROM scores s JOIN scorers r "
                "ON r.id = s.scorer_id AND r.name = 'length' WHERE s.content_hash = "
                "e.content_hash AND s.state = 'ok' AND s.value < :t) FOR UPDATE), "
                "changed AS (UPDATE examples e SET status = 'rejected', version = e.version + 1 "
                "FROM chosen WHERE e.id = chosen.id RETURNING e.id, chosen.status) "
                "INSERT INTO review_decisions (example_id, user_id, action, reason, "
                "status_before, created_at) SELECT id, :u, 'reject', 'plain', status, now() "
                "FROM changed"
            ),
            {"d": dataset_id, "t": threshold, "u": user_id},
        )
        elapsed = time.perf_counter() - started
        session.rollback()
    return elapsed


def _sorted_tables(dataset_id: int, repeat: int) -> None:
    """The plans and times of the first page sorted by alpagasus: the examples table and the
    review queue's."""
    from app.datasets.service import ExampleFilter, filtered_examples
    from app.models import Dataset, User
    from app.platform.db import transaction
    from app.review import queue as queues
    from app.scoring.service import ScoreSort, find_scorer, sorted_page
    from app.scoring.sorting import scored_order

    with transaction() as session:
        dataset = session.get_one(Dataset, dataset_id)
        user = session.query(User).filter_by(name="bulk-lead").one()
        scorer = find_scorer(session, "alpagasus")
        order = ScoreSort("alpagasus")
        tables: dict[str, Any] = {
            "examples table": filtered_examples(dataset, ExampleFilter()),
            "review queue table": queues.waiting_examples(queues.Queue(dataset=dataset), user),
        }
        for label, base in tables.items():
            statement = scored_order(base, scorer.id, order, None).limit(51)
            sql = statement.compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            plan = [row[0] for row in session.execute(text(f"EXPLAIN ANALYZE {sql}"))]
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                sorted_page(session, base, order, None, 50)
                times.append((time.perf_counter() - started) * 1000)
            nodes = [line.strip() for line in plan if "->" in line or line == plan[0]]
            print(f"\nFirst page by alpagasus, {label}: p50 {statistics.median(times):.1f} ms")
            for node in nodes[:8]:
                print(f"    {node[:150]}")
