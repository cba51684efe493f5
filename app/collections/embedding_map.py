"""A 2-D map of the embeddings of a sample of the pool and of a collection's examples: the
first two principal components, so that a lead sees which regions the selection covers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from app.models import Collection, CollectionItem, Dataset, Embedding, Example
from app.platform.sampling import sample_pool
from app.platform.vectors.store import load_embeddings

EXACT_SVD_LIMIT = 512  # beyond this many dimensions, a randomised range finder first


def map_model(session: Session, collection: Collection) -> str | None:
    """The embedding model most of the collection's examples have vectors from, else the
    newest model used anywhere."""
    hashes = (
        select(Example.content_hash)
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(CollectionItem.collection_id == collection.id)
    )
    row = session.execute(
        select(Embedding.model, func.count().label("n"))
        .where(Embedding.content_hash.in_(hashes))
        .group_by(Embedding.model)
        .order_by(func.count().desc(), Embedding.model)
        .limit(1)
    ).first()
    if row is not None:
        return str(row[0])
    return session.scalar(select(Embedding.model).order_by(Embedding.id.desc()).limit(1))


def principal_components(matrix: np.ndarray, seed: int = 0) -> np.ndarray:
    """The rows of `matrix` projected on its first two principal components, with signs fixed
    so that the same data always gives the same picture."""
    centred = matrix.astype(np.float64) - matrix.mean(axis=0)
    if centred.shape[1] > EXACT_SVD_LIMIT:
        # A randomised range finder (Halko et al.) keeps a 4,096-dim map to a few small products.
        rng = np.random.default_rng(seed)
        basis = centred @ rng.standard_normal((centred.shape[1], 12))
        for _ in range(4):
            basis, _ = np.linalg.qr(centred @ (centred.T @ basis))
        _, _, vt = np.linalg.svd(basis.T @ centred, full_matrices=False)
    else:
        # The top two eigenvectors of the small d x d scatter matrix are the axes of the n x d
        # data's SVD, at a fraction of the cost (seconds for 3,000 x 384 on a busy machine; a
        # full SVD of the scatter matrix took 30 of the map's 120 ms on a million examples).
        d = centred.shape[1]
        _, vectors = scipy.linalg.eigh(centred.T @ centred, subset_by_index=[max(d - 2, 0), d - 1])
        vt = vectors[:, ::-1].T  # largest first
    axes = vt[:2]
    if axes.shape[0] < 2:
        axes = np.vstack([axes, np.zeros((2 - axes.shape[0], centred.shape[1]))])
    coords = centred @ axes.T
    for k in range(2):
        column = coords[:, k]
        if column.size and column[np.argmax(np.abs(column))] < 0:
            coords[:, k] = -column
    return coords


@dataclass(frozen=True)
class MapPoint:
    """An example on the map, in [0, 1]^2; `selected`: in the collection."""

    id: int
    x: float
    y: float
    selected: bool


@dataclass
class EmbeddingMap:
    """The map of one model's vectors (no points: fewer than three embedded examples)."""

    model: str
    points: list[MapPoint]
    pool_sampled: int
    selected_total: int
    missing: int  # examples drawn that have no vector from the model


def embedding_map(
    session: Session,
    collection: Collection,
    datasets: list[Dataset],
    *,
    sample: int = 2000,
    limit: int = 5000,
    seed: int = 0,
) -> EmbeddingMap | None:
    """Points in [0, 1]^2 for a pool sample and the collection's examples (`selected`), from
    one embedding model; None when nothing has been embedded."""
    model = map_model(session, collection)
    if model is None:
        return None
    rows = session.execute(
        select(Example.id, Example.content_hash)
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(CollectionItem.collection_id == collection.id)
        .order_by(CollectionItem.id)
        .limit(limit)
    )
    chosen = {example_id: content_hash for example_id, content_hash in rows}
    pool = {
        i: h for i, h in sample_pool(session, datasets, sample, seed).items() if i not in chosen
    }
    vectors = load_embeddings(session, [*pool.values(), *chosen.values()], model)
    points = [(i, h, False) for i, h in pool.items() if h in vectors]
    points += [(i, h, True) for i, h in chosen.items() if h in vectors]
    result = EmbeddingMap(
        model=model,
        points=[],
        pool_sampled=len(pool),
        selected_total=len(chosen),
        missing=len(pool) + len(chosen) - len(points),
    )
    if len(points) < 3:
        return result
    # BLAS threads fighting over the cores of a busy web server made this 3,000 x 384
    # projection take seconds instead of milliseconds.
    with threadpool_limits(limits=1, user_api="blas"):
        coords = principal_components(np.stack([vectors[h] for _, h, _ in points]), seed)
    low, span = coords.min(axis=0), np.ptp(coords, axis=0)
    span[span == 0] = 1.0
    scaled = (coords - low) / span
    result.points = [
        MapPoint(i, float(x), float(y), selected)
        for (i, _, selected), (x, y) in zip(points, scaled, strict=True)
    ]
    return result
