"""Experiments: a held-out split of the pool, each arm's loss on it, and the studio's run job

Revision ID: 0017
Revises: 0016

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger()
JSON = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.add_column(
        "experiments",
        sa.Column("heldout_ids", JSON, server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.add_column("experiments", sa.Column("run_job_id", BIG_ID, nullable=True))
    op.create_foreign_key(
        op.f("fk_experiments_run_job_id_jobs"), "experiments", "jobs",
        ["run_job_id"], ["id"], ondelete="SET NULL",
    )  # fmt: skip
    op.add_column("experiment_arms", sa.Column("heldout_job_id", BIG_ID, nullable=True))
    op.add_column("experiment_arms", sa.Column("heldout", JSON, nullable=True))
    op.create_foreign_key(
        op.f("fk_experiment_arms_heldout_job_id_jobs"), "experiment_arms", "jobs",
        ["heldout_job_id"], ["id"], ondelete="SET NULL",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_experiment_arms_heldout_job_id_jobs"), "experiment_arms", type_="foreignkey"
    )
    op.drop_column("experiment_arms", "heldout")
    op.drop_column("experiment_arms", "heldout_job_id")
    op.drop_constraint(op.f("fk_experiments_run_job_id_jobs"), "experiments", type_="foreignkey")
    op.drop_column("experiments", "run_job_id")
    op.drop_column("experiments", "heldout_ids")
