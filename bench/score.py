"""Benchmark: rating a dataset with an LLM endpoint (AlpaGasus), against a local test server.

Target (DESIGN.md, "Performance targets"): throughput at least 80% of concurrency / latency,
the most a client that keeps `concurrency` calls in flight could reach; and a second run over
the same data sends zero requests (every answer is cached). For scale, the same run also
times a bare `openai` client sending the same prompts with the same concurrency (no cache, no
database, no parsing): what this machine can do at all with the server beside it.

    python bench/score.py                          # 20,000 examples, 50 ms, concurrency 16
    python bench/score.py --n 5000 --concurrency 32

The server (tests/llm_server.py) runs in a child process so that it does not share the
client's interpreter; it answers every request after `--latency-ms`. The examples are the real
records of ../shared/data/alpagasus/random_9k.json with a " (variant i)" suffix, imported into
the database `sift_bench` (dropped and migrated first; set SIFT_BENCH_POSTGRES_URL or --url).
Scoring runs as the job a worker would run, here in this process. The exit status is 1 when a
target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/NAME.py` puts bench/ first on the path, where select.py would shadow the
# standard library's `select`: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import subprocess
import tempfile
import time

import httpx

from bench.common import DATA, ROOT, bench_url, build_records, prepare_postgres, write_json

TARGET_RATIO = 0.8


def start_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    """The test server in a child process, and its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--port", "0", "--latency-ms", str(latency_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def configure(url: str, base_url: str, concurrency: int, chunk: int, data_dir: str) -> None:
    """Point Sift at the bench database and the server, as environment settings."""
    os.environ.update(
        {
            "SIFT_DATABASE_URL": url,
            "SIFT_DATA_DIR": data_dir,
            "SIFT_LLM__DEFAULT__BASE_URL": base_url,
            "SIFT_LLM__DEFAULT__MODEL": "bench-model",
            "SIFT_LLM__DEFAULT__CONCURRENCY": str(concurrency),
            "SIFT_SCORE_CHUNK_SIZE": str(chunk),
        }
    )


def load(n: int, folder: Path) -> None:
    """Import N examples into the dataset `bench`."""
    from app.datasets.importer import import_file
    from app.datasets.service import create_dataset
    from app.platform.db import transaction

    path = folder / "records.json"
    write_json(build_records(n), path)
    with transaction() as session:
        import_file(session, create_dataset(session, "bench"), path, fmt="alpaca")


def score_once() -> tuple[float, dict[str, object]]:
    """Run one AlpaGasus scoring job over the dataset; its seconds and counts."""
    from app.datasets.service import get_dataset
    from app.entrypoints.domains import load_every_job_kind
    from app.platform.db import transaction
    from app.platform.jobs.dispatch import get_job, run_jobs_here
    from app.platform.jobs.runner import execute_job
    from app.scoring.service import start_score_job

    load_every_job_kind()
    with transaction() as session:
        run_jobs_here(session)
        job_id = start_score_job(session, get_dataset(session, "bench"), "alpagasus").id
    started = time.perf_counter()
    state = execute_job(job_id, inline=True)
    seconds = time.perf_counter() - started
    with transaction() as session:
        counts = dict(get_job(session, job_id).counts)
    if state != "succeeded":
        raise SystemExit(f"the scoring job ended {state}: {counts}")
    return seconds, counts


def bare_client(base_url: str, concurrency: int, n: int) -> float:
    """Seconds for a plain openai client to send N AlpaGasus prompts, `concurrency` at once."""
    import asyncio

    import openai

    from app.scoring.chat_requests import build_requests
    from app.scoring.example_text import ExampleText
    from app.scoring.recipes import get_recipe

    recipe = get_recipe("alpagasus")
    records = build_records(n)
    bodies = [
        build_requests(recipe, ExampleText.of([], r["instruction"], r["input"], r["output"]))[0]
        for r in records
    ]

    async def run() -> float:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0)
        slots = asyncio.Semaphore(concurrency)

        async def one(request: object) -> None:
            async with slots:
                await client.chat.completions.create(
                    model="bench-model",
                    messages=request.message_dicts(),  # type: ignore[attr-defined]
                    temperature=0,
                    max_tokens=256,
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(body) for body in bodies))
        seconds = time.perf_counter() - started
        await client.close()
        return seconds

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="examples to rate")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the server's latency")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--chunk", type=int, default=2048, help="examples per chunk task")
    parser.add_argument("--url", help="a PostgreSQL URL (default: the embedded server)")
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"the data file is missing: {DATA}")

    print(f"Sift LLM rating benchmark: {args.n:,} examples, server latency {args.latency_ms:g} ms,"
          f" concurrency {args.concurrency}, chunks of {args.chunk}")  # fmt: skip
    args.url = args.url or bench_url("sift_bench")
    prepare_postgres(args.url)
    server, base_url = start_server(args.latency_ms)
    stats_url = base_url.removesuffix("/v1") + "/_stats"
    try:
        with tempfile.TemporaryDirectory() as folder:
            configure(args.url, base_url, args.concurrency, args.chunk, folder)
            load(args.n, Path(folder))
            bare_seconds = bare_client(base_url, args.concurrency, args.n)
            before = httpx.get(stats_url).json()["total"]
            seconds, counts = score_once()
            first_requests = httpx.get(stats_url).json()["total"] - before
            again_seconds, again = score_once()
            second_requests = httpx.get(stats_url).json()["total"] - before - first_requests
    finally:
        server.terminate()
        server.wait()

    rate = args.n / seconds
    ceiling = args.concurrency / (args.latency_ms / 1000)
    ratio = rate / ceiling
    print(f"  first run                {seconds:8.2f} s   {rate:10,.0f} examples/s"
          f"   requests {first_requests:,}   scored {counts.get('scored', 0):,}")  # fmt: skip
    print(f"  ceiling                  concurrency / latency = {ceiling:,.0f} examples/s")
    bare_rate = args.n / bare_seconds
    print(f"  bare openai client       {bare_seconds:8.2f} s   {bare_rate:10,.0f} requests/s"
          f"   ({bare_rate / ceiling:.2f} of the ceiling; Sift reaches "
          f"{rate / bare_rate:.2f} of it)")  # fmt: skip
    print(f"  ratio                    {ratio:.2f}   (target >= {TARGET_RATIO}: "
          f"{'met' if ratio >= TARGET_RATIO else 'MISSED'})")  # fmt: skip
    print(f"  second run               {again_seconds:8.2f} s   requests sent {second_requests}"
          f"   (target 0: {'met' if second_requests == 0 else 'MISSED'})")  # fmt: skip
    print(f"  second run counts        {again}")
    if ratio < TARGET_RATIO or second_requests != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
