"""Benchmark: the studio's pages on a large pool, and many annotators at once.

Targets (DESIGN.md, "Performance targets"; issue 5): with 1,000,000 examples in PostgreSQL,
p95 server time under 50 ms for the review queue and the example page and under 300 ms for
the dashboards; 50 concurrent annotators for 60 s on loopback with zero lost updates.

    python bench/ui.py                      # 1,000,000 examples (loading them takes minutes)
    python bench/ui.py --n 100000 --seconds 20
    python bench/ui.py --reuse              # keep the pool loaded by an earlier run

The pool is made of the real records of ../shared/data/alpagasus/random_9k.json, repeated with
a " (variant i)" suffix, written with COPY into the database `sift_bench_ui` (its schema dropped
and migrated unless --reuse finds the pool there), with an AlpaGasus-like score for every
example and a 1,000-example collection. The server is `uvicorn` with two workers in a child
process; times are the server's own (its Server-Timing header), measured one request at a time
after a warm-up. Then 50 annotators (each a browser session: CSRF token, cookie) take, decide
and skip examples for --seconds while others PATCH a few hot examples with If-Match, and the
database is checked: every acknowledged decision and edit is there exactly once, and nothing
acknowledged was overwritten. The exit status is 1 when a target is missed or an update is lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import itertools
import os
import random
import re
import socket
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

from bench.common import ROOT, build_records, migrate, plain_url, prepare_postgres

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/sift_bench_ui"
POOL, COLLECTION, HOT = "pool", "lima-1000", "hot"
PASSWORD = "bench password"
FAST_P95_MS, DASHBOARD_P95_MS = 50.0, 300.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EXAMPLE_URL = re.compile(r"/review/examples/(\d+)")
VERSION = re.compile(r'name="version" value="(\d+)"')


# ---------------------------------------------------------------- the pool


def load_pool(url: str, n: int) -> None:
    """n examples with a score each, a collection of 1,000 of them, users; all with COPY."""
    import psycopg

    from app.datasets.records import parse_alpaca

    prepare_postgres(url)
    started = time.perf_counter()
    with psycopg.connect(plain_url(url)) as conn:
        dataset_id = conn.execute(
            "INSERT INTO datasets (name, description) VALUES (%s, '') RETURNING id", (POOL,)
        ).fetchone()[0]  # type: ignore[index]
        hot_id = conn.execute(
            "INSERT INTO datasets (name, description) VALUES (%s, '') RETURNING id", (HOT,)
        ).fetchone()[0]  # type: ignore[index]
        scorer_id = conn.execute(
            "INSERT INTO scorers (name, version, key, kind, model, params) VALUES "
            "('alpagasus', 1, 'bench-alpagasus', 'llm_rating', 'bench', '{}') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        columns = (
            "dataset_id, messages, instruction, input, output, source, content_hash, meta, "
            "source_format, origin, status, version"
        )
        sources = ["alpaca", "dolly", "sharegpt", "stackexchange/physics", "wikihow"]
        rng = random.Random(0)
        with conn.cursor() as cur:
            with cur.copy(f"COPY examples ({columns}) FROM STDIN") as copy:
                for start in range(0, n, 50_000):
                    for i, record in enumerate(build_records(min(50_000, n - start)), start):
                        record["instruction"] = record["instruction"].rsplit(" (variant", 1)[0]
                        record["instruction"] += f" (variant {i})"
                        d = parse_alpaca(record)
                        copy.write_row((
                            dataset_id, orjson.dumps(d.messages).decode(), d.instruction,
                            d.input, d.output, sources[i % len(sources)], d.content_hash, "{}",
                            "alpaca", "import", "candidate", 1,
                        ))  # fmt: skip
                    print(f"  {min(start + 50_000, n):,} examples", flush=True)
                for i in range(20):
                    d = parse_alpaca({"instruction": f"Hot {i}", "input": "", "output": "v0"})
                    copy.write_row((
                        hot_id, orjson.dumps(d.messages).decode(), d.instruction, "", d.output,
                        "hot", d.content_hash, "{}", "alpaca", "import", "candidate", 1,
                    ))  # fmt: skip
            hashes = conn.execute(
                "SELECT content_hash FROM examples WHERE dataset_id = %s", (dataset_id,)
            ).fetchall()
            scores = (
                "COPY scores (content_hash, scorer_id, value, state, details, prompt_tokens, "
                "completion_tokens, cost) FROM STDIN"
            )
            with cur.copy(scores) as copy:
                for (content_hash,) in hashes:
                    value = rng.choice([3.0, 3.5, 3.5, 4.0, 4.0, 4.0, 4.5, 4.5, 5.0])
                    copy.write_row((content_hash, scorer_id, value, "ok", "{}", 0, 0, 0.0))
        conn.execute(
            "INSERT INTO collections (name, description, target_size, quotas, recipes, guidelines)"
            " VALUES (%s, '', 1000, '{}', '[]', '# Guidelines\n\nAccept answers that help.')",
            (COLLECTION,),
        )
        conn.execute(
            "INSERT INTO collection_items (collection_id, example_id, reason) "
            "SELECT c.id, e.id, 'bench' FROM collections c, examples e "
            "WHERE c.name = %s AND e.dataset_id = %s AND e.id %% 997 = 0 LIMIT 1000",
            (COLLECTION, dataset_id),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    print(f"  loaded in {time.perf_counter() - started:.0f} s")


def pool_size(url: str) -> int:
    """How many examples the bench pool holds now (0 when there is none)."""
    import psycopg

    try:
        with psycopg.connect(plain_url(url)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM examples e JOIN datasets d ON d.id = e.dataset_id "
                "WHERE d.name = %s",
                (POOL,),
            ).fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


def reset_reviews(url: str) -> None:
    """Forget earlier runs' decisions and edits, so that a reused pool starts the same."""
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("TRUNCATE review_decisions, review_leases, revisions, api_tokens")
        conn.execute("DELETE FROM users")
        conn.execute("UPDATE examples SET status = 'candidate' WHERE status <> 'candidate'")
        conn.execute(
            "UPDATE examples SET output = 'v0', version = 1, "
            "messages = jsonb_set(messages, '{1,content}', '\"v0\"') "
            "WHERE dataset_id = (SELECT id FROM datasets WHERE name = %s)",
            (HOT,),
        )
        conn.commit()


