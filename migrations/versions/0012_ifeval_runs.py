"""IFEval evaluations beside the pairwise ones: an evaluation's kind and its metrics

Revision ID: 0012
Revises: 0011

`eval_runs.kind` is `pairwise` (two models, a judge; every run before this one) or `ifeval` (one
model, IFEval's rules; `model_b` and `judge` are empty). `eval_runs.metrics` holds what the rules
give an IFEval run (prompt- and instruction-level accuracy, strict and loose, and per instruction
type), recomputed from its items by every chunk.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "eval_runs",
        sa.Column("kind", sa.String(20), nullable=False, server_default="pairwise"),
    )
    op.add_column(
        "eval_runs",
        sa.Column(
            "metrics",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )


def downgrade() -> None:
    op.drop_column("eval_runs", "metrics")
    op.drop_column("eval_runs", "kind")
