"""PostgreSQL stopped under a live server: every request answers 503 with Retry-After (JSON for
the API, a page for the browser, a message fragment for htmx), none a 500 or a dropped
connection; once the database is back, the same requests work again without a restart."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy.orm import Session

from app.platform.db import make_engine
from app.users.service import create_token, create_user
from tests.conftest import alembic_config
from tests.services import embedded_data_dir
from tests.web.live import live_server, server_env

PASSWORD = "correct horse"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Database:
    """A PostgreSQL server of this test's own (so that it can be stopped) and its URL."""

    server: Any
    url: str

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def database() -> Iterator[Database]:
    """A migrated database on a server started for this test alone, in a folder outside
    pytest's (see `tests.services.embedded_data_dir`: another pytest run on the machine once
    took the server's access to its folder away, and it did not start)."""
    from app.platform.embedded_db import _wheel, ensure_database, to_sqlalchemy

    folder = embedded_data_dir()
    server = _wheel().get_server(folder / "pg", cleanup_mode="stop")
    ensure_database(server.get_uri(), "sift")
    url = to_sqlalchemy(server.get_uri(), "sift")
    command.upgrade(alembic_config(url), "head")
    yield Database(server, url)
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def signed_in(base: str, name: str) -> httpx.Client:
    """A browser-like client with a signed-in session cookie."""
    browser = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    csrf = CSRF_FIELD.search(browser.get("/login").text)
    assert csrf is not None
    answer = browser.post(
        "/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf.group(1)}
    )
    assert answer.status_code == 303, answer.text
    return browser


def test_a_database_outage_answers_503_and_the_server_recovers(
    database: Database, tmp_path: Path
) -> None:
    engine = make_engine(database.url)
    with Session(engine) as session, session.begin():
        lead = create_user(session, "outage-lead", "lead", PASSWORD)
        token = create_token(session, lead)
    engine.dispose()
    env = server_env(database.url, tmp_path / "data")
    with live_server(env, tmp_path / "uvicorn.log") as base:
        api = httpx.Client(base_url=base, timeout=30, headers={"authorization": f"Bearer {token}"})
        browser = signed_in(base, "outage-lead")
        assert api.get("/api/v1/datasets").status_code == 200
        assert browser.get("/jobs").status_code == 200

        database.stop()
        down = api.get("/api/v1/datasets")
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "5"
        assert down.json()["error"] == "the database is not answering: try again in a moment"
        page = browser.get("/jobs")
        assert page.status_code == 503 and "<html" in page.text
        assert "the database is not answering" in page.text
        fragment = browser.get("/jobs", headers={"hx-request": "true"})
        assert fragment.status_code == 503 and "data-error-message" in fragment.text
        assert fragment.headers["retry-after"] == "5"
        with ThreadPoolExecutor(20) as pool:  # many at once: each answered, none hangs
            statuses = list(pool.map(lambda _: api.get("/api/v1/jobs").status_code, range(40)))
        assert set(statuses) == {503}

        database.start()
        assert api.get("/api/v1/datasets").status_code == 200
        assert browser.get("/jobs").status_code == 200
        api.close()
        browser.close()
    assert "Traceback" not in (tmp_path / "uvicorn.log").read_text()
