"""Benchmark: the studio's pages on a large pool, and many annotators at once.

Targets (DESIGN.md, "Performance targets"; issue 5): with 1,000,000 examples in PostgreSQL,
p95 server time under 50 ms for the review queue and the example page, and under 300 ms for
the dashboards and their distributions (counts, score histograms, the embedding map), also on
the first load after a change; 50 concurrent annotators for 60 s on loopback with zero lost
updates. Issue 12: nearest neighbours from the HNSW index p95 under 50 ms with recall@10 >= 0.95
against exact search (measured in the same run), and text search (the full-text index) p95
under 50 ms.

    python bench/ui.py                      # 1,000,000 examples (building them takes minutes)
    python bench/ui.py --n 100000 --seconds 20
    python bench/ui.py --reuse              # keep the pool that an earlier run built
    python bench/ui.py --only bulk          # a bulk action on 100,000 of a million, as a job

With no --url (nor $SIFT_BENCH_UI_POSTGRES_URL) it runs on Sift's embedded PostgreSQL (with
pgvector), started here in the bench data folder and kept between runs for --reuse.

The pool (database `sift_bench_ui`: its schema dropped and migrated, unless --reuse finds a
pool of --n examples there) is built by SQL in the database: the 9,229 real records of
../shared/data/alpagasus/random_9k.json, repeated with a " (variant i)" suffix, over 20
sources and 7 categories (an eighth of them none); every example scored by `alpagasus` (2%
parse errors), `lima` and `length` (the answer's characters); a distinct real MiniLM vector
for every example (bench/vectors.py: every distinct prompt of the shared data sets embedded by
the bundled model, then mixtures of two of them); the full-text and HNSW indexes built after
the load; a collection of 1,000 with source quotas, 600 review decisions by three reviewers (a
tenth undone) and two snapshots; a few finished jobs. `--only bulk` measures only a bulk
action on 100,000 examples as a job and the tables sorted by a score (bench/ui_bulk.py, on a
pool without vectors in a database of its own). `--only-search` measures only the
neighbours and the text searches, `--ef-search 100,200` the neighbours at each `hnsw.ef_search`
(instead of Sift's own).

Pages: the server is `uvicorn` with two workers in a child process; times are the server's
own (its Server-Timing header), one request at a time, after five warm-up requests. The
dashboards' fragments are timed warm (as most loads are: the dataset page keeps its counts and
histograms while nothing they read has moved) and, for those it keeps, on the first load
after a change (an edit through the API before each request). Then 50 annotators (each a
browser session: CSRF token, cookie) take, decide and skip examples for --seconds while others
PATCH a few hot examples with If-Match, and the database is checked: every acknowledged
decision and edit is there exactly once, and nothing acknowledged was overwritten. Then, in this process through the services: the
example page's nearest neighbours (10, from the HNSW index) of --neighbour-queries random
examples, timed, against exact neighbours computed with numpy over every vector (recall@10);
and text searches (a few typed words, the last one half typed) through the examples list, the
review queue and the pick list. Each of these first runs as many other searches, timed and
printed apart: the first searches after the server's start read the index into its cache (two
to five times slower), and the targets are judged on the studio in use. The exit status is 1
when a target is missed or an update is lost.
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
from typing import Any

import httpx
import numpy as np
import orjson

from bench.common import (
    DATA,
    ROOT,
    bench_url,
    copy_embeddings,
    migrate,
    plain_url,
    prepare_postgres,
)

DATABASE = "sift_bench_ui"
POOL, COLLECTION, HOT, SCRATCH = "pool", "lima-1000", "hot", "scratch"
PASSWORD = "bench password"
FAST_P95_MS, DASHBOARD_P95_MS = 50.0, 300.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EXAMPLE_URL = re.compile(r"/review/examples/(\d+)")
VERSION = re.compile(r'name="version" value="(\d+)"')
MODEL = "all-MiniLM-L6-v2"  # the bundled model's name: the pages search its vectors
RECALL_TARGET = 0.95
SOURCES = (
    "alpaca", "dolly", "sharegpt", "oasst1", "flan-v2", "lima", "wizardlm", "self-instruct",
    "code-alpaca", "gpt4-alpaca", "unnatural", "baize", "camel", "ultrachat", "wikihow",
    "stackexchange/physics", "stackexchange/cooking", "reddit/askscience", "super-natural", "cot",
)  # fmt: skip
CATEGORIES = (
    "open_qa", "brainstorming", "classification", "closed_qa", "generation",
    "information_extraction", "summarization",
)  # fmt: skip


# ---------------------------------------------------------------- the pool

# u(i, k): a fixed pseudo-random number in [0, 1) per example and purpose (a multiplicative
# hash), so that the pool is the same on every build.
UNIFORM = "(mod({i}::bigint * {k}, 4294967296) / 4294967296.0)"

EXAMPLES = """
INSERT INTO examples (dataset_id, messages, instruction, input, output, source, category, meta,
                      content_hash, source_format, source_keys, origin, status, version)