def make_users(url: str, annotators: int) -> list[str]:
    """A lead and the annotators; their names."""
    os.environ["SIFT_DATABASE_URL"] = url
    from app.core.db import transaction
    from app.users.service import create_user

    names = [f"annotator-{i}" for i in range(annotators)]
    with transaction() as session:
        create_user(session, "lead", "lead", PASSWORD)
        for name in names:
            create_user(session, name, "annotator", PASSWORD)
    return names


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """uvicorn with two workers on loopback, logging only errors."""
    env = {**os.environ, "SIFT_DATABASE_URL": url, "SIFT_REDIS_URL": "redis://127.0.0.1:6379/6"}
    command = [
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", str(port),
        "--workers", "2", "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "300",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    for _ in range(120):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start")


async def sign_in(client: httpx.AsyncClient, name: str) -> str:
    """Sign in through the form; the session's CSRF token."""
    page = await client.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = await client.post(
        "/login", data={"name": name, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    page = await client.get("/review")
    return CSRF.search(page.text).group(1)  # type: ignore[union-attr]


# ---------------------------------------------------------------- latency


def server_ms(response: httpx.Response) -> float:
    """The server's own time for a response, from its Server-Timing header."""
    return float(response.headers["server-timing"].split("dur=")[1])


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def latencies(base: str, repeat: int) -> dict[str, list[float]]:
    """Server times of each page, one request at a time, after a warm-up."""
    times: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        token = await sign_in(client, "lead")
        queue = {"dataset": POOL}
        taken = await client.post("/review/next", params=queue, data={"csrf_token": token})
        example_path = taken.headers["location"]
        pages = {
            "review queue page": ("GET", "/review/queue", queue),
            "next example (lease)": ("POST", "/review/next", queue),
            "example page": ("GET", example_path, None),
            "collection queue page": ("GET", "/review/queue", {"collection": COLLECTION}),
            "dataset dashboard": ("GET", f"/datasets/{POOL}", None),
            "collection dashboard": ("GET", f"/collections/{COLLECTION}", None),
        }
        for label, (method, path, params) in pages.items():
            samples = []
            for i in range(repeat + 5):
                if method == "GET":
                    response = await client.get(path, params=params)
                else:
                    response = await client.post(path, params=params, data={"csrf_token": token})
                assert response.status_code in (200, 303), (label, response.status_code)
                if i >= 5:
                    samples.append(server_ms(response))
            times[label] = samples
    return times


# ---------------------------------------------------------------- many annotators


@dataclass
class Tally:
    decisions: Counter[str] = field(default_factory=Counter)
    decided: dict[int, str] = field(default_factory=dict)
    edits: Counter[int] = field(default_factory=Counter)
    conflicts: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


async def annotator(
    client: httpx.AsyncClient, token: str, name: str, until: float, tally: Tally, seed: int
) -> None:
    """Take the next example, read it, decide (or skip), again and again."""
    rng = random.Random(seed)
    try:
        response = await client.post(
            "/review/next", params={"dataset": POOL}, data={"csrf_token": token}
        )
        while time.monotonic() < until:
            tally.requests += 1
            found = EXAMPLE_URL.search(response.headers.get("location", ""))
            if response.status_code != 303 or not found:
                tally.errors.append(f"{name}: next gave {response.status_code}")
                return
            page = await client.get(response.headers["location"])
            tally.requests += 1
            version = VERSION.search(page.text).group(1)  # type: ignore[union-attr]
            action = rng.choice(["accept", "accept", "reject", "skip"])
            example_id = int(found.group(1))
            response = await client.post(
                f"/review/examples/{example_id}/decide",
                params={"dataset": POOL},
                data={"csrf_token": token, "action": action, "version": version, "reason": "bench"},
            )
            if response.status_code == 303:
                tally.decisions[action] += 1
                if action != "skip":
                    if example_id in tally.decided:
                        tally.errors.append(f"example {example_id} was decided twice")
                    tally.decided[example_id] = action
            elif response.status_code == 409:
                tally.conflicts += 1
                response = await client.post(
                    "/review/next", params={"dataset": POOL}, data={"csrf_token": token}
                )
            else:
                tally.errors.append(f"{name}: decide gave {response.status_code}")
                return
    finally:
        await client.aclose()


async def editor(
    base: str, headers: dict[str, str], hot: list[int], until: float, tally: Tally, seed: int
) -> None:
    """PATCH hot examples with the version last read: a stale one must answer 409."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        while time.monotonic() < until:
            example_id = rng.choice(hot)
            current = (await client.get(f"/api/v1/examples/{example_id}")).json()
            await asyncio.sleep(rng.random() * 0.02)  # others may write in between
            response = await client.patch(
                f"/api/v1/examples/{example_id}",
                json={"output": f"edit {seed}-{rng.random():.12f}"},
                headers={"if-match": str(current["version"])},
            )
            tally.requests += 2
            if response.status_code == 200:
                tally.edits[example_id] += 1
            elif response.status_code == 409:
                tally.conflicts += 1
            else:
                tally.errors.append(f"edit gave {response.status_code}: {response.text[:200]}")
                return


def api_headers(url: str, name: str) -> dict[str, str]:
    from app.core.db import transaction
    from app.models import User
    from app.users.service import create_token

    with transaction() as session:
        from sqlalchemy import select

        user = session.scalar(select(User).where(User.name == name))
        return {"authorization": f"Bearer {create_token(session, user)}"}  # type: ignore[arg-type]


def check_no_lost_updates(url: str, tally: Tally, hot: list[int]) -> list[str]:
    """Every acknowledged decision and edit is in the database once; nothing was overwritten."""
    import psycopg

    problems = list(tally.errors)
    with psycopg.connect(plain_url(url)) as conn:
        rows = conn.execute(
            "SELECT example_id, action FROM review_decisions "
            "WHERE undone_at IS NULL AND action IN ('accept', 'reject')"
        ).fetchall()
        stored = dict(rows)
        if len(rows) != len(stored):
            problems.append("an example has two accept/reject decisions")
        if stored != tally.decided:
            problems.append(f"decisions acknowledged {len(tally.decided)}, stored {len(stored)}")
        statuses = dict(
            conn.execute(
                "SELECT id, status FROM examples WHERE id = ANY(%s)", (list(stored),)
            ).fetchall()
        )
        expected = {"accept": "accepted", "reject": "rejected"}
        wrong = [i for i, a in stored.items() if statuses.get(i) != expected[a]]
        if wrong:
            problems.append(f"{len(wrong)} examples do not have their decision's status")
        for example_id in hot:
            revisions = conn.execute(
                "SELECT before, after FROM revisions WHERE example_id = %s ORDER BY version",
                (example_id,),
            ).fetchall()
            version = conn.execute(
                "SELECT version FROM examples WHERE id = %s", (example_id,)
            ).fetchone()[0]  # type: ignore[index]
            if len(revisions) != tally.edits[example_id] or version != 1 + tally.edits[example_id]:
                problems.append(
                    f"hot example {example_id}: {tally.edits[example_id]} edits acknowledged, "
                    f"{len(revisions)} revisions, version {version}"
                )
            for older, newer in itertools.pairwise(revisions):
                if older[1]["output"] != newer[0]["output"]:
                    problems.append(f"hot example {example_id}: an edit overwrote another")
    return problems


async def load(
    base: str, url: str, names: list[str], seconds: float
) -> tuple[Tally, float, list[int]]:
    """Annotators and editors at once for `seconds`; the tally, the time and the hot ids."""
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        hot = [r[0] for r in conn.execute(
            "SELECT e.id FROM examples e JOIN datasets d ON d.id = e.dataset_id WHERE d.name = %s",
            (HOT,),
        )]  # fmt: skip
    tally = Tally()
    editors = [api_headers(url, names[i]) for i in range(5)]
    # Everyone signs in first: the clock runs for reviewing, not for password hashing.
    clients = [httpx.AsyncClient(base_url=base, timeout=60) for _ in names]
    tokens = await asyncio.gather(*(sign_in(c, n) for c, n in zip(clients, names, strict=True)))
    until = time.monotonic() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(
            annotator(client, token, name, until, tally, i)
            for i, (client, token, name) in enumerate(zip(clients, tokens, names, strict=True))
        ),
        *(
            editor(base, headers, hot[:5], until, tally, 100 + i)
            for i, headers in enumerate(editors)
        ),
    )
    return tally, time.perf_counter() - started, hot[:5]


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the pool")
    parser.add_argument("--repeat", type=int, default=200, help="timed requests per page")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reuse", action="store_true", help="keep a pool of --n examples")
    parser.add_argument("--url", default=os.environ.get("SIFT_BENCH_UI_POSTGRES_URL", DEFAULT_URL))
    args = parser.parse_args()

    if args.reuse and pool_size(args.url) == args.n:
        print(f"Reusing the pool of {args.n:,} examples in {args.url}")
        migrate(args.url)
        reset_reviews(args.url)
    else:
        print(f"Loading {args.n:,} examples into {args.url}")
        load_pool(args.url, args.n)
    names = make_users(args.url, args.annotators)
    port = free_port()
    server = start_server(args.url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        times = asyncio.run(latencies(base, args.repeat))
        print(f"\nServer time per page, {args.repeat} requests each, pool of {args.n:,} (ms):")
        failed = False
        for label, samples in times.items():
            target = DASHBOARD_P95_MS if "dashboard" in label else FAST_P95_MS
            p50, p95 = statistics.median(samples), percentile(samples, 95)
            ok = p95 < target
            failed |= not ok
            print(f"  {label:24} p50 {p50:7.1f}   p95 {p95:7.1f}   target p95 < {target:.0f}: "
                  f"{'ok' if ok else 'MISSED'}")  # fmt: skip
        tally, elapsed, hot = asyncio.run(load(base, args.url, names, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\n{args.annotators} annotators and 5 API editors for {elapsed:.0f} s: "
        f"{sum(tally.decisions.values()):,} decisions ({dict(tally.decisions)}), "
        f"{sum(tally.edits.values()):,} edits of 5 hot examples, {tally.conflicts:,} conflicts "
        f"answered 409, {tally.requests / elapsed:,.0f} requests/s"
    )
    problems = check_no_lost_updates(args.url, tally, hot)
    print(
        "  lost updates: none"
        if not problems
        else "  LOST UPDATES:\n    " + "\n    ".join(problems)
    )
    sys.exit(1 if failed or problems else 0)


if __name__ == "__main__":
    main()
