"""Job recovery: when a job's or chunk's message was last sent, and how far an attempt got

Revision ID: 0008
Revises: 0007

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("jobs", "job_chunks"):
        op.add_column(table, sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        op.add_column(
            table,
            sa.Column("progress_mark", sa.Integer(), server_default="0", nullable=False),
        )


def downgrade() -> None:
    for table in ("jobs", "job_chunks"):
        op.drop_column(table, "progress_mark")
        op.drop_column(table, "sent_at")
