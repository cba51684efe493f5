"""pgvector embeddings with an HNSW index per model; a full-text index on example text

Revision ID: 0009
Revises: 0008

Embeddings move from float32 bytes to a pgvector `vector` column (float32, any dimension:
Deita selection and dedup read whole matrices and keep full precision). Nearest neighbours come
from a partial HNSW index per model over the column cast to `halfvec(dim)` (half the size,
recall measured in bench/ui.py); this migration makes the one for the bundled MiniLM, others are
made when a model is first embedded (`app.selection.embeddings.ensure_vector_index`, which
names them the same way). Text filters use a GIN index over the `simple` tsvector of every
message's content (messages are the canonical content: instruction, input and output are in
them too), through the function sift_example_text.
"""

import hashlib
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_MODEL, DEFAULT_DIM = "all-MiniLM-L6-v2", 384
BATCH = 5000
# The text a full-text filter matches, as a function of its own: its declared cost tells the
# planner what parsing an example's text costs (60 to 80 microseconds), so that it reads the
# index instead of parsing example after example in id order (0.5 s for three words on 100,000
# examples); plpgsql, so that it is never inlined (and the cost forgotten); parallel restricted,
# because with that cost the planner split such scans over workers that each read the whole
# table (7 s). app.models.scoring.EXAMPLE_TEXT calls it.
EXAMPLE_TEXT_FUNCTION = """
CREATE FUNCTION sift_example_text(messages jsonb) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED COST 2500 AS $$
BEGIN
    RETURN jsonb_to_tsvector(
        'simple'::regconfig, jsonb_path_query_array(messages, '$[*].content'), '["string"]'
    );
END
$$
"""


def vector_index_name(model: str) -> str:
    """The HNSW index of one model's vectors (as app.selection.embeddings names it)."""
    return f"ix_embeddings_hnsw_{hashlib.md5(model.encode('utf-8')).hexdigest()[:16]}"


def _convert(select_sql: str, update_sql: str, convert: object) -> None:
    """Rewrite every embedding row in batches by id, one statement per batch."""
    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(sa.text(select_sql), {"after": after, "n": BATCH}).all()
        if not rows:
            return
        conn.execute(
            sa.text(update_sql),
            [{"id": row[0], "v": convert(row[1])} for row in rows],  # type: ignore[operator]
        )
        after = rows[-1][0]


def _as_text(blob: bytes) -> str:
    return "[" + ",".join(repr(x) for x in np.frombuffer(blob, dtype="<f4").tolist()) + "]"


def _as_bytes(sent: bytes) -> bytes:
    # vector_send: a 2-byte dimension, 2 unused bytes, then big-endian float32.
    return np.frombuffer(sent, dtype=">f4")[1:].astype("<f4").tobytes()


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("ALTER TABLE embeddings ADD COLUMN unit vector")
    _convert(
        "SELECT id, vector FROM embeddings WHERE id > :after ORDER BY id LIMIT :n",
        "UPDATE embeddings SET unit = CAST(:v AS vector) WHERE id = :id",
        _as_text,
    )
    op.drop_column("embeddings", "vector")
    op.alter_column("embeddings", "unit", new_column_name="vector", nullable=False)
    op.execute(
        f"CREATE INDEX {vector_index_name(DEFAULT_MODEL)} ON embeddings USING hnsw "
        f"((vector::halfvec({DEFAULT_DIM})) halfvec_cosine_ops) "
        f"WHERE model = '{DEFAULT_MODEL}' AND dim = {DEFAULT_DIM}"
    )
    op.execute(EXAMPLE_TEXT_FUNCTION)
    op.execute(
        "CREATE INDEX ix_examples_search ON examples USING gin (sift_example_text(messages))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_examples_search")
    op.execute("DROP FUNCTION IF EXISTS sift_example_text(jsonb)")
    conn = op.get_bind()
    names = conn.execute(
        sa.text(
            "SELECT indexname FROM pg_indexes "
            "WHERE tablename = 'embeddings' AND indexname LIKE 'ix_embeddings_hnsw_%'"
        )
    ).scalars()
    for name in list(names):
        op.execute(f'DROP INDEX IF EXISTS "{name}"')
    op.add_column("embeddings", sa.Column("raw", sa.LargeBinary(), nullable=True))
    _convert(
        "SELECT id, vector_send(vector) FROM embeddings WHERE id > :after ORDER BY id LIMIT :n",
        "UPDATE embeddings SET raw = :v WHERE id = :id",
        _as_bytes,
    )
    op.drop_column("embeddings", "vector")
    op.alter_column("embeddings", "raw", new_column_name="vector", nullable=False)
