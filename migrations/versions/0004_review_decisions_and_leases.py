"""Review decisions and leases

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index(
        "ix_examples_dataset_id_status_id",
        "examples",
        ["dataset_id", "status", "id"],
        unique=False,
    )
    op.create_index(
        "ix_examples_dataset_id_status_source_category",
        "examples",
        ["dataset_id", "status", "source", "category"],
        unique=False,
    )
    op.create_table(
        "review_decisions",
        sa.Column("example_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("collection_id", BigId, nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status_before", sa.String(length=20), nullable=False),
        sa.Column("revision_id", BigId, nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_review_decisions_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["example_id"],
            ["examples.id"],
            name=op.f("fk_review_decisions_example_id_examples"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_review_decisions_revision_id_revisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_review_decisions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
    )
    op.create_index(
        op.f("ix_review_decisions_example_id"), "review_decisions", ["example_id"], unique=False
    )
    op.create_index(
        op.f("ix_review_decisions_collection_id"),
        "review_decisions",
        ["collection_id"],
        unique=False,
    )
    op.create_index(
        "ix_review_decisions_user_id_created_at",
        "review_decisions",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "review_leases",
        sa.Column("example_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["example_id"],
            ["examples.id"],
            name=op.f("fk_review_leases_example_id_examples"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_review_leases_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("example_id", name=op.f("pk_review_leases")),
    )
    op.create_index(
        op.f("ix_review_leases_expires_at"), "review_leases", ["expires_at"], unique=False
    )
    op.create_index(op.f("ix_review_leases_user_id"), "review_leases", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_review_leases_user_id"), table_name="review_leases")
    op.drop_index(op.f("ix_review_leases_expires_at"), table_name="review_leases")
    op.drop_table("review_leases")
    op.drop_index("ix_review_decisions_user_id_created_at", table_name="review_decisions")
    op.drop_index(op.f("ix_review_decisions_collection_id"), table_name="review_decisions")
    op.drop_index(op.f("ix_review_decisions_example_id"), table_name="review_decisions")
    op.drop_table("review_decisions")
    op.drop_index("ix_examples_dataset_id_status_source_category", table_name="examples")
    op.drop_index("ix_examples_dataset_id_status_id", table_name="examples")
