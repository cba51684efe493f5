"""The models and the migrations agree, and the migrations go up and down on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core.db import make_engine
from app.models import Base
from tests.conftest import BACKENDS, alembic_config, database_url


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_match_migrations_and_round_trip(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": backend == "sqlite"}
        )
        assert compare_metadata(context, Base.metadata) == []
    config = alembic_config(url)
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
