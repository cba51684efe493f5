"""Questions beyond accept and reject: a collection's questions, each annotator's answers,
and the answers a snapshot froze

Revision ID: 0018
Revises: 0017

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger()
JSON = postgresql.JSONB(astext_type=sa.Text())
NOW = sa.text("(CURRENT_TIMESTAMP)")


def upgrade() -> None:
    op.create_table(
        "review_questions",
        sa.Column("collection_id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("required", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_by_id", BIG_ID, nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"],
            name=op.f("fk_review_questions_collection_id_collections"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name=op.f("fk_review_questions_created_by_id_users"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_questions")),
        sa.UniqueConstraint(
            "collection_id", "key", name=op.f("uq_review_questions_collection_id_key")
        ),
    )  # fmt: skip
    op.create_index(
        op.f("ix_review_questions_collection_id"), "review_questions", ["collection_id"]
    )
    op.create_table(
        "review_answers",
        sa.Column("question_id", BIG_ID, nullable=False),
        sa.Column("example_id", BIG_ID, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"], ["review_questions.id"],
            name=op.f("fk_review_answers_question_id_review_questions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["example_id"], ["examples.id"],
            name=op.f("fk_review_answers_example_id_examples"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"],
            name=op.f("fk_review_answers_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_answers")),
        sa.UniqueConstraint(
            "question_id", "example_id", "user_id",
            name=op.f("uq_review_answers_question_id_example_id_user_id"),
        ),
    )  # fmt: skip
    op.create_index(op.f("ix_review_answers_example_id"), "review_answers", ["example_id"])
    op.create_index(op.f("ix_review_answers_user_id"), "review_answers", ["user_id"])
    op.add_column("snapshot_items", sa.Column("answers", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("snapshot_items", "answers")
    op.drop_index(op.f("ix_review_answers_user_id"), table_name="review_answers")
    op.drop_index(op.f("ix_review_answers_example_id"), table_name="review_answers")
    op.drop_table("review_answers")
    op.drop_index(op.f("ix_review_questions_collection_id"), table_name="review_questions")
    op.drop_table("review_questions")
