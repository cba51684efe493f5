"""A lead's second pass: each annotator decision can be approved, fixed or sent back

Revision ID: 0021
Revises: 0020

Existing decisions stay unchecked (they appear in the leads' second-pass queue).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("review_decisions", sa.Column("check", sa.String(length=20), nullable=True))
    op.add_column("review_decisions", sa.Column("check_note", sa.Text(), nullable=True))
    op.add_column(
        "review_decisions", sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "review_decisions",
        sa.Column(
            "checked_by", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
    )
    # The second-pass queue reads the unchecked, live decisions in id order.
    op.create_index(
        "ix_review_decisions_unchecked",
        "review_decisions",
        ["id"],
        postgresql_where=sa.text("checked_at IS NULL AND undone_at IS NULL"),
    )
    # An annotator's decisions sent back to them (their list on /review).
    op.create_index(
        "ix_review_decisions_sent_back",
        "review_decisions",
        ["user_id"],
        postgresql_where=sa.text("\"check\" = 'sent_back'"),
    )


def downgrade() -> None:
    op.drop_index("ix_review_decisions_sent_back", table_name="review_decisions")
    op.drop_index("ix_review_decisions_unchecked", table_name="review_decisions")
    op.drop_column("review_decisions", "checked_by")
    op.drop_column("review_decisions", "checked_at")
    op.drop_column("review_decisions", "check_note")
    op.drop_column("review_decisions", "check")
