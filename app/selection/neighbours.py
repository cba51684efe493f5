"""Each candidate's nearest candidates, found by the embedding model's pgvector HNSW index: the
sparse k-nearest-neighbour similarity that facility location uses above its size limit, with
no n x n matrix built anywhere.

The candidates go into a temporary table (position, content hash; a dataset holds each content
once); one statement per batch of candidates asks, for each, its `k` nearest stored vectors
among the candidates (a LATERAL join ordered by the index's halfvec cosine distance, with the
iterative scans of `search_in_index`, so that vectors of other datasets do not crowd them out).
HNSW is approximate, and orders by half-precision distances: only the neighbour sets come from
the index; their similarities are computed here from the float32 vectors. A candidate always
counts itself among its neighbours.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from app.models import Example
from app.platform.sampling import one_of
from app.platform.vectors.index import indexed, search_in_index, vector_index_name
from app.selection import diversity
from app.selection.spec import SelectionSpec

BATCH = 256  # candidates per statement: a progress step, and a bounded answer
# How far a long step has gone: (done, total); a job's Progress, which may cancel the job.
OnProgress = Callable[[int, int], None]


def bulk_ef_search(k: int) -> int:
    """The HNSW candidate list of these searches: twice k, at least 64. On 20,000 clustered
    384-d vectors, 2,000 searches for 32 neighbours took 4.0, 5.6, 6.7 and 16.5 s at 40, 64,
    100 and 200 (recall@32 1.000 at each); one query per candidate makes it the cost, and a
    missed neighbour here costs less than in a search a person reads."""
    return max(64, 2 * k)


def has_index(session: Session, model: str, dim: int) -> bool:
    """Whether the model's vectors of this dimension have their HNSW index."""
    if not indexed(dim):
        return False
    return session.scalar(select(func.to_regclass(vector_index_name(model)))) is not None


def index_neighbours(
    session: Session,
    hashes: Sequence[str],
    model: str,
    dim: int,
    k: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(len(hashes), k) positions into `hashes`: each candidate's nearest candidates by the
    model's HNSW index, itself first, -1 where fewer were found."""
    n = len(hashes)
    found = np.full((n, max(k, 1)), -1, dtype=np.int64)
    if not n or k < 1:
        return found
    table = f"sift_knn_{secrets.token_hex(6)}"  # a name of our own: two pools in one transaction
    session.execute(
        text(
            f"CREATE TEMPORARY TABLE {table} (content_hash varchar(64) PRIMARY KEY, "
            "pos integer NOT NULL) ON COMMIT DROP"
        )
    )
    session.execute(
        text(
            f"INSERT INTO {table} SELECT * FROM "
            "unnest(CAST(:hashes AS varchar[]), CAST(:positions AS integer[]))"
        ),
        {"hashes": list(hashes), "positions": list(range(n))},
    )
    session.execute(text(f"ANALYZE {table}"))  # the planner's row count for the join
    search_in_index(session, bulk_ef_search(k))
    statement = _statement(table, model, dim, k)
    for lo in range(0, n, BATCH):
        rows = session.execute(statement, {"lo": lo, "hi": lo + BATCH}).all()
        _place(found, rows, lo, min(n, lo + BATCH))
        if progress is not None:
            progress(min(n, lo + BATCH))
    # Dropped now, not at commit: the transaction may go on. After an error, the rollback
    # takes it away.
    session.execute(text(f"DROP TABLE {table}"))
    return found


def _statement(table: str, model: str, dim: int, k: int) -> TextClause:
    """For the candidates at positions [lo, hi): (position, a neighbour's position) rows."""
    # The model and dimension inline, in the words of the partial index's predicate, and the
    # distance in the form of its expression: the planner can then use the index.
    dim, k = int(dim), int(k)
    return text(
        f"""
        SELECT q.pos, near.pos
        FROM {table} q
        JOIN embeddings qv
          ON qv.content_hash = q.content_hash AND qv.model = :model AND qv.dim = {dim}
        CROSS JOIN LATERAL (
            SELECT c.pos
            FROM embeddings v
            JOIN {table} c ON c.content_hash = v.content_hash
            WHERE v.model = :model AND v.dim = {dim}
            ORDER BY v.vector::halfvec({dim}) <=> qv.vector::halfvec({dim})
            LIMIT {k}
        ) near
        WHERE q.pos >= :lo AND q.pos < :hi
        """
    ).bindparams(bindparam("model", model, literal_execute=True))


def _place(found: np.ndarray, rows: Sequence[tuple[int, int]], lo: int, hi: int) -> None:
    """Each candidate's row of neighbours: itself first, then the index's, k at most."""
    k = found.shape[1]
    near: dict[int, list[int]] = {i: [i] for i in range(lo, hi)}
    for position, neighbour in rows:
        listed = near[int(position)]
        if int(neighbour) != position and len(listed) < k:
            listed.append(int(neighbour))
    for position, listed in near.items():
        found[position, : len(listed)] = listed


def facility_similarity(
    session: Session,
    spec: SelectionSpec,
    candidates: Sequence[int],
    matrix: np.ndarray,
    progress: OnProgress | None = None,
) -> diversity.Similarity:
    """Facility location's similarity over the candidates (example ids, rows of `matrix`):
    every one up to the size limit, else (or with the spec's `neighbours`) each candidate's
    nearest by the model's HNSW index, or by an exact search where it has none."""
    from app.platform.vectors.models import DEFAULT_MODEL

    k = spec.neighbours
    if k is None and len(candidates) > diversity.EXACT_LIMIT:
        k = diversity.NEIGHBOURS
    if k is None:
        return diversity.similarity(matrix)
    model, dim = spec.embedding_model or DEFAULT_MODEL, int(matrix.shape[1])
    if not has_index(session, model, dim):
        return diversity.similarity(matrix, neighbours=k)
    hashes = dict(
        session.execute(
            select(Example.id, Example.content_hash).where(
                one_of(session, Example.id, list(candidates))
            )
        ).all()
    )
    n = len(candidates)
    near = index_neighbours(
        session,
        [hashes[i] for i in candidates],
        model,
        dim,
        k,
        None if progress is None else lambda done: progress(done, n),
    )
    return diversity.from_neighbours(matrix, near, "pgvector's HNSW index (approximate)")
