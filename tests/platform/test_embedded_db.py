"""The embedded PostgreSQL server: one per data folder, shared by Sift's processes, stopped by
the last one, and a clear error for a folder it cannot use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app.platform import embedded_db
from app.platform.embedded_db import (
    TUNING_FILE,
    EmbeddedDatabaseError,
    MiB,
    ensure_database,
    leave_server,
    pg_folder,
    start_server,
    to_sqlalchemy,
)
from tests.conftest import ROOT
from tests.services import embedded_data_dir


@pytest.fixture
def folder() -> Iterator[Path]:
    """A fresh data folder whose server, if this process started one, is stopped after."""
    folder = embedded_data_dir()
    yield folder
    leave_server(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _server_pid(folder: Path) -> int | None:
    try:
        return int((pg_folder(folder) / "postmaster.pid").read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return None


def _running(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def test_a_command_that_started_the_server_alone_stops_it(folder: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from app.platform.embedded_db import embedded_url;"
        "print(embedded_url(Path(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.startswith("postgresql+psycopg://postgres:@/sift?host=")
    assert (pg_folder(folder) / "PG_VERSION").read_text().strip() == "18"
    deadline = time.monotonic() + 10
    while _running(_server_pid(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(_server_pid(folder))


def test_processes_share_one_server_and_the_last_one_stops_it(folder: Path) -> None:
    uri = start_server(pg_folder(folder))  # this process: like `sift serve`
    pid = _server_pid(folder)
    code = (
        "import sys; from pathlib import Path; from app.platform.embedded_db import start_server;"
        "print(start_server(Path(sys.argv[1])))"
    )
    joined = subprocess.run(
        [sys.executable, "-c", code, str(pg_folder(folder))],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert joined.stdout.strip() == uri  # a command joins the running server...
    assert _running(pid) and _server_pid(folder) == pid  # ...and leaves it running
    ensure_database(uri, "sift")
    with psycopg.connect(uri.replace("/postgres?", "/sift?")) as conn:
        found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        assert found.fetchone() == (1,)  # pgvector comes with the wheel
    leave_server(folder)  # the last one out stops it
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid)


def test_two_data_folders_run_two_servers(folder: Path) -> None:
    other = embedded_data_dir()
    try:
        first = start_server(pg_folder(folder))
        second = start_server(pg_folder(other))
        assert first != second
        for uri in (first, second):
            with psycopg.connect(uri) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        leave_server(other)
        shutil.rmtree(other, ignore_errors=True)


def test_a_killed_process_does_not_keep_the_server_up(folder: Path) -> None:
    start_server(pg_folder(folder))
    handles = pg_folder(folder) / ".handle_pids.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    handles.write_text(json.dumps([dead.pid, *json.loads(handles.read_text())]))
    start_server(pg_folder(folder))  # joining forgets the dead
    assert dead.pid not in json.loads(handles.read_text())


def test_a_folder_of_other_files_is_refused(folder: Path) -> None:
    pg_folder(folder).mkdir(parents=True)
    (pg_folder(folder) / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedDatabaseError, match="holds files but no PostgreSQL data"):
        start_server(pg_folder(folder))


def test_data_of_another_postgresql_version_is_refused(folder: Path) -> None:
    pg_folder(folder).mkdir(parents=True)
    (pg_folder(folder) / "PG_VERSION").write_text("16\n")
    with pytest.raises(
        EmbeddedDatabaseError, match="holds PostgreSQL 16 data; this Sift runs PostgreSQL 18"
    ):
        start_server(pg_folder(folder))


def test_a_stale_pid_file_naming_another_process_is_refused(folder: Path) -> None:
    start_server(pg_folder(folder))
    leave_server(folder)
    deadline = time.monotonic() + 10
    while (pg_folder(folder) / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    # As after a crash: the file names a pid that another program now has (this one).
    (pg_folder(folder) / "postmaster.pid").write_text(f"{os.getpid()}\n")
    with pytest.raises(EmbeddedDatabaseError, match="is stale: process"):
        start_server(pg_folder(folder))


def test_the_url_is_for_sqlalchemy_and_psycopg() -> None:
    uri = "postgresql://postgres:@/postgres?host=/tmp/x/pg"
    assert to_sqlalchemy(uri, "sift") == "postgresql+psycopg://postgres:@/sift?host=/tmp/x/pg"


def test_the_server_keeps_a_quarter_of_the_memory_as_its_page_cache(folder: Path) -> None:
    uri = start_server(pg_folder(folder))
    with psycopg.connect(uri) as conn:
        row = conn.execute(
            "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
    assert row is not None
    quarter = min(max(embedded_db._memory_bytes() // 4, 128 * MiB), 8192 * MiB)
    assert row[0] == quarter // MiB * MiB
    leave_server(folder)
    start_server(pg_folder(folder))  # a second start includes the file once
    conf = (pg_folder(folder) / "postgresql.conf").read_text()
    assert conf.count(f"include_if_exists = '{TUNING_FILE}'") == 1
