"""Stored vectors: one L2-normalised float32 vector per (content hash, model) in the
`embeddings` table (a pgvector `vector`), written once and read back in bulk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Embedding
from app.platform.db import conflict_insert
from app.platform.sampling import one_of


def store_embeddings(
    session: Session, hashes: Sequence[str], model: str, vectors: np.ndarray
) -> None:
    """Insert vectors by (content hash, model); one already there is kept (same content)."""
    if not len(hashes):
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = [
        {"content_hash": h, "model": model, "dim": int(vectors.shape[1]), "vector": v}
        for h, v in zip(hashes, vectors, strict=True)
    ]
    session.execute(
        conflict_insert(Embedding).on_conflict_do_nothing(index_elements=["content_hash", "model"]),
        rows,
    )


def unpack_vectors(sent: Sequence[bytes]) -> np.ndarray:
    """A float32 matrix from `vector_send` values of one dimension: each is a 2-byte dimension,
    2 unused bytes and big-endian float32s, so the header is one float-sized slot to drop."""
    if not sent:
        return np.zeros((0, 0), dtype=np.float32)
    width = len(sent[0]) // 4
    matrix = np.frombuffer(b"".join(sent), dtype=">f4").reshape(len(sent), width)
    return matrix[:, 1:].astype(np.float32)


def load_embeddings(
    session: Session, content_hashes: Sequence[str], model: str
) -> dict[str, np.ndarray]:
    """content hash -> float32 unit vector, for the hashes that have one from `model`."""
    found: dict[str, np.ndarray] = {}
    hashes = list(dict.fromkeys(content_hashes))
    # Binary (vector_send), not pgvector's text form: parsing 20 million floats from text
    # takes seconds. Bounded arrays: one parameter each, a few thousand lookups.
    for start in range(0, len(hashes), 5000):
        rows = session.execute(
            select(Embedding.content_hash, func.vector_send(Embedding.vector)).where(
                Embedding.model == model,
                one_of(session, Embedding.content_hash, hashes[start : start + 5000]),
            )
        ).all()
        matrix = unpack_vectors([r[1] for r in rows])
        found.update(zip((r[0] for r in rows), matrix, strict=True))
    return found


def stored_dim(session: Session, model: str) -> int | None:
    """The dimension of the model's stored vectors; None when it has none."""
    return session.scalar(select(Embedding.dim).where(Embedding.model == model).limit(1))
