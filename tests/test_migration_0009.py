"""Migration 0009 keeps every stored embedding: float32 bytes become pgvector vectors and back."""

from __future__ import annotations

import numpy as np
from alembic import command
from sqlalchemy import text

from app.platform.db import make_engine
from tests.conftest import alembic_config, migrated_database


def test_embeddings_survive_the_upgrade_and_the_downgrade() -> None:
    url = migrated_database("sift_test_migration_0009")
    config = alembic_config(url)
    command.downgrade(config, "0008")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    engine = make_engine(url)
    with engine.begin() as conn:
        for i, vector in enumerate(vectors):
            conn.execute(
                text(
                    "INSERT INTO embeddings (content_hash, model, dim, vector) "
                    "VALUES (:h, 'all-MiniLM-L6-v2', 384, :v)"
                ),
                {"h": f"{i:032d}", "v": vector.tobytes()},
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT vector_send(vector) FROM embeddings ORDER BY content_hash")
        ).scalars()
        upgraded = np.stack([np.frombuffer(r, dtype=">f4")[1:] for r in rows])
        assert np.array_equal(upgraded.astype(np.float32), vectors)
        conn.execute(text("SET enable_sort = off"))  # seven rows: it would rather sort them
        plan = conn.execute(
            text(
                "EXPLAIN SELECT id FROM embeddings WHERE model = 'all-MiniLM-L6-v2' AND dim = 384 "
                "ORDER BY vector::halfvec(384) <=> (SELECT vector FROM embeddings LIMIT 1)"
                "::halfvec(384) LIMIT 3"
            )
        ).scalars()
        assert "ix_embeddings_hnsw_" in "\n".join(plan)
    command.downgrade(config, "0008")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT vector FROM embeddings ORDER BY content_hash")).scalars()
        assert [bytes(r) for r in rows] == [v.tobytes() for v in vectors]
    command.upgrade(config, "head")
    engine.dispose()
