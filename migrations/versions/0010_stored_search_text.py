"""Full-text search reads a stored tsvector column instead of parsing text at query time

Revision ID: 0010
Revises: 0009

`examples.search_text` is a stored generated column: the `simple` tsvector of every message's
content, the very expression that migration 0009's function sift_example_text computed, so
that searches find the same examples. Its GIN index replaces the expression index. Parsing an
example's text took 60 to 80 microseconds, so PostgreSQL could not check a search against
examples in id order (the first 50 matches of common words) without parsing every one; a
stored column is read instead. Adding the column rewrites `examples` once.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept equal to app.models.datasets.SEARCH_TEXT (a migration does not import the app).
SEARCH_TEXT = (
    "jsonb_to_tsvector('simple'::regconfig, "
    "jsonb_path_query_array(messages, '$[*].content'::jsonpath), '[\"string\"]'::jsonb)"
)
# Migration 0009's function and index, restored by the downgrade.
EXAMPLE_TEXT_FUNCTION = """
CREATE FUNCTION sift_example_text(messages jsonb) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED COST 2500 AS $$
BEGIN
    RETURN jsonb_to_tsvector(
        'simple'::regconfig, jsonb_path_query_array(messages, '$[*].content'), '["string"]'
    );
END
$$
"""


def upgrade() -> None:
    # The old index first: the table rewrite would otherwise rebuild it, parsing every example.
    op.execute("DROP INDEX IF EXISTS ix_examples_search")
    op.execute("DROP FUNCTION IF EXISTS sift_example_text(jsonb)")
    # STORED: PostgreSQL 18 makes generated columns virtual (computed on every read) by default.
    op.execute(
        f"ALTER TABLE examples ADD COLUMN search_text tsvector "
        f"GENERATED ALWAYS AS ({SEARCH_TEXT}) STORED"
    )
    op.execute("CREATE INDEX ix_examples_search ON examples USING gin (search_text)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_examples_search")
    op.execute("ALTER TABLE examples DROP COLUMN search_text")
    op.execute(EXAMPLE_TEXT_FUNCTION)
    op.execute(
        "CREATE INDEX ix_examples_search ON examples USING gin (sift_example_text(messages))"
    )
