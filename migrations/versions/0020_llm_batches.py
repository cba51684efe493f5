"""OpenAI Batch API batches a job or chunk submitted (llm_batches)

Revision ID: 0020
Revises: 0019

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger()
JSON = postgresql.JSONB(astext_type=sa.Text())
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "llm_batches",
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("chunk_id", BIG_ID, nullable=True),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("marker", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("input_file_id", sa.String(length=200), nullable=True),
        sa.Column("batch_id", sa.String(length=200), nullable=True),
        sa.Column("output_file_id", sa.String(length=200), nullable=True),
        sa.Column("error_file_id", sa.String(length=200), nullable=True),
        sa.Column("requests", JSON, nullable=False),
        sa.Column("request_counts", JSON, nullable=False),
        sa.Column("failures", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=True),
        sa.Column("collected_at", WHEN, nullable=True),
        sa.Column("consumed_at", WHEN, nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column(
            "created_at", WHEN, server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_llm_batches_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["job_chunks.id"],
            name=op.f("fk_llm_batches_chunk_id_job_chunks"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_batches")),
        sa.UniqueConstraint("marker", name=op.f("uq_llm_batches_marker")),
    )  # fmt: skip
    op.create_index(op.f("ix_llm_batches_job_id"), "llm_batches", ["job_id"])
    op.create_index(op.f("ix_llm_batches_chunk_id"), "llm_batches", ["chunk_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_llm_batches_chunk_id"), table_name="llm_batches")
    op.drop_index(op.f("ix_llm_batches_job_id"), table_name="llm_batches")
    op.drop_table("llm_batches")
