"""The models and the migrations agree, and the migrations go down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.models import Base
from app.platform.db import make_engine
from tests.conftest import alembic_config, migrated_database


def test_models_match_migrations_and_round_trip() -> None:
    url = migrated_database("sift_test_migrations")
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    config = alembic_config(url)
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_the_full_text_column_samples_ten_thousand_words() -> None:
    """Migration 0024: rare words are estimated as rare, so that a search asks the index."""
    engine = make_engine(migrated_database("sift_test_migrations"))
    with engine.connect() as conn:
        target = conn.exec_driver_sql(
            "SELECT attstattarget FROM pg_attribute "
            "WHERE attrelid = 'examples'::regclass AND attname = 'search_text'"
        ).scalar()
    engine.dispose()
    assert target == 1000
