"""bench/signals.py's index part: facility location's sparse similarity found by pgvector's HNSW
index (what `sift select --method facility-location` uses above 5,000 candidates) against the
exact nearest-neighbour search in memory, and the objective each loses against the exact
similarity on a pool where that runs too.

The vectors (the same pool as the facility part) are stored in a bench database as the bundled
model's embeddings of a dataset of N examples, and of a second dataset holding the first
`SMALL` of the same contents (the same embeddings: its searches must pass over the others, as
a pool of one dataset among many does). The HNSW index is built once after the load.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from app.selection import diversity
from bench.common import bench_url, copy_embeddings, plain_url, prepare_postgres

SMALL = 5_000
EXAMPLES = """
INSERT INTO examples (dataset_id, messages, instruction, input, output, source, meta,
                      content_hash, source_format, source_keys, origin, status, version)
SELECT %(dataset)s, '[]'::jsonb, 'Example ' || i, '', 'Answer ' || i, 'bench', '{}'::jsonb,
       md5('knn ' || i), 'alpaca', '[]'::jsonb, 'import', 'candidate', 1
FROM generate_series(0, %(n)s - 1) AS i
"""


def clustered_pool(n: int, dim: int = 384, clusters: int = 500, seed: int = 0) -> np.ndarray:
    """Unit vectors around `clusters` random centres (noise 0.9 of a centre's scale): a pool
    with structure like real embeddings', made in seconds where MiniLM is not at hand."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(clusters, size=n)]
    x += 0.9 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _load(url: str, pool: np.ndarray) -> dict[str, list[str]]:
    """The two datasets and the embeddings; each dataset's content hashes in pool order."""
    import psycopg
    from pgvector.psycopg import register_vector

    from app.platform.vectors.models import DEFAULT_MODEL

    prepare_postgres(url)
    hashes: dict[str, list[str]] = {}
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        register_vector(conn)
        index = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_embeddings_hnsw%'"
        ).fetchall()
        for name, _ in index:
            conn.execute(f'DROP INDEX "{name}"')  # built once after the load: much faster
        for name, n in (("knn-all", len(pool)), ("knn-small", SMALL)):
            dataset = conn.execute(
                "INSERT INTO datasets (name, description) VALUES (%s, '') RETURNING id", (name,)
            ).fetchone()
            assert dataset is not None
            conn.execute(EXAMPLES, {"dataset": dataset[0], "n": n})
        everything = [
            row[0] for row in conn.execute("SELECT md5('knn ' || i) FROM generate_series(0, %s) i",
                                           (len(pool) - 1,))
        ]  # fmt: skip
        hashes = {"knn-all": everything, "knn-small": everything[:SMALL]}
        dim = pool.shape[1]
        rows = zip(everything, pool, strict=True)
        copy_embeddings(conn, ((content_hash, DEFAULT_MODEL, dim, v) for content_hash, v in rows))
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in index:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE")
    return hashes


def _index_similarity(url: str, hashes: list[str], pool: np.ndarray) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from app.platform.vectors.models import DEFAULT_MODEL
    from app.selection.neighbours import index_neighbours

    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        near = index_neighbours(session, hashes, DEFAULT_MODEL, pool.shape[1], diversity.NEIGHBOURS)
    engine.dispose()
    return near


