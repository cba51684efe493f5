"""Near-duplicate clusters of a dataset: exact, MinHash LSH on word shingles, embedding cosine.

A dedup job replaces the dataset's clusters of its method in one transaction, so running it
twice leaves the same clusters. Each cluster keeps a representative: the member with the best
value of a preferred scorer, else the lowest example id. "One per cluster" keeps the
representatives and the examples in no cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import ColumnElement, delete, exists, insert, select
from sqlalchemy.orm import Session

from app.models import (
    Dataset,
    DuplicateCluster,
    DuplicateMember,
    DuplicateMethod,
    Example,
    Job,
    Score,
    ScoreState,
    User,
)
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import create_job
from app.platform.vectors.index import indexed, search_in_index
from app.platform.vectors.models import DEFAULT_MODEL, resolve_model
from app.platform.vectors.store import load_embeddings, stored_dim
from app.scoring.service import ExampleText
from app.selection.clustering import (
    EMBEDDING_THRESHOLD,
    METHODS,
    MINHASH_THRESHOLD,
    NUM_PERM,
    SHINGLE_WORDS,
    UnionFind,
    embedding_clusters,
    find_clusters,
)
from app.selection.embed_job import embedding_text, missing_embeddings

DEDUP_KIND = "dedup"
# Embedding dedup asks the HNSW index for each example's nearest this many (more when they all
# pass: a big cluster, up to MAX_NEIGHBOURS), for PAIR_BATCH examples per statement.
NEIGHBOURS = 16
MAX_NEIGHBOURS = 1024
PAIR_BATCH = 500


# ---------------------------------------------------------------- starting a job


def _check(method: str, threshold: float | None) -> None:
    if method not in METHODS:
        raise InvalidInput(f"method: {method!r} is not one of {', '.join(METHODS)}", field="method")
    if threshold is not None:
        if method == DuplicateMethod.EXACT:
            raise InvalidInput("threshold: exact duplicates take no threshold", field="threshold")
        if not 0 < threshold <= 1:
            raise InvalidInput("threshold: must be in (0, 1]", field="threshold")


def start_dedup_job(
    session: Session,
    dataset: Dataset,
    method: str,
    *,
    threshold: float | None = None,
    model: str | None = None,
    prefer: str | None = None,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a job that replaces the dataset's near-duplicate clusters of `method`."""
    _check(method, threshold)
    params: dict[str, Any] = {"method": method}
    if method == DuplicateMethod.MINHASH:
        params |= {
            "threshold": threshold if threshold is not None else MINHASH_THRESHOLD,
            "shingle_words": SHINGLE_WORDS,
            "num_perm": NUM_PERM,
        }
    elif method == DuplicateMethod.EMBEDDING:
        name, _, _ = resolve_model(model)
        missing = missing_embeddings(session, dataset.id, name)
        if missing:
            raise InvalidInput(
                f"model: {missing} examples of {dataset.name} have no {name} embedding; "
                f"run `sift embed --dataset {dataset.name}"
                f"{'' if name == DEFAULT_MODEL else f' --model {name}'}` first",
                field="model",
            )
        params |= {
            "threshold": threshold if threshold is not None else EMBEDDING_THRESHOLD,
            "model": name,
        }
    elif model is not None:
        raise InvalidInput(f"model: {method} duplicates use no model", field="model")
    if prefer:
        from app.scoring.service import find_scorer

        params["prefer"] = find_scorer(session, prefer).id
    return create_job(
        session,
        DEDUP_KIND,
        params,
        queue="cpu",
        user=user,
        dataset_id=dataset.id,
        idempotency_key=idempotency_key,
    )


# ---------------------------------------------------------------- the job's work


@dataclass
class _Pool:
    ids: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def _pool(session: Session, dataset_id: int, *, with_text: bool) -> _Pool:
    columns: list[Any] = [Example.id, Example.content_hash]
    if with_text:
        columns += [Example.messages, Example.instruction, Example.input, Example.output]
    query = select(*columns).where(Example.dataset_id == dataset_id).order_by(Example.id)
    pool = _Pool()
    for row in session.execute(query.execution_options(yield_per=2000)):
        pool.ids.append(row[0])
        pool.hashes.append(row[1])
        if with_text:
            pool.texts.append(embedding_text(ExampleText.of(row[2], row[3], row[4], row[5])))
    return pool


