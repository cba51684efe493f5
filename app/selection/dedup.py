"""Near-duplicate clusters of a dataset: exact, MinHash LSH on word shingles, embedding cosine.

A dedup job replaces the dataset's clusters of its method in one transaction, so running it
twice leaves the same clusters. Each cluster keeps a representative: the member with the best
value of a preferred scorer, else the lowest example id. "One per cluster" keeps the
representatives and the examples in no cluster.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, delete, exists, insert, select
from sqlalchemy.orm import Session

from app.core.errors import InvalidInput
from app.jobs.service import create_job
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
from app.scoring.recipes import ExampleText
from app.selection.embeddings import (
    DEFAULT_MODEL,
    embedding_text,
    load_embeddings,
    missing_embeddings,
    resolve_model,
)

DEDUP_KIND = "dedup"
METHODS = tuple(m.value for m in DuplicateMethod)
# Defaults: Jaccard 0.8 over 5-word shingles (a light edit of a long answer stays a
# duplicate, a shared template with different content does not); cosine 0.95 for embeddings.
MINHASH_THRESHOLD = 0.8
SHINGLE_WORDS = 5
NUM_PERM = 128
EMBEDDING_THRESHOLD = 0.95
BLOCK_CELLS = 8_000_000  # similarity cells per block product: 32 MB of float32
_SPACE = re.compile(r"\s+")


# ---------------------------------------------------------------- the pure part


def normalise_text(text: str) -> str:
    """Case-folded, with every run of whitespace one space: what exact and MinHash compare."""
    return _SPACE.sub(" ", text.casefold()).strip()


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """The word shingles of a normalised text; a shorter text is one shingle."""
    words = text.split(" ")
    if len(words) <= size:
        return {text.encode("utf-8")}
    return {" ".join(words[i : i + size]).encode("utf-8") for i in range(len(words) - size + 1)}


class UnionFind:
    """Disjoint sets over 0..n-1."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The root of i's set."""
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression keeps later finds short
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        """Join the sets of a and b."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        """The sets of two or more, each sorted, ordered by their smallest member."""
        by_root: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            by_root.setdefault(self.find(i), []).append(i)
        return sorted((g for g in by_root.values() if len(g) > 1), key=lambda g: g[0])


def exact_clusters(texts: Sequence[str]) -> list[list[int]]:
    """Indices of texts equal after case-folding and collapsing whitespace."""
    by_digest: dict[bytes, list[int]] = {}
    for i, text in enumerate(texts):
        digest = hashlib.blake2b(normalise_text(text).encode("utf-8"), digest_size=16).digest()
        by_digest.setdefault(digest, []).append(i)
    return sorted((g for g in by_digest.values() if len(g) > 1), key=lambda g: g[0])


def minhash_clusters(
    texts: Sequence[str],
    threshold: float = MINHASH_THRESHOLD,
    shingle_words: int = SHINGLE_WORDS,
    num_perm: int = NUM_PERM,
) -> list[list[int]]:
    """Indices of texts whose estimated Jaccard similarity (word shingles) is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    sketches = MinHash.bulk(
        (shingles(normalise_text(t), shingle_words) for t in texts), num_perm=num_perm, seed=1
    )
    # Above 0.9 datasketch finds too few bands; a lower LSH threshold only adds candidates,
    # and every candidate is checked against the real threshold below.
    lsh = MinHashLSH(threshold=min(threshold, 0.9), num_perm=num_perm)
    with lsh.insertion_session() as inserting:
        for i, sketch in enumerate(sketches):
            inserting.insert(i, sketch, check_duplication=False)
    found = UnionFind(len(texts))
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            # LSH candidates are only likely pairs: keep those whose estimate passes.
            if j > i and sketch.jaccard(sketches[j]) >= threshold:
                found.union(i, j)
    return found.groups()


def cosine_pairs(vectors: np.ndarray, threshold: float) -> Iterator[tuple[int, int]]:
    """Pairs i < j of unit vectors with cosine > threshold, one block of rows at a time."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    rows = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, rows):
        block = vectors[start : start + rows]
        # Only columns from `start` on: the pairs with earlier rows were seen already.
        similar = block @ vectors[start:].T
        for a, b in zip(*np.nonzero(similar > threshold), strict=True):
            i, j = start + int(a), start + int(b)
            if i < j:
                yield i, j


def embedding_clusters(
    vectors: np.ndarray, threshold: float = EMBEDDING_THRESHOLD
) -> list[list[int]]:
    """Indices of unit vectors joined by chains of cosine similarity above the threshold."""
    found = UnionFind(len(vectors))
    for i, j in cosine_pairs(vectors, threshold):
        found.union(i, j)
    return found.groups()


def find_clusters(
    method: str,
    texts: Sequence[str] = (),
    vectors: np.ndarray | None = None,
    threshold: float | None = None,
) -> list[list[int]]:
    """Clusters (lists of indices into texts or vectors) by one method."""
    if method == DuplicateMethod.EXACT:
        return exact_clusters(texts)
    if method == DuplicateMethod.MINHASH:
        return minhash_clusters(texts, threshold if threshold is not None else MINHASH_THRESHOLD)
    if method == DuplicateMethod.EMBEDDING:
        if vectors is None:
            raise InvalidInput("embedding clusters need vectors", field="method")
        limit = threshold if threshold is not None else EMBEDDING_THRESHOLD
        return embedding_clusters(vectors, limit)
    raise InvalidInput(f"method: {method!r} is not one of {', '.join(METHODS)}", field="method")


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
    send: bool = True,
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
        send=send,
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


def representative(members: Sequence[int], values: dict[int, float]) -> int:
    """The member with the highest preferred value, else (and among ties) the lowest id."""
    return min(members, key=lambda i: (-values.get(i, float("-inf")), i))


def run_dedup(session: Session, job: Job) -> dict[str, Any]:
    """Find the clusters of the job's method and replace the dataset's stored ones."""
    assert job.dataset_id is not None
    params = job.params
    method = params["method"]
    pool = _pool(session, job.dataset_id, with_text=method != DuplicateMethod.EMBEDDING)
    vectors = None
    if method == DuplicateMethod.EMBEDDING:
        found = load_embeddings(session, pool.hashes, params["model"])
        if len(found) < len(set(pool.hashes)):
            raise InvalidInput(
                f"{len(set(pool.hashes)) - len(found)} examples have no {params['model']} "
                "embedding; run `sift embed` first",
                field="model",
            )
        vectors = np.stack([found[h] for h in pool.hashes]) if pool.hashes else None
    clusters = (
        find_clusters(method, pool.texts, vectors, params.get("threshold")) if pool.ids else []
    )
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
