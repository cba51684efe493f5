"""Experiments: one pool, one budget, several arms (a snapshot, a run and its IFEval each)

Revision ID: 0016
Revises: 0015

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger()
JSON = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dataset_id", BIG_ID, nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("base_model", sa.String(length=500), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("evaluation", JSON, nullable=False),
        sa.Column("created_by_id", BIG_ID, nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"],
            name=op.f("fk_experiments_dataset_id_datasets"), ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name=op.f("fk_experiments_created_by_id_users"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
    )  # fmt: skip
    op.create_index(op.f("ix_experiments_dataset_id"), "experiments", ["dataset_id"])
    op.create_table(
        "experiment_arms",
        sa.Column("experiment_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.String(length=500), nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=True),
        sa.Column("run_id", BIG_ID, nullable=True),
        sa.Column("eval_id", BIG_ID, nullable=True),
        sa.Column("pairwise_id", BIG_ID, nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"],
            name=op.f("fk_experiment_arms_experiment_id_experiments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"],
            name=op.f("fk_experiment_arms_snapshot_id_snapshots"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_runs.id"],
            name=op.f("fk_experiment_arms_run_id_training_runs"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["eval_id"], ["eval_runs.id"],
            name=op.f("fk_experiment_arms_eval_id_eval_runs"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pairwise_id"], ["eval_runs.id"],
            name=op.f("fk_experiment_arms_pairwise_id_eval_runs"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_arms")),
        sa.UniqueConstraint(
            "experiment_id", "name", name=op.f("uq_experiment_arms_experiment_id_name")
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("experiment_arms")
    op.drop_index(op.f("ix_experiments_dataset_id"), table_name="experiments")
    op.drop_table("experiments")
