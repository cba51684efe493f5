"""Generated examples and their provenance

Revision ID: 0005
Revises: 0004

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "generation_provenance",
        sa.Column("example_id", BigId, nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("parent_example_id", BigId, nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("job_id", BigId, nullable=True),
        sa.Column("variant_group", BigId, nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["example_id"],
            ["examples.id"],
            name=op.f("fk_generation_provenance_example_id_examples"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_example_id"],
            ["examples.id"],
            name=op.f("fk_generation_provenance_parent_example_id_examples"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_generation_provenance_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_provenance")),
        sa.UniqueConstraint("example_id", name=op.f("uq_generation_provenance_example_id")),
    )
    with op.batch_alter_table("generation_provenance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_generation_provenance_parent_example_id"),
            ["parent_example_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_generation_provenance_job_id"), ["job_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_generation_provenance_variant_group"), ["variant_group"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("generation_provenance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_provenance_variant_group"))
        batch_op.drop_index(batch_op.f("ix_generation_provenance_job_id"))
        batch_op.drop_index(batch_op.f("ix_generation_provenance_parent_example_id"))

    op.drop_table("generation_provenance")
