"""Benchmark: a collection reviewed with overlap by many annotators at once (issue 13).

Target: with overlap 3 and 50 annotators, the review queue keeps p95 server time under 50 ms
(taking the next example, the example page, deciding), and every example is decided exactly 3
times by 3 different people: none more, none lost. The reference, measured in the same run, is
the same 50 annotators on a collection of the same size with overlap 1 (one decision each).

    python bench/overlap.py                       # a pool of 100,000, collections of 1,000
    python bench/overlap.py --pool 1000000 --size 2000

The pool (database `sift_bench_overlap`, its schema dropped and migrated) is built by SQL from
the 9,229 real records of ../shared/data/alpagasus/random_9k.json, as bench/ui.py builds its
own; the server is uvicorn with two workers on loopback (bench/ui.py's), and times are the
server's own (its Server-Timing header). Each annotator is a browser session that takes the
next example, reads its page and accepts it (a fifth rejected). The first --timed decisions
are made one request at a time, the annotators taking turns (as bench/ui.py times its pages:
the times that meet the target); then all annotators work at once until the queue gives them
nothing more, which shows the times under load and must leave every example decided exactly
K times. The exit status is 1 when a target is missed or a decision is lost or doubled.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import orjson

from bench.common import DATA, bench_url, plain_url, prepare_postgres
from bench.ui import (
    CATEGORIES,
    EXAMPLE_URL,
    EXAMPLES,
    SOURCES,
    VERSION,
    free_port,
    make_users,
    percentile,
    server_ms,
    sign_in,
    start_server,
)

DATABASE = "sift_bench_overlap"
POOL = "pool"
P95_TARGET_MS = 50.0
# Times an annotator asks again, half a second apart, when the queue has nothing for them.
EMPTY_TRIES = 6


def build(url: str, pool: int, size: int) -> None:
    """The pool and two collections of `size` (overlap 3 and overlap 1), disjoint."""
    import psycopg

    prepare_postgres(url)
    base = orjson.loads(DATA.read_bytes())
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        dataset = conn.execute(
            "INSERT INTO datasets (name, description) VALUES (%s, '') RETURNING id", (POOL,)
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "CREATE TEMP TABLE bench_base (k int PRIMARY KEY, instruction text, input text, "
            "output text)"
        )
        with conn.cursor() as cur, cur.copy("COPY bench_base FROM STDIN") as copy:
            for k, record in enumerate(base):
                copy.write_row((k, record["instruction"], record["input"], record["output"]))
        conn.execute(
            EXAMPLES,
            {"dataset": dataset, "n": pool, "base": len(base), "sources": list(SOURCES),
             "categories": list(CATEGORIES)},
        )  # fmt: skip
        step = max(pool // (2 * size), 1)
        for offset, (name, overlap) in enumerate((("overlap-3", 3), ("overlap-1", 1))):
            conn.execute(
                "INSERT INTO collections (name, description, target_size, quotas, recipes, "
                "guidelines, overlap, consensus) VALUES (%s, 'bench', %s, '{}', '[]', '', %s, "
                "'majority')",
                (name, size, overlap),
            )
            conn.execute(
                "INSERT INTO collection_items (collection_id, example_id, recipe, reason) "
                "SELECT c.id, e.id, 'bench', 'bench' FROM collections c, examples e "
                "WHERE c.name = %s AND e.dataset_id = %s AND mod(e.id, %s) = %s "
                "ORDER BY e.id LIMIT %s",
                (name, dataset, 2 * step, offset * step, size),
            )
        conn.execute("VACUUM ANALYZE")


@dataclass
class Run:
    """What the annotators saw: server times per request kind and what was acknowledged."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)


async def annotator(
    client: httpx.AsyncClient,
    token: str,
    name: str,
    collection: str,
    run: Run,
    seed: int,
    decisions: int | None = None,
) -> None:
    """Take, read and decide the collection's examples until the queue has none for us (or
    `decisions` of them)."""
    rng = random.Random(seed)
    queue = {"collection": collection}
    response = await client.post("/review/next", params=queue, data={"csrf_token": token})
    run.times["take the next example"].append(server_ms(response))
    empty = 0
    while True:
        found = EXAMPLE_URL.search(response.headers.get("location", ""))
        if response.status_code != 303:
            run.errors.append(f"{name}: {response.status_code} {response.text[:200]}")
            return
        if not found:
            # Nothing for us now; what others hold may come back to the queue (or need our
            # vote once they decide): ask again a few times, as a person would, then stop.
            empty += 1
            if empty > EMPTY_TRIES:
                return
            await asyncio.sleep(0.5)
            response = await client.post("/review/next", params=queue, data={"csrf_token": token})
            run.times["take the next example"].append(server_ms(response))
            continue
        empty = 0
        page = await client.get(response.headers["location"])
        run.times["example page"].append(server_ms(page))
        version = VERSION.search(page.text).group(1)  # type: ignore[union-attr]
        action = "reject" if rng.random() < 0.2 else "accept"
        example_id = int(found.group(1))
        response = await client.post(
            f"/review/examples/{example_id}/decide",
            params=queue,
            data={"csrf_token": token, "action": action, "version": version, "reason": "bench"},
        )
        run.times["decide and take the next"].append(server_ms(response))
        if response.status_code == 303:
            run.acknowledged[example_id].append(name)
        if decisions is not None:
            decisions -= 1
            if decisions <= 0:
                return


