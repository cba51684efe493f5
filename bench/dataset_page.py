"""Benchmark: the dataset dashboard on a pool of 1,000,000 examples in PostgreSQL.

Target (issue 5, DESIGN.md "Browser"): the dashboard page answers in under 300 ms at p95, and
so do the distributions (counts per status, source and category; score histograms), which the
page loads as fragments of their own. The reference in the same run is the bare SQL of the
counts fragment (one GROUPING SETS scan), timed over psycopg: the floor a page showing those
counts can reach.

    python bench/dataset_page.py                    # 1,000,000 examples, 3 scorers, 30 requests
    python bench/dataset_page.py --n 200000 --requests 20
    python bench/dataset_page.py --reuse            # keep the pool the last run built

Examples are made by SQL (generate_series): 50 sources, 20 categories, a review status mix,
two-turn messages of a few hundred characters; every example is scored by `lima`, `length`
and `alpagasus` (values on each recipe's range, 2% parse errors). The database is
`sift_bench_dashboard` (dropped and migrated first unless --reuse; set --url). Requests go
through the real app in this process (FastAPI's TestClient, a signed-in lead), so the figures
include routing, the session cookie, SQL and template rendering. The exit status is 1 when a
target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable

from bench.common import plain_url, prepare_postgres

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/sift_bench_dashboard"
TARGET_MS = 300.0
DATASET = "big"

FILL_EXAMPLES = """
INSERT INTO examples (dataset_id, messages, instruction, input, output, source, category,
                      meta, content_hash, source_format, origin, status, version)
SELECT %(dataset)s,
       jsonb_build_array(
         jsonb_build_object('role', 'user', 'content', 'Explain topic ' || i || repeat(' in detail', 8)),
         jsonb_build_object('role', 'assistant', 'content', 'Topic ' || i || repeat(' is explained here', 20))),
       'Explain topic ' || i || repeat(' in detail', 8), '',
       'Topic ' || i || repeat(' is explained here', 20),
       'source-' || (i %% 50), 'category-' || (i %% 20), '{}'::jsonb, md5(i::text), 'alpaca',
       'import',
       CASE WHEN i %% 10 = 0 THEN 'accepted' WHEN i %% 10 = 1 THEN 'rejected' ELSE 'candidate' END,
       1
FROM generate_series(1, %(n)s) AS i
"""

FILL_SCORES = """
INSERT INTO scores (content_hash, scorer_id, value, state, details, prompt_tokens,
                    completion_tokens, cost)
SELECT md5(i::text), %(scorer)s,
       CASE WHEN i %% 50 = 0 THEN NULL ELSE %(low)s + (%(high)s - %(low)s) * ((i::bigint * 7919) %% 1000) / 999.0 END,
       CASE WHEN i %% 50 = 0 THEN 'parse_error' ELSE 'ok' END,
       '{}'::jsonb, 0, 0, 0
