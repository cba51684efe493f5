"""Review statuses reach snapshots: each frozen item keeps its status, a snapshot says whether
it took accepted examples only and what it left out

Revision ID: 0013
Revises: 0012

Snapshots made before keep a NULL status on their items (nothing was recorded then).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("snapshot_items", sa.Column("status", sa.String(length=20), nullable=True))
    op.add_column(
        "snapshots",
        sa.Column("only_accepted", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "snapshots",
        sa.Column(
            "left_out", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("snapshots", "left_out")
    op.drop_column("snapshots", "only_accepted")
    op.drop_column("snapshot_items", "status")
