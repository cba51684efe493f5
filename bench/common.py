"""What the benchmarks share: the bench database and the real records they are made from."""

from __future__ import annotations

import contextlib
import os
import resource
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT.parent / "shared" / "data" / "alpagasus" / "random_9k.json"
# The embedded server the benchmarks start when no URL is given: Sift's own default engine
# (PostgreSQL 18 with pgvector), kept between runs so that a built pool can be reused.
BENCH_DATA_DIR = Path(tempfile.gettempdir()) / "sift-bench"


def bench_url(database: str, variable: str = "SIFT_BENCH_POSTGRES_URL") -> str:
    """The URL of `database`: on the server named by $variable, or on the embedded server of
    the bench data folder (started here; it stops when the benchmark ends)."""
    from sqlalchemy import make_url

    from app.platform.embedded_db import ensure_database, start_server, to_sqlalchemy

    configured = os.environ.get(variable)
    if configured:
        return make_url(configured).set(database=database).render_as_string(False)
    BENCH_DATA_DIR.mkdir(parents=True, exist_ok=True)
    server = start_server(BENCH_DATA_DIR / "pg")
    ensure_database(server, database)
    return to_sqlalchemy(server, database)


def plain_url(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def prepare_postgres(url: str) -> None:
    """Create the bench database if missing, drop its schema and migrate it to head."""
    import psycopg
    from sqlalchemy import make_url

    from app.platform.embedded_db import ensure_database

    database = make_url(url).database
    if database in (None, "test", "postgres"):
        raise SystemExit(f"refusing to benchmark in the database {database!r}: use a dedicated one")
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    ensure_database(plain_url(admin), database)
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    migrate(url)


def migrate(url: str) -> None:
    """Upgrade a database to the latest migration, as the test suite does."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")


def build_records(n: int) -> list[dict[str, Any]]:
    """N unique Alpaca records made from the real ones, in a cycle."""
    base = orjson.loads(DATA.read_bytes())
    records = []
    for i in range(n):
        record = dict(base[i % len(base)])
        record["instruction"] = f"{record['instruction']} (variant {i})"
        records.append(record)
    return records


def write_json(records: list[dict[str, Any]], path: Path) -> None:
    """A JSON list, indented like the source file."""
    path.write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))


# ---------------------------------------------------------------- memory (Linux VmHWM)


def _status_mib(field: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith(f"{field}:")), None)
    return int(line.split()[1]) / 1024 if line else None


def reset_peak_rss() -> float:
    """Reset the peak-RSS mark where Linux allows it; return the resident set now (MiB)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS") or peak_rss()


def peak_rss() -> float:
    """The process's peak resident set (MiB) since the last reset."""
    peak = _status_mib("VmHWM")
    if peak is None:  # not Linux: ru_maxrss, never reset
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def copy_embeddings(conn: Any, rows: Iterable[tuple[str, str, int, Any]]) -> None:
    """(content hash, model, dim, vector) rows into `embeddings` by a binary COPY (the
    connection has pgvector's types registered)."""
    with (
        conn.cursor() as cursor,
        cursor.copy(
            "COPY embeddings (content_hash, model, dim, vector) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["varchar", "varchar", "int4", "vector"])
        for row in rows:
            copy.write_row(row)
