"""Sign-in attempts say whether they failed: the per-address limit counts failures

Revision ID: 0023
Revises: 0021

Fifty people behind one address signing in at once were refused as "too many failed
sign-ins" while their passwords were still being checked. Rows already there count as failed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sign_in_attempts",
        sa.Column("failed", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    # New rows are in flight until their password is checked.
    op.alter_column("sign_in_attempts", "failed", server_default=sa.false())


def downgrade() -> None:
    op.drop_column("sign_in_attempts", "failed")
