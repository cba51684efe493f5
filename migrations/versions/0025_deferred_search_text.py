"""The full-text column is kept by a trigger, and a large import may leave it to a job

Revision ID: 0025
Revises: 0024

`examples.search_text` was a stored generated column: every inserted row paid for parsing its
text into a `tsvector` and inserting the words into the GIN index, inside the import's one
transaction, on one core: an import of 200,000 examples ran at 11,500/s, and 35,000 to 42,000/s
without it. The column is now plain, filled by a trigger on every
insert and on every change of `messages`, so that edits, answers and generated examples are
searchable at once as before. An import that sets `sift.defer_search` leaves it NULL instead,
and a job fills it afterwards in short batches (`app/datasets/search_index.py`); the partial
index finds the rows still to fill without reading the others.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_TEXT = (
    "jsonb_to_tsvector('simple'::regconfig, "
    "jsonb_path_query_array({messages}, '$[*].content'::jsonpath), '[\"string\"]'::jsonb)"
)


def upgrade() -> None:
    op.execute("ALTER TABLE examples ALTER COLUMN search_text DROP EXPRESSION")
    op.execute(
        f"""
        CREATE FUNCTION examples_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' AND current_setting('sift.defer_search', true) = 'on' THEN
                NEW.search_text := NULL;
            ELSE
                NEW.search_text := {SEARCH_TEXT.format(messages="NEW.messages")};
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER examples_search_text BEFORE INSERT OR UPDATE OF messages ON examples "
        "FOR EACH ROW EXECUTE FUNCTION examples_search_text()"
    )
    op.execute(
        "CREATE INDEX ix_examples_unsearched ON examples (dataset_id, id) "
        "WHERE search_text IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_examples_unsearched")
    op.execute("DROP TRIGGER examples_search_text ON examples")
    op.execute("DROP FUNCTION examples_search_text()")
    op.execute("DROP INDEX ix_examples_search")
    op.execute("ALTER TABLE examples DROP COLUMN search_text")
    op.execute(
        "ALTER TABLE examples ADD COLUMN search_text tsvector "
        f"GENERATED ALWAYS AS ({SEARCH_TEXT.format(messages='messages')}) STORED"
    )
    op.execute("ALTER TABLE examples ALTER COLUMN search_text SET STATISTICS 1000")
    op.execute("CREATE INDEX ix_examples_search ON examples USING gin (search_text)")
