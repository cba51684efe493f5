"""Fixtures for job tests: a committed database that the app's own engine (and a real worker
process) use, instead of the rolled-back test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, make_url, text

from app.core.config import get_settings
from app.core.db import get_engine, make_engine
from app.models import Base
from tests.conftest import BACKENDS, database_url
from tests.services import POSTGRES_URL, REDIS_URL, need
from workers.celery_app import get_celery

JOBS_DATABASE = "sift_test_jobs"


def jobs_postgres_url() -> str:
    """A PostgreSQL database of its own, so committed rows never reach other tests."""
    need("PostgreSQL", POSTGRES_URL, 5432)
    url = make_url(POSTGRES_URL)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (JOBS_DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{JOBS_DATABASE}"')
    return url.set(database=JOBS_DATABASE).render_as_string(False)


def reset_caches() -> None:
    """Forget settings, engine and Celery app built from the previous environment."""
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_celery.cache_clear()


@pytest.fixture(params=BACKENDS)
def committed(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The app's configured database, migrated and emptied; SQLite uses the embedded broker,
    PostgreSQL uses Redis (database 15, flushed)."""
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path / "data"))
    if request.param == "postgresql":
        url = jobs_postgres_url()
        from tests.conftest import alembic_config, reset_postgres

        reset_postgres(url)
        from alembic import command

        command.upgrade(alembic_config(url), "head")
        need("Redis", REDIS_URL, 6379)
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        monkeypatch.setenv("SIFT_DATABASE_URL", url)
        monkeypatch.setenv("SIFT_REDIS_URL", REDIS_URL)
    else:
        url = database_url("sqlite", tmp_path)
        monkeypatch.setenv("SIFT_DATABASE_URL", url)
    reset_caches()
    engine = get_engine()
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        cleanup = make_engine(url)
        with cleanup.begin() as conn:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        cleanup.dispose()
    monkeypatch.undo()
    reset_caches()
