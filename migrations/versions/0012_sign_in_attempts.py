"""Sign-in limits kept in the database: one row per failed sign-in within the window

Revision ID: 0012
Revises: 0011

The limits were counted in each web process's memory, so several processes (or a restart)
multiplied them. Rows older than the window are deleted as new ones arrive.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index("ix_sign_in_attempts_name", "sign_in_attempts", ["name", "attempted_at"])
    op.create_index(
        "ix_sign_in_attempts_address", "sign_in_attempts", ["address", "attempted_at"]
    )
    op.create_index("ix_sign_in_attempts_attempted_at", "sign_in_attempts", ["attempted_at"])


def downgrade() -> None:
    op.drop_table("sign_in_attempts")
