"""Migration 0010 stores the very tsvector that migration 0009's function computed, and the
app's searches (app.datasets.service.text_query) find the same examples through either."""

from __future__ import annotations

import orjson
from alembic import command
from sqlalchemy import text

from app.datasets.service import text_query
from app.platform.db import make_engine
from tests.conftest import alembic_config, migrated_database

MESSAGES = [
    [{"role": "user", "content": "Explain photosynthesis"}, {"role": "assistant", "content": "Light"}],
    [{"role": "user", "content": "Name a snake_case rule"}, {"role": "assistant", "content": "3.5 e-mail"}],
    [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Don't SHOUT"}],
]  # fmt: skip
SEARCHES = ("photo", "snake case", "3.5", "e-mail", "don't", "brief shou", "light")


def _matches(conn: object, column: str) -> dict[str, list[str]]:
    return {
        words: list(
            conn.execute(  # type: ignore[attr-defined]
                text(
                    f"SELECT content_hash FROM examples WHERE {column} @@ "
                    "to_tsquery('simple', :q) ORDER BY id"
                ),
                {"q": text_query(words)},
            ).scalars()
        )
        for words in SEARCHES
    }


def test_search_text_is_the_functions_tsvector_on_a_populated_table() -> None:
    url = migrated_database("sift_test_migration_0010")
    config = alembic_config(url)
    command.downgrade(config, "0009")
    engine = make_engine(url)
    with engine.begin() as conn:
        dataset = conn.execute(
            text("INSERT INTO datasets (name, description) VALUES ('d', '') RETURNING id")
        ).scalar_one()
        for i, messages in enumerate(MESSAGES):
            conn.execute(
                text(
                    "INSERT INTO examples (dataset_id, messages, meta, content_hash, origin, "
                    "status, version) VALUES (:d, CAST(:m AS jsonb), '{}', :h, 'import', "
                    "'candidate', 1)"
                ),
                {"d": dataset, "m": orjson.dumps(messages).decode(), "h": f"{i:032d}"},
            )
        before = conn.execute(
            text("SELECT sift_example_text(messages)::text FROM examples ORDER BY id")
        ).scalars()
        before_vectors = list(before)
        before_matches = _matches(conn, "sift_example_text(messages)")
    assert all(before_matches.values())
    command.upgrade(config, "head")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT search_text::text FROM examples ORDER BY id")).scalars()
        assert list(stored) == before_vectors
        assert _matches(conn, "search_text") == before_matches
        conn.execute(text("SET enable_seqscan = off"))  # three rows: it would rather scan them
        plan = conn.execute(
            text("EXPLAIN SELECT id FROM examples WHERE search_text @@ to_tsquery('simple', 'x')")
        ).scalars()
        assert "ix_examples_search" in "\n".join(plan)
    command.downgrade(config, "0009")
    with engine.connect() as conn:
        assert _matches(conn, "sift_example_text(messages)") == before_matches
    command.upgrade(config, "head")
    engine.dispose()