def _preferred_values(session: Session, scorer_id: int, hashes: Iterable[str]) -> dict[str, float]:
    wanted = list(dict.fromkeys(hashes))
    values: dict[str, float] = {}
    for start in range(0, len(wanted), 5000):
        rows = session.execute(
            select(Score.content_hash, Score.value).where(
                Score.scorer_id == scorer_id,
                Score.state == ScoreState.OK.value,
                Score.value.is_not(None),
                Score.content_hash.in_(wanted[start : start + 5000]),
            )
        )
        values.update((h, float(v)) for h, v in rows if v is not None)
    return values


def _embedding_clusters(
    session: Session, dataset_id: int, pool: _Pool, params: dict[str, Any]
) -> list[list[int]]:
    """Clusters (indices into the pool) by cosine: candidate pairs from the model's HNSW index,
    so nothing holds the pool's vectors; a model too wide for an index is compared in memory."""
    model, threshold = params["model"], params.get("threshold", EMBEDDING_THRESHOLD)
    missing = missing_embeddings(session, dataset_id, model)
    if missing:
        raise InvalidInput(
            f"{missing} examples have no {model} embedding; run `sift embed` first", field="model"
        )
    dim = stored_dim(session, model)
    if dim is None or not pool.ids:  # nothing embedded means an empty dataset (none missing)
        return []
    if not indexed(dim):
        found = load_embeddings(session, pool.hashes, model)
        return embedding_clusters(np.stack([found[h] for h in pool.hashes]), threshold)
    position = {example_id: i for i, example_id in enumerate(pool.ids)}
    joined = UnionFind(len(pool.ids))
    for a, b in similar_pairs(session, dataset_id, model, dim, threshold):
        joined.union(position[a], position[b])
    return joined.groups()


def similar_pairs(
    session: Session, dataset_id: int, model: str, dim: int, threshold: float
) -> Iterator[tuple[int, int]]:
    """(example id, example id) of the dataset's pairs with cosine above `threshold`: each
    example's NEIGHBOURS nearest from the HNSW index, more for one whose nearest all pass (a
    big cluster); the cosine compared is the exact one, not the index's half precision."""
    search_in_index(session)
    pairs, one = _near_sql(model, dim)
    after = 0
    while True:
        rows = session.execute(
            pairs, {"dataset": dataset_id, "after": after, "batch": PAIR_BATCH,
                    "k": NEIGHBOURS, "threshold": threshold},
        ).all()  # fmt: skip
        if not rows:
            return
        hits: dict[int, int] = {}
        for source, other in rows:
            hits[source] = hits.get(source, 0) + (other is not None)
            if other is not None:
                yield source, other
        after = rows[-1][0]
        for source in (s for s, n in hits.items() if n >= NEIGHBOURS):
            k = NEIGHBOURS * 4
            while True:  # a cluster bigger than the search: widen it until it is not full
                found = session.scalars(
                    one, {"dataset": dataset_id, "source": source, "k": k, "threshold": threshold}
                ).all()
                if len(found) < k or k >= MAX_NEIGHBOURS:
                    yield from ((source, other) for other in found)
                    break
                k *= 4


def _near_sql(model: str, dim: int) -> tuple[sa.TextClause, sa.TextClause]:
    """The two searches of `similar_pairs`: a batch of examples by id, each with its nearest
    above the threshold (none: one row with a null); one example's nearest. The model and the
    dimension are inline: the partial index's predicate and the halfvec cast need constants."""
    nearest = f"""
        SELECT y.id, 1 - (f.vector <=> s.vector) AS similarity
        FROM embeddings f JOIN examples y ON y.content_hash = f.content_hash
        WHERE f.model = :model AND f.dim = {int(dim)} AND y.dataset_id = :dataset
          AND y.id <> s.id
        ORDER BY f.vector::halfvec({int(dim)}) <=> s.vector::halfvec({int(dim)})
        LIMIT :k"""
    sources = f"""
        SELECT x.id, e.vector FROM examples x
        JOIN embeddings e ON e.content_hash = x.content_hash
        WHERE x.dataset_id = :dataset AND e.model = :model AND e.dim = {int(dim)}"""
    pairs = f"""
        SELECT s.id, n.id FROM ({sources} AND x.id > :after ORDER BY x.id LIMIT :batch) s
        LEFT JOIN LATERAL ({nearest}) n ON n.similarity > :threshold
        ORDER BY s.id"""
    one = f"""
        SELECT n.id FROM ({sources} AND x.id = :source) s
        CROSS JOIN LATERAL ({nearest}) n WHERE n.similarity > :threshold"""
    name: sa.BindParameter[str] = sa.bindparam("model", model, literal_execute=True)
    return sa.text(pairs).bindparams(name), sa.text(one).bindparams(name)


