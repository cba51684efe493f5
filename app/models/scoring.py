"""Scoring recipes, their scores, the LLM response cache and embeddings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum


class ScorerKind(StrEnum):
    HEURISTIC = "heuristic"
    LLM_RATING = "llm_rating"
    LOGPROB_SCORER = "logprob_scorer"
    LOCAL_LOGIT_SCORER = "local_logit_scorer"
    EMBEDDING = "embedding"
    NEAR_DUP = "near_dup"


class ScoreState(StrEnum):
    OK = "ok"
    PARSE_ERROR = "parse_error"
    FAILED = "failed"


class Scorer(IdMixin, CreatedMixin, Base):
    """A named, versioned scoring recipe; `key` hashes everything that affects a score."""

    __tablename__ = "scorers"
    __table_args__ = (UniqueConstraint("name", "version"),)

    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    prompt_template: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Score(IdMixin, CreatedMixin, Base):
    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("content_hash", "scorer_id"),
        # Tables sorted by a score walk this index (either way) instead of sorting the pool.
        Index(
            "ix_scores_scorer_id_value_content_hash",
            "scorer_id",
            "value",
            "content_hash",
            postgresql_where=text("state = 'ok'"),
        ),
    )

    content_hash: Mapped[str] = mapped_column(String(32))
    scorer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("scorers.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(20), default=ScoreState.OK.value)
    raw: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id", ondelete="SET NULL"))


class LLMCallState(StrEnum):
    PENDING = "pending"
    DONE = "done"


class LLMCall(IdMixin, CreatedMixin, Base):
    """The response cache: one row per distinct (endpoint, model, messages, sampling) request.

    A worker about to send a request first inserts the row as `pending` with a lease; another
    worker that wants the same request waits for the answer instead of sending it again, and
    takes the claim over only once the lease has run out (its holder died).
    """

    __tablename__ = "llm_calls"

    request_hash: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default=LLMCallState.DONE.value)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    request: Mapped[dict[str, Any]] = mapped_column(Json)
    response: Mapped[dict[str, Any] | None] = mapped_column(Json)
    response_text: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float | None] = mapped_column(Float)


class UnitVector(TypeDecorator[np.ndarray]):
    """A pgvector `vector` of any dimension, given and read back as a float32 numpy array.

    Raw float32 bytes (the column's type before migration 0009) are taken too. Whole matrices
    are read with `vector_send` instead (binary, no text parsing): see
    `app.platform.vectors.store.load_embeddings`."""

    impl = VECTOR
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        """float32 bytes or an array-like, as pgvector's own bind processor expects it."""
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return np.frombuffer(value, dtype=np.float32)
        return np.asarray(value, dtype=np.float32)

    def process_result_value(self, value: Any, dialect: Any) -> np.ndarray | None:
        """The stored vector as a float32 array."""
        return None if value is None else np.asarray(value, dtype=np.float32)


class Embedding(IdMixin, CreatedMixin, Base):
    """One vector per (content, model), L2-normalised, a pgvector `vector` (float32, any
    dimension). Each model's nearest-neighbour index is a partial HNSW index over the column
    cast to `halfvec(dim)`, made by `app.platform.vectors.index.ensure_vector_index`."""

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("content_hash", "model"),
        # The bundled model's index (migration 0009); other models' are made at run time.
        Index(
            "ix_embeddings_hnsw_61365361820e9b92",
            text("(vector::halfvec(384)) halfvec_cosine_ops"),
            postgresql_using="hnsw",
            postgresql_where=text("model = 'all-MiniLM-L6-v2' AND dim = 384"),
        ),
    )

    content_hash: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[np.ndarray] = mapped_column(UnitVector)
