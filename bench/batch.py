"""Benchmark: rating a dataset through the OpenAI Batch API (`--batch`) against live calls,
both against the local test server, on the same records.

What it shows: Sift's own cost of running as batches (each chunk runs once to find what to
ask, uploads, polls, collects the answers into the response cache, and runs again), against
the same job live; that the batch run sent each request once and nothing live; that it spent
half of what the live run spent; and that scoring again sends nothing.

    python bench/batch.py                # 4,000 examples, chunks of 1,024, live at 16 in flight

The server answers live requests after `--latency-ms` and a batch as soon as it is created
(no provider queue), so the batch time here is Sift's own work plus `SIFT_BATCH_POLL_S`
(0.05 s here) per poll. The records are those of bench/score.py; the database is
`sift_bench_batch` (dropped and migrated first). The exit status is 1 when a check fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import tempfile
import time

import httpx

from bench.common import DATA, bench_url, prepare_postgres
from bench.score import configure, load, start_server


def score(batch: bool, budget: float) -> tuple[float, dict[str, object], float]:
    """One AlpaGasus job over `bench`; its seconds, counts and spend."""
    from app.datasets.service import get_dataset
    from app.entrypoints.domains import load_every_job_kind
    from app.platform.db import transaction
    from app.platform.jobs.dispatch import get_job, run_jobs_here
    from app.platform.jobs.runner import execute_job
    from app.scoring.service import start_score_job

    load_every_job_kind()
    with transaction() as session:
        run_jobs_here(session)
        dataset = get_dataset(session, "bench")
        job_id = start_score_job(session, dataset, "alpagasus", budget_usd=budget, batch=batch).id
    started = time.perf_counter()
    state = execute_job(job_id, inline=True)
    seconds = time.perf_counter() - started
    with transaction() as session:
        job = get_job(session, job_id)
        counts, spent = dict(job.counts), job.spent_usd
    if state != "succeeded":
        raise SystemExit(f"the scoring job ended {state}: {counts}")
    return seconds, counts, spent


def forget() -> None:
    """Drop the scores and the cached answers, so that the next run asks everything again."""
    from sqlalchemy import delete

    from app.models import LLMCall, Score
    from app.platform.db import transaction

    with transaction() as session:
        session.execute(delete(Score))
        session.execute(delete(LLMCall))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000, help="examples to rate")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="live latency")
    parser.add_argument("--concurrency", type=int, default=16, help="live calls in flight")
    parser.add_argument("--chunk", type=int, default=1024, help="examples per chunk (and batch)")
    parser.add_argument("--url", help="a PostgreSQL URL (default: the embedded server)")
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"the data file is missing: {DATA}")
    print(f"Sift Batch API benchmark: {args.n:,} examples, chunks of {args.chunk}, live at "
          f"{args.concurrency} in flight and {args.latency_ms:g} ms")  # fmt: skip
    args.url = args.url or bench_url("sift_bench_batch")
    prepare_postgres(args.url)
    server, base_url = start_server(args.latency_ms)
    root = base_url.removesuffix("/v1")
    try:
        with tempfile.TemporaryDirectory() as folder:
            configure(args.url, base_url, args.concurrency, args.chunk, folder)
            os.environ |= {"SIFT_LLM__DEFAULT__PRICE_IN": "0.01",
                           "SIFT_LLM__DEFAULT__PRICE_OUT": "0.02", "SIFT_BATCH_POLL_S": "0.05"}  # fmt: skip
            from app.platform.config import get_settings
            from app.platform.db import get_engine

            get_settings.cache_clear()  # read before: the embedded server's folder
            get_engine.cache_clear()
            load(args.n, Path(folder))
            live_s, _, live_spent = score(batch=False, budget=1e6)
            forget()
            before = httpx.get(f"{root}/_stats").json()["total"]
            batch_s, counts, batch_spent = score(batch=True, budget=1e6)
            sent = httpx.get(f"{root}/_stats").json()["total"] - before
            lines = httpx.get(f"{root}/_batches").json()
            again_s, _, _ = score(batch=True, budget=1e6)
            again = httpx.get(f"{root}/_stats").json()["total"] - before - sent
    finally:
        server.terminate()
        server.wait()
    print(f"  live run                 {live_s:8.2f} s   spent ${live_spent:.4f}")
    print(f"  batch run                {batch_s:8.2f} s   spent ${batch_spent:.4f}"
          f"   ({batch_s / live_s:.2f} of the live run's time)")  # fmt: skip
    print(f"  batches                  {lines['batches_created']} batches, "
          f"{lines['lines_answered']:,} lines, {sent:,} requests in all, "
          f"{counts.get('batched', 0):,} answers batched")  # fmt: skip
    half = batch_spent / live_spent if live_spent else 0.0
    print(f"  spend                    batch / live = {half:.4f}   (target 0.5)")
    print(f"  scoring again            {again_s:8.2f} s   requests {again}   (target 0)")
    ok = sent == args.n == lines["lines_answered"] and again == 0 and abs(half - 0.5) < 1e-9
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
