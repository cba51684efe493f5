"""The planner's statistics of the full-text column sample ten times the words

Revision ID: 0024
Revises: 0023

With PostgreSQL's default statistics target (100: 1,000 most common words), a word or prefix not
among them was estimated at 0.3% of the rows whatever it was; for a rare phrase such as
"(variant 123457)" on a million examples the planner then walked `examples` in id order
expecting a match every few hundred rows, and read all of them (1.8 s) instead of asking the
full-text index (1 ms). With 10,000 words sampled, a rare word is estimated as rare. ANALYZE of
that column took 7 s on a million examples (it samples 300,000 rows, whatever the table's size).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_STATISTICS = 1000


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE examples ALTER COLUMN search_text SET STATISTICS {SEARCH_STATISTICS}"
    )
    op.execute("ANALYZE examples (search_text)")


def downgrade() -> None:
    op.execute("ALTER TABLE examples ALTER COLUMN search_text SET STATISTICS -1")