SELECT %(dataset)s,
       jsonb_build_array(
           jsonb_build_object('role', 'user', 'content',
               CASE WHEN b.input = '' THEN v.instruction
                    ELSE v.instruction || E'\\n\\n' || b.input END),
           jsonb_build_object('role', 'assistant', 'content', b.output)),
       v.instruction, b.input, b.output,
       -- sources skewed toward the first ones; categories an eighth none
       (%(sources)s::text[])[1 + floor(20 * {u1} * {u1})::int],
       (%(categories)s::text[])[1 + mod(i, 8)],
       '{{}}'::jsonb, md5('pool ' || i), 'alpaca', '["instruction", "input", "output"]'::jsonb,
       'import', 'candidate', 1
FROM generate_series(0, %(n)s - 1) AS i
JOIN bench_base b ON b.k = mod(i, %(base)s)
CROSS JOIN LATERAL (SELECT b.instruction || ' (variant ' || i || ')' AS instruction) v
""".format(u1=UNIFORM.format(i="i", k=2654435761))

SCORES = """
INSERT INTO scores (content_hash, scorer_id, value, state, details, prompt_tokens,
                    completion_tokens, cost)
SELECT content_hash, %(scorer)s, {value}, {state}, '{{}}'::jsonb, 0, 0, 0
FROM examples WHERE dataset_id = %(dataset)s
"""
U, V = UNIFORM.format(i="id", k=40503), UNIFORM.format(i="id", k=2246822519)
ALPAGASUS = SCORES.format(
    # AlpaGasus-like ratings: mostly 4 to 5 on a half-point grid, 2% that did not parse
    value=f"CASE WHEN {U} < 0.02 THEN NULL ELSE "
    f"(ARRAY[2.0, 3.0, 3.5, 3.5, 4.0, 4.0, 4.0, 4.5, 4.5, 4.5, 5.0])[1 + floor(11 * {V})::int] END",
    state=f"CASE WHEN {U} < 0.02 THEN 'parse_error' ELSE 'ok' END",
)
LIMA = SCORES.format(value=f"round(4 * {V}) / 4.0", state="'ok'")  # the share of checks passed
LENGTH = SCORES.format(value="length(output)::float", state="'ok'")  # as the recipe counts


def build_pool(url: str, n: int, vectors: bool = True) -> None:
    """The pool, the hot and scratch datasets, scores, embeddings (unless not `vectors`), the
    collection and jobs."""
    import psycopg

    from app.datasets.service import parse_alpaca

    prepare_postgres(url)
    scorer_ids = stored_scorers(url)
    started = time.perf_counter()

    def step(what: str) -> None:
        print(f"  {what} at {time.perf_counter() - started:.0f} s", flush=True)

    base = orjson.loads(DATA.read_bytes())
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        indexes = drop_search_indexes(conn)
        ids = {
            name: conn.execute(
                "INSERT INTO datasets (name, description) VALUES (%s, '') RETURNING id", (name,)
            ).fetchone()[0]  # type: ignore[index]
            for name in (POOL, HOT, SCRATCH)
        }
        conn.execute(
            "CREATE TEMP TABLE bench_base (k int PRIMARY KEY, instruction text, input text, "
            "output text)"
        )
        with conn.cursor() as cur, cur.copy("COPY bench_base FROM STDIN") as copy:
            for k, record in enumerate(base):
                copy.write_row((k, record["instruction"], record["input"], record["output"]))
        conn.execute(
            EXAMPLES,
            {"dataset": ids[POOL], "n": n, "base": len(base), "sources": list(SOURCES),
             "categories": list(CATEGORIES)},
        )  # fmt: skip
        step(f"{n:,} examples")
        small = [(HOT, f"Hot {i}", "v0") for i in range(20)] + [(SCRATCH, "Scratch", "v0")]
        with conn.cursor() as cur:
            for name, instruction, output in small:
                d = parse_alpaca({"instruction": instruction, "input": "", "output": output})
                cur.execute(
                    "INSERT INTO examples (dataset_id, messages, instruction, input, output, "
                    "source, content_hash, meta, source_format, origin, status, version) "
                    "VALUES (%s, %s, %s, '', %s, %s, %s, '{}', 'alpaca', 'import', "
                    "'candidate', 1)",
                    (ids[name], orjson.dumps(d.messages).decode(), d.instruction, d.output,
                     name, d.content_hash),
                )  # fmt: skip
        for name, query in (("alpagasus", ALPAGASUS), ("lima", LIMA), ("length", LENGTH)):
            conn.execute(query, {"scorer": scorer_ids[name], "dataset": ids[POOL]})
        step(f"{3 * n:,} scores")
        if vectors:
            embed(conn, ids[POOL])
            step(f"{n:,} embeddings")
        build_search_indexes(conn, indexes)
        step("full-text and HNSW indexes")
        make_collection(conn, n)
        make_jobs(conn, ids[POOL])
        conn.execute("VACUUM ANALYZE")  # what autovacuum does to a freshly loaded table
        step("collection, jobs and VACUUM ANALYZE")


def stored_scorers(url: str) -> dict[str, int]:
    """The scorer rows the app would store for the three recipes; name -> id."""
    # An endpoint that is never called: the alpagasus scorer is bound to its model name.
    os.environ.setdefault("SIFT_LLM__DEFAULT__BASE_URL", "http://127.0.0.1:9/v1")
    os.environ.setdefault("SIFT_LLM__DEFAULT__MODEL", "bench-judge")
    from app.platform.config import get_settings

    get_settings.cache_clear()  # read before the endpoint was set (starting the database)
    from app.platform.db import make_engine, session_factory
    from app.scoring.service import choose_scorer, get_or_create_scorer

    engine = make_engine(url)
    with session_factory(engine)() as session:
        scorers = {
            name: get_or_create_scorer(session, choose_scorer(session, name))
            for name in ("alpagasus", "lima", "length")
        }
        session.commit()
        found = {name: scorer.id for name, scorer in scorers.items()}
    engine.dispose()
    return found


def embed(conn: Any, dataset_id: int) -> None:
    """A real MiniLM vector per example, in id order (bench/vectors.py: every distinct prompt of
    the shared data sets embedded, then mixtures of two of them), COPYed in binary."""
    from pgvector.psycopg import register_vector

    from bench.vectors import pool_vectors

    register_vector(conn)
    hashes = conn.execute(
        "SELECT content_hash FROM examples WHERE dataset_id = %s ORDER BY id", (dataset_id,)
    ).fetchall()
    vectors = pool_vectors(len(hashes))
    rows = zip(hashes, vectors, strict=True)
    copy_embeddings(conn, ((content_hash, MODEL, 384, vector) for (content_hash,), vector in rows))


SEARCH_INDEXES = ("ix_examples_search", "ix_embeddings_hnsw_%")


def drop_search_indexes(conn: Any) -> list[str]:
    """Drop the full-text and HNSW indexes (faster to build once after the load than to keep
    up row by row); their definitions, to build them again."""
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s OR indexname LIKE %s",
        SEARCH_INDEXES,
    ).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def build_search_indexes(conn: Any, definitions: list[str]) -> None:
    """Build the indexes again, with the memory an HNSW build of a million vectors needs."""
    conn.execute("SET maintenance_work_mem = '3GB'")
    for definition in definitions:
        conn.execute(definition)
    conn.execute("RESET maintenance_work_mem")


def make_collection(conn: Any, n: int) -> None:
    """The collection (every step-th example, quotas on sources) and two snapshot rows."""
    step = max(n // 1000 - 3, 1)  # 997 for a million: prime, so sources and categories mix
    quotas = orjson.dumps({"source": {source: 60 for source in SOURCES}}).decode()
    recipes = orjson.dumps([{"name": "random-1", "dataset": POOL, "method": "random"}]).decode()
    conn.execute(
        "INSERT INTO collections (name, description, target_size, quotas, recipes, guidelines) "
        "VALUES (%s, 'bench', 1200, %s, %s, '# Guidelines\n\nAccept answers that help.')",
        (COLLECTION, quotas, recipes),
    )
    conn.execute(
        "INSERT INTO collection_items (collection_id, example_id, recipe, reason) "
        "SELECT c.id, e.id, 'random-1', 'bench' FROM collections c, examples e "
        "JOIN datasets d ON d.id = e.dataset_id "
        "WHERE c.name = %s AND d.name = %s AND mod(e.id, %s) = 0 ORDER BY e.id LIMIT 1000",
        (COLLECTION, POOL, step),
    )
    for note, size in (("first 500", 500), ("all 1000", 1000)):
        conn.execute(
            "INSERT INTO snapshots (collection_id, digest, example_count, note) "
            "SELECT id, md5(%s), %s, %s FROM collections WHERE name = %s",
            (note, size, note, COLLECTION),
        )


def make_jobs(conn: Any, dataset_id: int) -> None:
    """Finished jobs for the jobs panels: three score jobs, an embed job, a select job."""
    collection_id = conn.execute(
        "SELECT id FROM collections WHERE name = %s", (COLLECTION,)
    ).fetchone()[0]
    rows = [("score", "io", {"scorer": name}) for name in ("alpagasus@1", "lima@1", "length@1")]
    rows += [
        ("embed", "cpu", {"model": MODEL}),
        ("select", "cpu", {"collection_id": collection_id}),
    ]
    for kind, queue, params in rows:
        conn.execute(
            "INSERT INTO jobs (kind, queue, params, state, done, total, counts, attempts, "
            "dataset_id, started_at, heartbeat_at, finished_at) VALUES (%s, %s, %s, 'succeeded', "
            "1000, 1000, '{}', 1, %s, now(), now(), now())",
            (kind, queue, orjson.dumps(params).decode(), dataset_id),
        )


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
        conn.execute(
            "UPDATE examples SET status = 'candidate' "
            "WHERE dataset_id = (SELECT id FROM datasets WHERE name = %s) "
            "AND status IN ('accepted', 'rejected')",
            (POOL,),
        )
        conn.execute(
            "UPDATE examples SET output = 'v0', version = 1, "
            "messages = jsonb_set(messages, '{1,content}', '\"v0\"') "
            "WHERE dataset_id IN (SELECT id FROM datasets WHERE name IN (%s, %s))",
            (HOT, SCRATCH),
        )
        conn.commit()


def make_users(url: str, annotators: int) -> list[str]:
    """A lead, three reviewers and the annotators; the annotators' names."""
    from app.platform.db import transaction
    from app.users.service import create_user

    names = [f"annotator-{i}" for i in range(annotators)]
    with transaction() as session:
        create_user(session, "lead", "lead", PASSWORD)
        for name in [f"reviewer-{k}" for k in range(3)] + names:
            create_user(session, name, "annotator", PASSWORD)
    return names


