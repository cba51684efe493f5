"""Several annotators per example: a collection's overlap and consensus rule

Revision ID: 0014
Revises: 0013

Existing collections keep one decision per example (overlap 1).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "collections", sa.Column("overlap", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "collections",
        sa.Column("consensus", sa.String(length=20), server_default="majority", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("collections", "consensus")
    op.drop_column("collections", "overlap")
