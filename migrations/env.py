"""Alembic environment: the URL comes from Sift's settings unless a connection is handed in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app.platform.db import database_url, make_engine
from app.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a connection given by the caller, or one to the configured database."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or database_url()
    # A SQLite URL only builds a file of the SQLite-era schema (revisions up to 0007), which
    # `sift db import-sqlite` reads; make_engine takes PostgreSQL only.
    engine = create_engine(url) if url.startswith("sqlite") else make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


run_migrations_online()