def seed_reviews(url: str) -> None:
    """600 decisions in the collection's queue by the three reviewers, a tenth of them undone;
    the examples of the others accepted or rejected."""
    import psycopg

    decided = "SELECT id, example_id, collection_id FROM collection_items ORDER BY id LIMIT 600"
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO review_decisions (example_id, user_id, collection_id, action, reason, "
            f"status_before, undone_at) "
            f"SELECT i.example_id, u.id, i.collection_id, "
            f"CASE WHEN mod(i.example_id, 3) = 0 THEN 'reject' ELSE 'accept' END, 'bench', "
            f"'candidate', CASE WHEN mod(i.id, 10) = 0 THEN now() END "
            f"FROM ({decided}) i JOIN users u ON u.name = 'reviewer-' || mod(i.id, 3)"
        )
        conn.execute(
            f"UPDATE examples e SET status = CASE WHEN mod(e.id, 3) = 0 THEN 'rejected' "
            f"ELSE 'accepted' END FROM ({decided}) i WHERE e.id = i.example_id "
            f"AND mod(i.id, 10) <> 0"
        )
        conn.execute("VACUUM ANALYZE examples")  # the updated pages are all-visible again


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """uvicorn with two workers on loopback, logging only errors."""
    redis = os.environ.get("SIFT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
    env = {**os.environ, "SIFT_DATABASE_URL": url, "SIFT_REDIS_URL": redis}
    command = [
        sys.executable, "-m", "uvicorn", "app.entrypoints.web:create_app", "--factory", "--port", str(port),
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


@dataclass
class Page:
    """A page or fragment to time: its target (None: reported only), how often, and whether
    each request follows a change (a first load: nothing it keeps can be reused)."""

    label: str
    path: str
    params: dict[str, Any] | None = None
    target: float | None = DASHBOARD_P95_MS
    method: str = "GET"
    repeat: int | None = None
    after_change: bool = False
    htmx: bool = False  # a fragment, or the examples table alone, as htmx asks for them


def pages(example_path: str, args: argparse.Namespace) -> list[Page]:
    """What is timed, in order."""
    queue = {"dataset": POOL}
    data, coll = f"/datasets/{POOL}", f"/collections/{COLLECTION}"
    few, cold = args.dashboard_repeat, args.cold_repeat
    words, sentence = "explain the differ", "How do plants turn sunlight into food?"
    return [
        Page("review queue page", "/review/queue", queue, FAST_P95_MS, repeat=args.repeat),
        Page("next example (lease)", "/review/next", queue, FAST_P95_MS, "POST", args.repeat),
        Page("example page", example_path, None, FAST_P95_MS, repeat=args.repeat),
        Page("  neighbours (fragment, HNSW)", example_path.split("?")[0] + "/neighbours", None,
             FAST_P95_MS, repeat=args.repeat, htmx=True),
        Page("review queue, words", "/review/queue", {**queue, "q": words}, FAST_P95_MS,
             repeat=few),
        Page("review queue, similar to", "/review/queue", {**queue, "similar_to": sentence},
             None, repeat=few),
        Page("collection queue page", "/review/queue", {"collection": COLLECTION}, FAST_P95_MS,
             repeat=args.repeat),
        Page("dataset dashboard", data, repeat=few),
        Page("  counts (fragment)", f"{data}/stats", repeat=few, htmx=True),
        Page("  counts, first load", f"{data}/stats", repeat=cold, after_change=True, htmx=True),
        Page("  histograms (fragment)", f"{data}/scores", repeat=few, htmx=True),
        Page("  histograms, first load", f"{data}/scores", repeat=cold, after_change=True,
             htmx=True),
        Page("  jobs (fragment, polled)", f"{data}/jobs", repeat=few, htmx=True),
        Page("  examples, a page deep", data, {"after": args.n // 2}, repeat=few, htmx=True),
        Page("  examples, alpagasus>=4.5", data, {"score": "alpagasus>=4.5"}, repeat=few,
             htmx=True),
        Page("  examples, words", data, {"q": words}, FAST_P95_MS, repeat=few, htmx=True),
        Page("  examples, similar to", data, {"similar_to": sentence}, None, repeat=few,
             htmx=True),
        Page("collection dashboard", coll, repeat=few),
        Page("  scores: pool vs collection", f"{coll}/scores", repeat=few, htmx=True),
        Page("  embedding map", f"{coll}/map", repeat=few, htmx=True),
        Page("  pick list", f"{coll}/pool", repeat=few, htmx=True),
        Page("  pick list, searched", f"{coll}/pool", {"q": "(variant 123457)"}, FAST_P95_MS,
             repeat=few, htmx=True),
        Page("  pick list, words", f"{coll}/pool", {"q": words}, FAST_P95_MS, repeat=few,
             htmx=True),
        Page("  pick list, similar to", f"{coll}/pool", {"similar_to": sentence}, None,
             repeat=few, htmx=True),
        Page("  items, second page", f"{coll}/items", {"after": 1}, repeat=few, htmx=True),
        Page("  jobs (fragment, polled)", f"{coll}/jobs", repeat=few, htmx=True),
        Page("collections list", "/collections", repeat=few),
    ]  # fmt: skip


async def latencies(
    base: str, url: str, args: argparse.Namespace
) -> list[tuple[Page, list[float]]]:
    """Server times of each page, one request at a time, after five untimed ones."""
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        scratch = conn.execute(
            "SELECT e.id FROM examples e JOIN datasets d ON d.id = e.dataset_id WHERE d.name = %s",
            (SCRATCH,),
        ).fetchone()[0]  # type: ignore[index]
    api = httpx.AsyncClient(base_url=base, timeout=120, headers=api_headers(url, "lead"))
    edits = itertools.count()

    async def change() -> None:
        """An edit of the scratch example: a new revision, which every kept aggregate watches."""
        current = (await api.get(f"/api/v1/examples/{scratch}")).json()
        response = await api.patch(
            f"/api/v1/examples/{scratch}",
            json={"output": f"edit {next(edits)}"},
            headers={"if-match": str(current["version"])},
        )
        assert response.status_code == 200, response.text

    results = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        token = await sign_in(client, "lead")
        taken = await client.post(
            "/review/next", params={"dataset": POOL}, data={"csrf_token": token}
        )
        for page in pages(taken.headers["location"], args):
            samples = []
            for i in range((page.repeat or args.repeat) + 5):
                if page.method == "POST":
                    response = await client.post(
                        page.path, params=page.params, data={"csrf_token": token}
                    )
                else:
                    if page.after_change:
                        await change()
                    headers = {"hx-request": "true"} if page.htmx else {}
                    response = await client.get(page.path, params=page.params, headers=headers)
                assert response.status_code in (200, 303), (page.label, response.status_code)
                if i >= 5:
                    samples.append(server_ms(response))
            results.append((page, samples))
            print(f"  {page.label}: {statistics.median(samples):.1f} ms", flush=True)
    await api.aclose()
    return results


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
                where = response.headers.get("location", "")
                tally.errors.append(f"{name}: next gave {response.status_code} {where}".strip())
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
            read = await client.get(f"/api/v1/examples/{example_id}")
            if read.status_code != 200:
                tally.requests += 1
                tally.errors.append(f"read gave {read.status_code}: {read.text[:200]}")
                continue
            current = read.json()
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
    """An API token of the lead `name` (made here if missing): annotators read and edit only
    what their queue handed them, so the editors of hot examples are leads."""
    from sqlalchemy import select

    from app.models import User
    from app.platform.db import transaction
    from app.users.service import create_token, create_user

    with transaction() as session:
        user = session.scalar(select(User).where(User.name == name))
        user = user or create_user(session, name, "lead")
        return {"authorization": f"Bearer {create_token(session, user)}"}


def check_no_lost_updates(url: str, tally: Tally, hot: list[int]) -> list[str]:
    """Every acknowledged decision and edit is in the database once; nothing was overwritten."""
    import psycopg

    problems = list(tally.errors)
    with psycopg.connect(plain_url(url)) as conn:
        rows = conn.execute(  # the dataset's queue: the seeded ones are in the collection's
            "SELECT example_id, action FROM review_decisions "
            "WHERE undone_at IS NULL AND action IN ('accept', 'reject') AND collection_id IS NULL"
        ).fetchall()
        stored: dict[int, str] = dict(rows)
        if len(rows) != len(stored):
            problems.append("an example has two accept/reject decisions")
        if stored != tally.decided:
            problems.append(f"decisions acknowledged {len(tally.decided)}, stored {len(stored)}")
        statuses: dict[int, str] = dict(
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
    editors = [api_headers(url, f"editor-{i}") for i in range(5)]
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


def report(results: list[tuple[Page, list[float]]], n: int) -> bool:
    """Print p50 and p95 of each page against its target; True when every target is met."""
    print(f"\nServer time per request, pool of {n:,} examples (ms):")
    print(f"  {'page':34} {'requests':>8} {'p50':>8} {'p95':>8}  target p95")
    met = True
    for page, samples in results:
        p50, p95 = statistics.median(samples), percentile(samples, 95)
        verdict = ""
        if page.target is not None:
            ok = p95 < page.target
            met &= ok
            verdict = f"< {page.target:.0f}: {'ok' if ok else 'MISSED'}"
        print(f"  {page.label:34} {len(samples):8} {p50:8.1f} {p95:8.1f}  {verdict}")
    return met


def queue_reads_ms(url: str, repeat: int) -> float:
    """The reference: p50 of the review queue page's own reads (the capped count and the next
    examples), through the service in this process, without HTTP or a template."""
    from sqlalchemy import select

    from app.models import User
    from app.platform.db import make_engine, session_factory
    from app.review import queue as queues

    engine = make_engine(url)
    samples = []
    with session_factory(engine)() as session:
        lead = session.scalar(select(User).where(User.name == "lead"))
        assert lead is not None
        for i in range(repeat + 5):
            started = time.perf_counter()
            _queue_page_reads(session, queues.open_queue(session, dataset=POOL), lead)
            if i >= 5:
                samples.append((time.perf_counter() - started) * 1000)
            session.rollback()
    engine.dispose()
    return statistics.median(samples)


def pool_vectors(session: Any) -> tuple[np.ndarray, np.ndarray]:
    """(example ids, unit vectors) of the whole pool, read in binary a slice at a time."""
    from sqlalchemy import func, select

    from app.models import Dataset, Embedding, Example
    from app.platform.vectors.store import unpack_vectors

    dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == POOL))
    query = (
        select(Example.id, func.vector_send(Embedding.vector))
        .join(Embedding, Embedding.content_hash == Example.content_hash)
        .where(Example.dataset_id == dataset_id, Embedding.model == MODEL)
        .order_by(Example.id)
        .execution_options(yield_per=50_000)
    )
    ids: list[int] = []
    blocks: list[np.ndarray] = []
    for part in session.execute(query).partitions():
        ids.extend(row[0] for row in part)
        blocks.append(unpack_vectors([row[1] for row in part]))
    return np.asarray(ids, dtype=np.int64), np.concatenate(blocks)


def neighbour_search(
    url: str, queries: int, ef_searches: tuple[int | None, ...] = (None,)
) -> list[tuple[list[float], float, float]]:
    """For each hnsw.ef_search (None: Sift's own), server-side times (ms) of the example page's
    10 nearest neighbours (the HNSW index) of random examples, their recall@10 against exact
    neighbours computed here with numpy over every vector (once), and how long the exact search
    took per query (ms). As many searches of other examples come first, timed apart (the
    index cold in the server's cache), so that the figures judged are the studio's in use."""
    from sqlalchemy import select

    from app.models import Example
    from app.platform.db import make_engine, session_factory
    from app.platform.vectors import index
    from app.review.context import neighbours_of

    engine = make_engine(url)
    results = []
    with session_factory(engine)() as session:
        started = time.perf_counter()
        ids, matrix = pool_vectors(session)
        print(f"  read {len(ids):,} vectors in {time.perf_counter() - started:.1f} s", flush=True)
        rng = np.random.default_rng(1)
        chosen = rng.choice(len(ids), size=queries + 5, replace=False)
        started = time.perf_counter()
        exact = []
        for position in chosen:
            similarity = matrix @ matrix[position]
            similarity[position] = -np.inf
            exact.append(set(ids[np.argpartition(-similarity, 10)[:10]].tolist()))
        exact_ms = (time.perf_counter() - started) * 1000 / len(chosen)
        del matrix
        # First as many other examples, timed apart: what the first people to open an example
        # after the server's start wait, while the index comes into its cache.
        first = [
            _timed(lambda e=example: neighbours_of(session, e, k=10), session)
            for example in session.scalars(
                select(Example).where(
                    Example.id.in_(rng.choice(ids, queries, replace=False).tolist())
                )
            ).all()
        ]
        print(f"  the first {len(first)} neighbour searches after the server's start (other "
              f"examples): p50 {statistics.median(first):.1f}, p95 {percentile(first, 95):.1f} ms")  # fmt: skip
        sift_ef_search = index.EF_SEARCH
        for ef_search in ef_searches:
            index.EF_SEARCH = ef_search or sift_ef_search  # read at every search
            samples, hits = [], 0
            for n, position in enumerate(chosen):
                example = session.get(Example, int(ids[position]))
                assert example is not None
                started = time.perf_counter()
                found, note = neighbours_of(session, example, k=10)
                elapsed = (time.perf_counter() - started) * 1000
                assert note is None, note
                session.rollback()
                if n >= 5:  # the first five warm up
                    samples.append(elapsed)
                    hits += len({e.id for e, _ in found} & exact[n])
            results.append((samples, hits / (10 * queries), exact_ms))
        index.EF_SEARCH = sift_ef_search
    engine.dispose()
    return results


def search_words(repeat: int) -> list[str]:
    """Searches as a person types them: two or three words of a real prompt, the last one cut
    short, from records spread over the base set."""
    base = orjson.loads(DATA.read_bytes())
    rng = random.Random(7)
    found: list[str] = []
    while len(found) < repeat:
        words = re.findall(r"[a-z]{3,}", base[rng.randrange(len(base))]["instruction"].lower())
        if len(words) < 3:
            continue
        start = rng.randrange(len(words) - 2)
        picked = words[start : start + rng.choice((2, 3))]
        found.append(" ".join([*picked[:-1], picked[-1][: max(3, len(picked[-1]) - 2)]]))
    return found


def _queue_page_reads(session: Any, queue: Any, user: Any) -> None:
    """What the queue page reads of one queue (one per request): the capped count and the
    next examples."""
    from app.review import queue as queues
    from app.review.queue_table import PAGE_SIZE

    queues.count_and_upcoming(session, queue, user, PAGE_SIZE)


def text_searches(url: str, repeat: int) -> dict[str, list[float]]:
    """Times (ms) of text searches through the services of the three text filters: the
    dataset's examples table, the review queue (its capped count and the next examples) and the
    collection's pick list; after as many other searches, timed and printed apart."""
    from sqlalchemy import select

    from app.collections import dashboard
    from app.collections.service import get_collection
    from app.datasets.service import ExampleFilter, get_dataset, list_examples
    from app.models import User
    from app.platform.db import make_engine, session_factory
    from app.review import queue as queues

    engine = make_engine(url)
    times: dict[str, list[float]] = {"examples list": [], "review queue": [], "pick list": []}
    with session_factory(engine)() as session:
        lead = session.scalar(select(User).where(User.name == "lead"))
        assert lead is not None
        dataset = get_dataset(session, POOL)
        collection = get_collection(session, COLLECTION)
        searches = {
            "examples list": lambda q: list_examples(
                session, dataset, ExampleFilter(q=q), None, 50
            ),
            "review queue": lambda q: _queue_page_reads(
                session, queues.open_queue(session, dataset=POOL, q=q), lead
            ),
            "pick list": lambda q: dashboard.pick_list(session, collection, dataset, q=q),
        }
        phrases = search_words(2 * repeat + 5)
        # First as many other searches, timed apart: what the first people to search after the
        # server's start wait, while the index and the rows come into its cache.
        first: dict[str, list[float]] = {label: [] for label in searches}
        for words in phrases[repeat + 5 :]:
            for label, search in searches.items():
                first[label].append(_timed(lambda s=search, w=words: s(w), session))
        for label, values in first.items():
            print(f"  {label:20} the first {len(values)} searches after the server's start: "
                  f"p50 {statistics.median(values):.1f}, p95 {percentile(values, 95):.1f} ms")  # fmt: skip
        for i, words in enumerate(phrases[: repeat + 5]):
            for label, search in searches.items():
                elapsed = _timed(lambda s=search, w=words: s(w), session)
                if i >= 5:
                    times[label].append(elapsed)
    engine.dispose()
    return times


def _timed(work: Any, session: Any) -> float:
    """Milliseconds that `work()` took; the session rolled back after it."""
    started = time.perf_counter()
    work()
    elapsed = (time.perf_counter() - started) * 1000
    session.rollback()
    return elapsed


def report_search(
    neighbours: tuple[list[float], float, float] | None, searches: dict[str, list[float]]
) -> bool:
    """Print the neighbour and text-search figures against their targets; True when met."""
    met = True
    if neighbours is not None:
        samples, recall, exact_ms = neighbours
        p95 = percentile(samples, 95)
        met = p95 < FAST_P95_MS and recall >= RECALL_TARGET
        print(
            f"\nNearest neighbours (10, HNSW, ef_search from app.platform.vectors.index), "
            f"{len(samples)} random examples: p50 {statistics.median(samples):.1f} ms, p95 "
            f"{p95:.1f} ms (< {FAST_P95_MS:.0f}), recall@10 {recall:.3f} (>= {RECALL_TARGET}) "
            f"against exact search (numpy over every vector: {exact_ms:.0f} ms a query): "
            f"{'ok' if met else 'MISSED'}"
        )
    if not searches:
        return met
    print("Text search (full-text index), typed words with the last one cut short (ms):")
    for label, values in searches.items():
        p95 = percentile(values, 95)
        ok = p95 < FAST_P95_MS
        met &= ok
        print(
            f"  {label:20} {len(values):4} searches  p50 {statistics.median(values):7.1f}  "
            f"p95 {p95:7.1f}  < {FAST_P95_MS:.0f}: {'ok' if ok else 'MISSED'}"
        )
    return met


def search_only(args: argparse.Namespace) -> bool:
    """The neighbours (at each --ef-search, or Sift's own) and the text searches alone."""
    values = tuple(int(v) for v in args.ef_search.split(",")) if args.ef_search else (None,)
    met = True
    for ef_search, found in zip(
        values, neighbour_search(args.url, args.neighbour_queries, values), strict=True
    ):
        print(f"\nhnsw.ef_search {ef_search or 'of Sift'}:", end="")
        met &= report_search(found, {})
    met &= report_search(None, text_searches(args.url, args.search_repeat))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return met


def bulk_bench(args: argparse.Namespace) -> bool:
    """`--only bulk`: the pool (kept with --reuse), then bench/ui_bulk.py's measurements."""
    from bench.ui_bulk import bulk_only

    os.environ["SIFT_DATABASE_URL"] = args.url
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    if args.reuse and pool_size(args.url) == args.n:
        print(f"Reusing the pool of {args.n:,} examples in {args.url}")
        migrate(args.url)
        reset_reviews(args.url)
    else:
        print(f"Building a pool of {args.n:,} examples (no vectors) in {args.url}")
        build_pool(args.url, args.n, vectors=False)
    met = bulk_only(args.url, args.n, min(args.repeat, 50))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples in the pool")
    parser.add_argument("--repeat", type=int, default=200, help="timed requests per review page")
    parser.add_argument("--dashboard-repeat", type=int, default=50, help="per dashboard page")
    parser.add_argument("--cold-repeat", type=int, default=20, help="first loads after a change")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reuse", action="store_true", help="keep a pool of --n examples")
    parser.add_argument("--neighbour-queries", type=int, default=200)
    parser.add_argument("--search-repeat", type=int, default=100, help="text searches per filter")
    parser.add_argument("--only-search", action="store_true", help="neighbours and text search")
    parser.add_argument("--ef-search", help="comma-separated hnsw.ef_search values to compare")
    parser.add_argument("--url", help="a PostgreSQL URL with pgvector (default: the embedded one)")
    parser.add_argument(
        "--only", choices=("bulk",), help="bulk: a bulk action on 100,000 and sorted tables alone"
    )
    args = parser.parse_args()
    if args.only == "bulk":  # a pool without vectors, in a database of its own
        args.url = args.url or bench_url(f"{DATABASE}_bulk", "SIFT_BENCH_UI_POSTGRES_URL")
        sys.exit(0 if bulk_bench(args) else 1)
    args.url = args.url or bench_url(DATABASE, "SIFT_BENCH_UI_POSTGRES_URL")

    os.environ["SIFT_DATABASE_URL"] = args.url  # before the app reads its settings
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    if args.reuse and pool_size(args.url) == args.n:
        print(f"Reusing the pool of {args.n:,} examples in {args.url}")
        migrate(args.url)
        reset_reviews(args.url)
    else:
        print(f"Building a pool of {args.n:,} examples in {args.url}")
        build_pool(args.url, args.n)
    names = make_users(args.url, args.annotators)
    seed_reviews(args.url)
    if args.only_search:
        sys.exit(0 if search_only(args) else 1)
    port = free_port()
    server = start_server(args.url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        results = asyncio.run(latencies(base, args.url, args))
        met = report(results, args.n)
        reads = queue_reads_ms(args.url, args.repeat)
        page = next(s for p, s in results if p.label == "review queue page")
        print(
            f"\nReference: the queue page's own reads, without HTTP or a template: p50 {reads:.1f} "
            f"ms; the page takes {statistics.median(page) / reads:.2f}x that"
        )
        met &= report_search(
            neighbour_search(args.url, args.neighbour_queries)[0],
            text_searches(args.url, args.search_repeat),
        )
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
    lost = [problem for problem in problems if problem not in tally.errors]
    print("  lost updates: none" if not lost else "  LOST UPDATES:\n    " + "\n    ".join(lost))
    if tally.errors:  # an annotator stops at the first answer it did not expect
        print("  ANSWERS NOT EXPECTED:\n    " + "\n    ".join(tally.errors))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    sys.exit(0 if met and not problems else 1)


if __name__ == "__main__":
    main()
