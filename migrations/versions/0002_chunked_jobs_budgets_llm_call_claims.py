"""Chunked jobs, job budgets, and claims on LLM calls so that a request is sent only once

Revision ID: 0002
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_chunks",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_chunks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_chunks")),
        sa.UniqueConstraint("job_id", "index", name=op.f("uq_job_chunks_job_id_index")),
    )
    with op.batch_alter_table("job_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_chunks_state"), ["state"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_usd", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("spent_usd", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("reserved_usd", sa.Float(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("llm_calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="done")
        )
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("response", existing_type=JSON, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("llm_calls", schema=None) as batch_op:
        batch_op.alter_column("response", existing_type=JSON, nullable=False)
        batch_op.drop_column("lease_until")
        batch_op.drop_column("state")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("reserved_usd")
        batch_op.drop_column("spent_usd")
        batch_op.drop_column("budget_usd")

    with op.batch_alter_table("job_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_chunks_state"))

    op.drop_table("job_chunks")