def _plan(url: str, hashes: list[str], dim: int) -> str:
    """Whether the planner serves the neighbour statement from the HNSW index, on this pool."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from app.platform.vectors.index import search_in_index, vector_index_name
    from app.platform.vectors.models import DEFAULT_MODEL
    from app.selection.neighbours import _statement, bulk_ef_search

    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        session.execute(text("CREATE TEMPORARY TABLE knn_plan (content_hash varchar(64) "
                             "PRIMARY KEY, pos integer NOT NULL) ON COMMIT DROP"))  # fmt: skip
        session.execute(
            text("INSERT INTO knn_plan SELECT * FROM unnest(CAST(:h AS varchar[]), "
                 "CAST(:p AS integer[]))"), {"h": hashes, "p": list(range(len(hashes)))},
        )  # fmt: skip
        session.execute(text("ANALYZE knn_plan"))
        search_in_index(session, bulk_ef_search(diversity.NEIGHBOURS))
        statement = _statement("knn_plan", DEFAULT_MODEL, dim, diversity.NEIGHBOURS)
        compiled = statement.bindparams(lo=0, hi=256).compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        plan = session.execute(text(f"EXPLAIN {compiled}")).scalars().all()
    engine.dispose()
    used = any(vector_index_name(DEFAULT_MODEL) in line for line in plan)
    return "the HNSW index" if used else "NOT the index: " + " / ".join(plan[:6])


def _recall(near: np.ndarray, exact: diversity.Similarity, sample: np.ndarray) -> float:
    """The share of each sampled point's exact k nearest that the index found."""
    covers: dict[int, set[int]] = {int(i): set() for i in sample}
    for column in range(exact.size):
        for row in exact.rows[exact.indptr[column] : exact.indptr[column + 1]]:
            if int(row) in covers:
                covers[int(row)].add(column)
    return float(np.mean([len(covers[int(i)] & set(near[i].tolist())) / len(covers[int(i)])
                          for i in sample]))  # fmt: skip


def index_bench(pool: np.ndarray, budget: int) -> None:
    """Print the build times, the index's recall and the objective of each kind of picks."""
    url = bench_url("sift_bench_signals")
    n, k = len(pool), diversity.NEIGHBOURS
    print(f"\n  sparse similarity from pgvector's HNSW index: {n:,} x {pool.shape[1]}, k = {k}")
    start = time.perf_counter()
    hashes = _load(url, pool)
    print(f"    load and index build (once)     {time.perf_counter() - start:8.1f} s")
    print(f"    the planner's choice            {_plan(url, hashes['knn-all'], pool.shape[1])}")
    start = time.perf_counter()
    near = _index_similarity(url, hashes["knn-all"], pool)
    index_s = time.perf_counter() - start
    from_index = diversity.from_neighbours(pool, near)
    start = time.perf_counter()
    exact_knn = diversity.similarity(pool, neighbours=k)
    memory_s = time.perf_counter() - start
    sample = np.random.default_rng(0).choice(n, size=min(n, 2000), replace=False)
    print(f"    neighbours by the HNSW index    {index_s:8.1f} s  "
          f"(recall@{k} {_recall(near, exact_knn, sample):.3f} on 2,000 points)")  # fmt: skip
    print(f"    exact search in memory          {memory_s:8.1f} s")
    picks_index = diversity.facility_location(from_index, budget).picks
    picks_memory = diversity.facility_location(exact_knn, budget).picks
    value_index = diversity.exact_coverage(pool, picks_index)
    value_memory = diversity.exact_coverage(pool, picks_memory)
    print(f"    exact objective, index kNN picks  {value_index:12.2f}  "
          f"({100 * (value_index / value_memory - 1):+.2f}% against the exact-kNN picks)")  # fmt: skip

    small = pool[:SMALL]
    small_budget = max(1, budget * SMALL // n)
    near_small = _index_similarity(url, hashes["knn-small"], small)
    exact = diversity.facility_location(diversity.similarity(small), small_budget).picks
    by_index = diversity.facility_location(
        diversity.from_neighbours(small, near_small), small_budget
    ).picks
    in_memory = diversity.facility_location(
        diversity.similarity(small, neighbours=k), small_budget
    ).picks
    best = diversity.exact_coverage(small, exact)
    print(f"\n  against the exact similarity: {SMALL:,} x {pool.shape[1]} to {small_budget:,} "
          f"(a dataset of {SMALL:,} among the {n:,} vectors)")  # fmt: skip
    print(f"    exact picks                     {best:12.2f}")
    for name, picks in (("HNSW-index kNN picks", by_index), ("exact kNN picks", in_memory)):
        value = diversity.exact_coverage(small, picks)
        print(f"    {name:<31} {value:12.2f}  (loss {100 * (1 - value / best):.2f}%)")
