"""Evaluation: test sets, answers and verdicts

Revision ID: 0007
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column:
    return sa.Column("id", BIG_ID, autoincrement=True, nullable=False)


def _created_at() -> sa.Column:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        server_default=sa.text("(CURRENT_TIMESTAMP)"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "eval_test_sets",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=30), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("prompt_count", sa.Integer(), nullable=False),
        sa.Column("max_turns", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", BIG_ID, nullable=True),
        _id(),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_eval_test_sets_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_test_sets")),
        sa.UniqueConstraint("name", name=op.f("uq_eval_test_sets_name")),
    )
    op.create_table(
        "eval_prompts",
        sa.Column("test_set_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.String(length=100), nullable=False),
        sa.Column("turns", JSON, nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("reference", JSON, nullable=True),
        sa.Column("meta", JSON, nullable=False),
        _id(),
        sa.ForeignKeyConstraint(
            ["test_set_id"],
            ["eval_test_sets.id"],
            name=op.f("fk_eval_prompts_test_set_id_eval_test_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_prompts")),
        sa.UniqueConstraint(
            "test_set_id", "position", name=op.f("uq_eval_prompts_test_set_id_position")
        ),
        sa.UniqueConstraint(
            "test_set_id", "prompt_id", name=op.f("uq_eval_prompts_test_set_id_prompt_id")
        ),
    )
    op.create_table(
        "eval_answers",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=500), nullable=False),
        sa.Column("turns", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        _id(),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_answers")),
        sa.UniqueConstraint("key", name=op.f("uq_eval_answers_key")),
    )
    with op.batch_alter_table("eval_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("test_set_id", BIG_ID, nullable=False))
        batch_op.create_index(batch_op.f("ix_eval_runs_test_set_id"), ["test_set_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_eval_runs_test_set_id_eval_test_sets"),
            "eval_test_sets",
            ["test_set_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    with op.batch_alter_table("eval_items", schema=None) as batch_op:
        batch_op.drop_column("answer_a")
        batch_op.drop_column("answer_b")
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("turns", JSON, nullable=False))
        batch_op.add_column(sa.Column("category", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("answers_a", JSON, nullable=True))
        batch_op.add_column(sa.Column("answers_b", JSON, nullable=True))
        batch_op.add_column(sa.Column("judge_ab", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("judge_ba", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("state", sa.String(length=20), nullable=False))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_items", schema=None) as batch_op:
        for column in (
            "error",
            "state",
            "judge_ba",
            "judge_ab",
            "answers_b",
            "answers_a",
            "category",
            "turns",
            "position",
        ):
            batch_op.drop_column(column)
        batch_op.add_column(sa.Column("answer_b", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("answer_a", sa.Text(), nullable=True))
    with op.batch_alter_table("eval_runs", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_eval_runs_test_set_id_eval_test_sets"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_eval_runs_test_set_id"))
        batch_op.drop_column("test_set_id")
    op.drop_table("eval_answers")
    op.drop_table("eval_prompts")
    op.drop_table("eval_test_sets")
