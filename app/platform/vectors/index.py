"""The HNSW index of one model's vectors, and the SQL that it serves: a partial index per
model over `vector::halfvec(dim)`, cosine distances in the same form, and the search settings."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import sqlalchemy as sa
from pgvector.sqlalchemy import HALFVEC, VECTOR
from sqlalchemy import ColumnElement, Float, and_, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from app.models import Embedding

# pgvector's HNSW indexes halfvec up to 4,000 dimensions; a larger model is searched exactly.
INDEXED_MAX_DIM = 4000
# Candidates each HNSW search keeps (pgvector's default is 40). On bench/ui.py's 1,000,000 real
# MiniLM vectors (m 16, ef_construction 64) 40, 100, 200, 400 gave recall@10 0.90, 0.95, 0.97,
# 0.99 at p95 24, 16, 27, 62 ms on 2 loaded cores: 200 is the least with margin on both.
EF_SEARCH = 200
log = logging.getLogger(__name__)


def vector_index_name(model: str) -> str:
    """The name of the HNSW index of one model's vectors (migration 0009 names the MiniLM one
    the same way)."""
    return f"ix_embeddings_hnsw_{hashlib.md5(model.encode('utf-8')).hexdigest()[:16]}"


def indexed(dim: int) -> bool:
    """Whether vectors of this dimension can have an HNSW index (halfvec's limit)."""
    return 0 < dim <= INDEXED_MAX_DIM


def ensure_vector_index(session: Session, model: str, dim: int) -> bool:
    """Create the model's HNSW index when missing; True when it exists afterwards.

    One partial index per model, not one index for all: models differ in dimension (an index
    needs one), and a filter on the model inside a shared graph would throw most candidates
    away and lose recall. Made before the model's first vectors are written, so it costs one
    pass over the table; a lock that does not come in time leaves it for the next job
    (searches stay right without it, only slower)."""
    if not indexed(dim):
        return False
    name = vector_index_name(model)
    if session.scalar(select(func.to_regclass(name))) is not None:
        return True
    literal: BindParameter[str] = bindparam("model", model, literal_execute=True)
    statement = text(
        f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
        f"((vector::halfvec({int(dim)})) halfvec_cosine_ops) "
        f"WHERE model = :model AND dim = {int(dim)}"
    ).bindparams(literal)
    try:
        with session.begin_nested():
            session.execute(statement)
    except DBAPIError as exc:
        log.warning("the HNSW index of %s was not created: %s", model, exc.orig)
        return False
    return True


def search_in_index(session: Session, ef_search: int = EF_SEARCH) -> None:
    """Settings for the HNSW searches of this transaction: a wider candidate list for recall,
    and iterative scans so that a filter (one dataset, a queue) still fills the answer."""
    session.execute(
        select(
            func.set_config("hnsw.ef_search", str(int(ef_search)), True),
            func.set_config("hnsw.iterative_scan", "relaxed_order", True),
        )
    )


def _vector_sql(vector: Any) -> Any:
    """An array as a bound `vector`; a SQL expression (another row's vector) as it is."""
    if isinstance(vector, np.ndarray):
        return sa.literal(np.asarray(vector, dtype=np.float32), VECTOR())
    return vector


def cosine_distance(model: str, dim: int, vector: Any) -> ColumnElement[float]:
    """Cosine distance of the model's stored vectors to `vector` (an array or another row's
    vector), in the form its HNSW index serves (halfvec), or exact where the dimension has no
    index."""
    value = _vector_sql(vector)
    if not indexed(dim):
        return Embedding.vector.op("<=>", return_type=Float)(value)
    return sa.cast(Embedding.vector, HALFVEC(dim)).op("<=>", return_type=Float)(
        sa.cast(value, HALFVEC(dim))
    )


def cosine_similarity(vector: Any) -> ColumnElement[float]:
    """The exact (float32) cosine similarity of the stored vector to `vector`."""
    return 1 - Embedding.vector.op("<=>", return_type=Float)(_vector_sql(vector))


def of_model(model: str, dim: int) -> ColumnElement[bool]:
    """The model's vectors, in the words of its partial index's predicate (the dimension too:
    a cast to halfvec(dim) fails on any other), inline so that the planner can prove the
    predicate even for a prepared statement."""
    return and_(
        Embedding.model == bindparam("embedding_model", model, literal_execute=True),
        Embedding.dim == bindparam("embedding_dim", dim, literal_execute=True),
    )