FROM generate_series(1, %(n)s) AS i
"""

COUNTS_SQL = """
SELECT GROUPING(status, source, category), coalesce(status, source, category), count(*)
FROM examples WHERE dataset_id = %s
GROUP BY GROUPING SETS ((status), (source), (category))
"""


def fill(url: str, n: int) -> None:
    """A migrated database with one dataset of `n` examples, scored by three recipes."""
    import psycopg

    from app.core.db import make_engine, session_factory
    from app.datasets.service import create_dataset
    from app.scoring.service import choose_scorer, get_or_create_scorer

    prepare_postgres(url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        dataset = create_dataset(session, DATASET)
        scorers = [
            (get_or_create_scorer(session, choose_scorer(session, name)), low, high)
            for name, low, high in (("lima", 0, 1), ("length", 200, 4000), ("alpagasus", 0, 5))
        ]
        session.commit()
        ids = [(s.id, low, high) for s, low, high in scorers]
        dataset_id = dataset.id
    engine.dispose()
    started = time.perf_counter()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(FILL_EXAMPLES, {"dataset": dataset_id, "n": n})
        for scorer_id, low, high in ids:
            conn.execute(FILL_SCORES, {"scorer": scorer_id, "low": low, "high": high, "n": n})
        # What autovacuum does to a table that has just been loaded: planner statistics, and
        # the visibility map that lets counts read the index alone.
        conn.execute("VACUUM ANALYZE examples")
        conn.execute("VACUUM ANALYZE scores")
    print(f"built {n:,} examples and {3 * n:,} scores in {time.perf_counter() - started:.0f} s")


def timed(call: Callable[[], object], requests: int, warmup: int = 3) -> list[float]:
    """Milliseconds of each of `requests` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(times: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(times)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--url", default=os.environ.get("SIFT_BENCH_DASHBOARD_URL", DEFAULT_URL))
    parser.add_argument("--reuse", action="store_true", help="keep the pool of the last run")
    parser.add_argument(
        "--suggested-index",
        action="store_true",
        help="add the index the report suggests: examples (dataset_id, status, source, category)",
    )
    args = parser.parse_args()

    # An endpoint that is never called: the alpagasus scorer is bound to its model name.
    os.environ.setdefault("SIFT_LLM__DEFAULT__BASE_URL", "http://127.0.0.1:9/v1")
    os.environ.setdefault("SIFT_LLM__DEFAULT__MODEL", "bench-judge")
    os.environ["SIFT_DATABASE_URL"] = args.url
    if not args.reuse:
        fill(args.url, args.n)
    import psycopg
    from fastapi.testclient import TestClient

    from app.core.db import transaction
    from app.main import create_app
    from app.models import Dataset, User
    from app.users.service import create_user

    with transaction() as session:
        from sqlalchemy import select

        session.query(User).filter(User.name == "bench-lead").delete()
        create_user(session, "bench-lead", "lead", "bench password")
        dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == DATASET))
    client = TestClient(create_app())
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    signed = client.post(
        "/login",
        data={"name": "bench-lead", "password": "bench password", "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text

    def get(path: str, htmx: bool = False) -> Callable[[], object]:
        headers = {"hx-request": "true"} if htmx else {}

        def call() -> object:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            return response

        return call

    with psycopg.connect(plain_url(args.url), autocommit=True) as conn:
        index = "bench_examples_make_up"
        if args.suggested_index:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON examples (dataset_id, status, source, category)"
            )
            conn.execute("VACUUM ANALYZE examples")
        else:
            conn.execute(f"DROP INDEX IF EXISTS {index}")
        floor = timed(lambda: conn.execute(COUNTS_SQL, (dataset_id,)).fetchall(), args.requests)
    base = f"/datasets/{DATASET}"
    cases = [
        ("dashboard page", get(base), True),
        ("counts per status, source, category", get(f"{base}/stats", True), True),
        ("score histograms (3 scorers)", get(f"{base}/scores", True), True),
        ("jobs panel (polled)", get(f"{base}/jobs", True), False),
        ("examples table, next page", get(f"{base}?after=500000", True), False),
        ("examples table, score filter", get(f"{base}?score=alpagasus>=4.5", True), False),
    ]
    missed = False
    print(f"\n{args.n:,} examples; {args.requests} requests each after 3 warm-ups (first views:")
    print("3 after 1, the cache emptied before each); milliseconds")
    print(f"{'what':40} {'p50':>8} {'p95':>8}  target")
    print(
        f"{'bare SQL of the counts (reference)':40} {statistics.median(floor):8.1f} {p95(floor):8.1f}"
    )
    from app.datasets import dashboard

    def cold(path: str) -> Callable[[], object]:
        call = get(path, True)

        def uncached() -> object:
            dashboard._cache.clear()
            return call()

        return uncached

    cases += [
        ("counts, first view (nothing cached)", cold(f"{base}/stats"), False),
        ("histograms, first view (nothing cached)", cold(f"{base}/scores"), False),
    ]
    medians: dict[str, float] = {}
    for label, call, targeted in cases:
        slow = "first view" in label
        times = timed(call, 3 if slow else args.requests, warmup=1 if slow else 3)
        medians[label] = statistics.median(times)
        ok = p95(times) < TARGET_MS
        missed |= targeted and not ok
        target = (f"< {TARGET_MS:.0f}: " + ("met" if ok else "MISSED")) if targeted else ""
        print(f"{label:40} {medians[label]:8.1f} {p95(times):8.1f}  {target}")
    ratio = medians["counts, first view (nothing cached)"] / statistics.median(floor)
    print(f"\ncounts fragment, first view / bare SQL (p50): {ratio:.2f}x")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