def representative(members: Sequence[int], values: dict[int, float]) -> int:
    """The member with the highest preferred value, else (and among ties) the lowest id."""
    return min(members, key=lambda i: (-values.get(i, float("-inf")), i))


def run_dedup(session: Session, job: Job) -> dict[str, Any]:
    """Find the clusters of the job's method and replace the dataset's stored ones."""
    assert job.dataset_id is not None
    params = job.params
    method = params["method"]
    pool = _pool(session, job.dataset_id, with_text=method != DuplicateMethod.EMBEDDING)
    if method == DuplicateMethod.EMBEDDING:
        clusters = _embedding_clusters(session, job.dataset_id, pool, params)
    elif pool.ids:
        clusters = find_clusters(method, pool.texts, None, params.get("threshold"))
    else:
        clusters = []
    values: dict[int, float] = {}
    if params.get("prefer"):
        by_hash = _preferred_values(
            session, params["prefer"], (pool.hashes[i] for c in clusters for i in c)
        )
        values = {pool.ids[i]: by_hash[h] for i, h in enumerate(pool.hashes) if h in by_hash}
    replace_clusters(
        session,
        job.dataset_id,
        method,
        {k: v for k, v in params.items() if k != "method"},
        [[pool.ids[i] for i in cluster] for cluster in clusters],
        values,
    )
    return {
        "examples": len(pool.ids),
        "clusters": len(clusters),
        "duplicates": sum(len(c) - 1 for c in clusters),
    }


def replace_clusters(
    session: Session,
    dataset_id: int,
    method: str,
    params: dict[str, Any],
    clusters: Sequence[Sequence[int]],
    values: dict[int, float] | None = None,
) -> None:
    """Delete the dataset's clusters of `method` and store these (lists of example ids)."""
    old = select(DuplicateCluster.id).where(
        DuplicateCluster.dataset_id == dataset_id, DuplicateCluster.method == method
    )
    session.execute(delete(DuplicateMember).where(DuplicateMember.cluster_id.in_(old)))
    session.execute(
        delete(DuplicateCluster).where(
            DuplicateCluster.dataset_id == dataset_id, DuplicateCluster.method == method
        )
    )
    rows = [
        DuplicateCluster(
            dataset_id=dataset_id,
            method=method,
            params=params,
            representative_id=representative(members, values or {}),
            size=len(members),
        )
        for members in clusters
    ]
    session.add_all(rows)
    session.flush()
    members = [
        {"cluster_id": row.id, "example_id": example_id}
        for row, ids in zip(rows, clusters, strict=True)
        for example_id in ids
    ]
    if members:
        session.execute(insert(DuplicateMember), members)


# ---------------------------------------------------------------- reading clusters


def representative_only(session: Session, dataset_id: int, method: str) -> ColumnElement[bool]:
    """A WHERE clause on Example for "one per cluster": drops members that do not represent
    their cluster of `method`; examples in no cluster stay."""
    _check(method, None)
    return ~exists().where(
        DuplicateMember.example_id == Example.id,
        DuplicateMember.cluster_id == DuplicateCluster.id,
        DuplicateCluster.dataset_id == dataset_id,
        DuplicateCluster.method == method,
        DuplicateCluster.representative_id != Example.id,
    )


@dataclass(frozen=True)
class ClusterView:
    """A stored cluster with its members' example ids (lowest first)."""

    id: int
    method: str
    size: int
    representative_id: int
    params: dict[str, Any]
    member_ids: list[int]


def list_clusters(
    session: Session,
    dataset: Dataset,
    method: str | None = None,
    limit: int = 50,
    after: int | None = None,
) -> list[ClusterView]:
    """The dataset's clusters (of one method, or all) in id order, after cluster id `after`."""
    query = select(DuplicateCluster).where(DuplicateCluster.dataset_id == dataset.id)
    if method is not None:
        _check(method, None)
        query = query.where(DuplicateCluster.method == method)
    if after is not None:
        query = query.where(DuplicateCluster.id > after)
    clusters = list(session.scalars(query.order_by(DuplicateCluster.id).limit(limit)))
    members: dict[int, list[int]] = {c.id: [] for c in clusters}
    if clusters:
        rows = session.execute(
            select(DuplicateMember.cluster_id, DuplicateMember.example_id)
            .where(DuplicateMember.cluster_id.in_(list(members)))
            .order_by(DuplicateMember.example_id)
        )
        for cluster_id, example_id in rows:
            members[cluster_id].append(example_id)
    return [
        ClusterView(c.id, c.method, c.size, c.representative_id, c.params, members[c.id])
        for c in clusters
    ]