async def review(
    base: str, names: list[str], collection: str, timed: int
) -> tuple[Run, Run, float]:
    """First `timed` decisions one at a time, the annotators taking turns (the times that
    count, as bench/ui.py times pages); then every annotator on the queue at once until it is
    done for all (what counts there is that nothing is decided twice or lost)."""
    clients = [httpx.AsyncClient(base_url=base, timeout=120) for _ in names]
    # Signing in is argon2 (a core for a few hundred ms each): eight at a time, so that the
    # clock and the gate measure reviewing, not a sign-in storm on two cores.
    door = asyncio.Semaphore(8)

    async def enter(client: httpx.AsyncClient, name: str) -> str:
        async with door:
            return await sign_in(client, name)

    tokens = await asyncio.gather(*(enter(c, n) for c, n in zip(clients, names, strict=True)))
    alone, together = Run(), Run()
    people = list(zip(clients, tokens, names, strict=True))
    for turn in range(timed):
        client, token, name = people[turn % len(people)]
        await annotator(client, token, name, collection, alone, turn, decisions=1)
    together.acknowledged = alone.acknowledged  # one tally of what was decided
    started = time.perf_counter()
    await asyncio.gather(
        *(
            annotator(client, token, name, collection, together, i)
            for i, (client, token, name) in enumerate(people)
        )
    )
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    together.errors += alone.errors
    return alone, together, elapsed


def check(url: str, collection: str, overlap: int, run: Run) -> list[str]:
    """Every example decided exactly `overlap` times by different people, as acknowledged."""
    import psycopg

    problems = list(run.errors)
    with psycopg.connect(plain_url(url)) as conn:
        rows = conn.execute(
            "SELECT i.example_id, array_remove(array_agg(u.name), NULL) "
            "FROM collection_items i JOIN collections c ON c.id = i.collection_id "
            "LEFT JOIN review_decisions d ON d.example_id = i.example_id "
            "AND d.collection_id = c.id AND d.undone_at IS NULL "
            "LEFT JOIN users u ON u.id = d.user_id WHERE c.name = %s GROUP BY i.example_id",
            (collection,),
        ).fetchall()
    stored = {example_id: sorted(voters) for example_id, voters in rows}
    wrong = {i: v for i, v in stored.items() if len(v) != overlap or len(set(v)) != overlap}
    if wrong:
        sample = list(wrong.items())[:3]
        problems.append(f"{len(wrong)} examples not decided exactly {overlap} times: {sample}")
    acknowledged = {i: sorted(v) for i, v in run.acknowledged.items()}
    if acknowledged != {i: v for i, v in stored.items() if v}:
        problems.append("the decisions stored are not the ones acknowledged")
    return problems


def times(run: Run, heading: str) -> dict[str, float]:
    """Print p50 and p95 per request kind under a heading; the p95s."""
    print(f"  {heading}")
    p95s = {}
    for kind, samples in run.times.items():
        p95s[kind] = percentile(samples, 95)
        median = percentile(samples, 50)
        print(
            f"    {kind:<26} n {len(samples):>6,}  p50 {median:6.1f} ms  p95 {p95s[kind]:6.1f} ms"
        )
    return p95s


def report(
    label: str, alone: Run, together: Run, elapsed: float, problems: list[str]
) -> dict[str, float]:
    """Print the times one at a time and under load, and whether every decision is right;
    the p95s one at a time."""
    decisions = sum(len(v) for v in together.acknowledged.values())
    print(f"\n{label}: {decisions:,} decisions, all at once for {elapsed:.1f} s")
    p95s = times(alone, "one request at a time:")
    times(together, "all annotators at once (the machine's queue included):")
    print("  every example decided as it should: " + ("yes" if not problems else "NO"))
    for problem in problems:
        print(f"    {problem}")
    return p95s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000, help="examples in the pool")
    parser.add_argument("--size", type=int, default=1_000, help="examples per collection")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--timed", type=int, default=200, help="decisions timed one at a time")
    parser.add_argument("--url", help="a PostgreSQL URL (default: the embedded server)")
    args = parser.parse_args()
    args.url = args.url or bench_url(DATABASE, "SIFT_BENCH_OVERLAP_POSTGRES_URL")
    os.environ["SIFT_DATABASE_URL"] = args.url  # before the app reads its settings
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"Building a pool of {args.pool:,} and two collections of {args.size:,}")
    build(args.url, args.pool, args.size)
    names = make_users(args.url, args.annotators)
    port = free_port()
    server = start_server(args.url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        ref_alone, reference, reference_s = asyncio.run(
            review(base, names, "overlap-1", args.timed)
        )
        alone, measured, measured_s = asyncio.run(review(base, names, "overlap-3", args.timed))
    finally:
        server.terminate()
        server.wait(timeout=30)
    reference_problems = check(args.url, "overlap-1", 1, reference)
    problems = check(args.url, "overlap-3", 3, measured)
    ref = report(f"Reference: overlap 1, {args.annotators} annotators", ref_alone, reference,
                 reference_s, reference_problems)  # fmt: skip
    p95s = report(f"Overlap 3, {args.annotators} annotators", alone, measured, measured_s,
                  problems)  # fmt: skip
    print("\np95 against the target and the overlap-1 reference:")
    met = not problems and not reference_problems
    for kind, p95 in p95s.items():
        ok = p95 < P95_TARGET_MS
        met &= ok
        print(f"  {kind:<26} {p95:6.1f} ms ({p95 / ref[kind]:.2f}x the reference): "
              f"{'met' if ok else 'MISSED'}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
