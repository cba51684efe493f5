"""Bulk work: examples assigned to annotators, and an index that sorts tables by a score

Revision ID: 0019
Revises: 0018

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "review_assignments",
        sa.Column("example_id", BIG_ID, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("assigned_by_id", BIG_ID, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["example_id"],
            ["examples.id"],
            name="fk_review_assignments_example_id_examples",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_review_assignments_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"],
            ["users.id"],
            name="fk_review_assignments_assigned_by_id_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("example_id", "user_id", name="pk_review_assignments"),
    )
    op.create_index(
        "ix_review_assignments_user_id_example_id",
        "review_assignments",
        ["user_id", "example_id"],
    )
    op.create_index(
        "ix_scores_scorer_id_value_content_hash",
        "scores",
        ["scorer_id", "value", "content_hash"],
        postgresql_where=sa.text("state = 'ok'"),
    )


def downgrade() -> None:
    op.drop_index("ix_scores_scorer_id_value_content_hash", table_name="scores")
    op.drop_index("ix_review_assignments_user_id_example_id", table_name="review_assignments")
    op.drop_table("review_assignments")
