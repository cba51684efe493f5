"""Browser tests: a live Sift server, headless Chromium driven by Playwright, a signed-in
browser context per role.

What the fixtures give (for any browser test, e.g. the annotator review flow):

- `live_server`: the base URL of uvicorn serving `app.entrypoints.web:create_app` in a subprocess, on a free
  port, against a PostgreSQL database of its own (`<SIFT_TEST_COMMITTED_DATABASE>_browser`,
  migrated and emptied once for the browser tests). No Celery worker runs: pages that start a job only
  queue it; `run_jobs()` runs what is queued, in a process of its own, as a worker would.
- `db`: `with db() as session:` a committed transaction on that database, to create rows through
  the services (datasets, examples, collections...) before a page shows them.
- `users`: one user of each role (annotator, lead, admin), created through app/users/service.py;
  `users["lead"].name`, password `PASSWORD`.
- `page_as(role)`: a new page in a fresh browser context already signed in as that role (the
  session cookie of a sign-in through the login form, taken once); `page_as(None)` is
  signed out. Every page records the console errors and uncaught exceptions it sees (a blocked
  inline script is one) in `errors_of(page)`.
- `screenshot(page, name)`: docs/screenshots/<name>.png when SIFT_SCREENSHOTS=1 (or
  SIFT_TEST_SCREENSHOTS=1), else nothing.

Tests here skip on a machine without Chromium or Playwright, and fail there instead when
SIFT_TEST_REQUIRE_SERVICES=1 (as in CI). Chromium is Debian's (/usr/bin/chromium, or
SIFT_TEST_CHROMIUM); Playwright never downloads browsers of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.models import Job, JobState, User
from app.platform.db import make_engine, session_factory
from tests.conftest import JOBS_DATABASE, ROOT, migrated_database
from tests.factories import unique
from tests.services import REQUIRED
from tests.web.live import clean_env, uvicorn_process, wait_until_up

# The fixtures here live as long as this folder's tests ("package" scope), not the whole
# session: while Playwright's sync API is open, an event loop runs in the main thread, and the
# rest of the suite calls asyncio.run().
CHROMIUM = os.environ.get("SIFT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery"
SCREENSHOTS = ROOT / "docs" / "screenshots"
# Read at import: the suite's settings fixture clears SIFT_ variables before the tests run.
TAKE_SCREENSHOTS = "1" in (
    os.environ.get("SIFT_SCREENSHOTS"),
    os.environ.get("SIFT_TEST_SCREENSHOTS"),
)
ROLES = ("annotator", "lead", "admin")
DATABASE = f"{JOBS_DATABASE}_browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder `browser`, so that `-m "not browser"` leaves them out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


def unavailable(reason: str) -> None:
    """Skip, or fail when the services are required."""
    if REQUIRED:
        pytest.fail(f"{reason} and SIFT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole test session."""
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def browser_database_url() -> str:
    """A migrated, empty PostgreSQL database for the live server."""
    return migrated_database(DATABASE)


@pytest.fixture(scope="package")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the live server (and of `run_jobs`): its database and data folder."""
    env = clean_env()
    env |= {
        "SIFT_DATABASE_URL": browser_database_url(),
        "SIFT_DATA_DIR": str(tmp_path_factory.mktemp("browser-data")),
        "SIFT_SECRET_KEY": "browser-tests-secret",
        "SIFT_LOG_LEVEL": "WARNING",
    }
    return env


@pytest.fixture(scope="package")
def server_process(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """uvicorn serving the app in a subprocess, starting (it takes seconds to import the app)."""
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    with uvicorn_process(server_env, log) as (base, process):
        yield base, process, log


@pytest.fixture(scope="package")
def live_server(server_process: tuple[str, subprocess.Popen[bytes], Path]) -> str:
    """The base URL of the live server, once it answers."""
    base, process, log = server_process
    wait_until_up(base, process, log, timeout_s=120)
    return base


@pytest.fixture(scope="package")
def db_engine(server_env: dict[str, str]) -> Iterator[Engine]:
    """An engine on the live server's database."""
    engine = make_engine(server_env["SIFT_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def db(db_engine: Engine) -> Callable[[], AbstractContextManager[Session]]:
    """`with db() as session:` one committed transaction on the live server's database."""

    @contextmanager
    def unit() -> Iterator[Session]:
        with session_factory(db_engine)() as session, session.begin():
            yield session

    return unit


@pytest.fixture(scope="package")
def users(db: Callable[[], AbstractContextManager[Session]]) -> dict[str, User]:
    """One user of each role, created through the users service; password PASSWORD."""
    from app.users.service import create_user

    with db() as session:
        return {role: create_user(session, unique(role), role, PASSWORD) for role in ROLES}


@pytest.fixture(scope="package")
def signed_in_states(
    server_process: Any, browser: Any, users: dict[str, User], live_server: str
) -> dict[str, Any]:
    """Each role's browser storage (its session cookie) after signing in through the form.
    (The server starts first, so that Chromium and the users are made while it imports.)"""
    states = {}
    for role, user in users.items():
        context = browser.new_context(base_url=live_server)
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=name]", user.name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        states[role] = context.storage_state()
        context.close()
    return states


_ERRORS: dict[int, list[str]] = {}


def errors_of(page: Any) -> list[str]:
    """The console errors and uncaught exceptions a page has seen so far."""
    return _ERRORS.setdefault(id(page), [])


def watch(page: Any) -> None:
    """Record on the page what would show a broken page: console errors (a script or style the
    policy blocked is one), uncaught exceptions, and sub-resources that failed to load. A page
    answering 4xx is no error here: tests check statuses themselves."""
    seen = errors_of(page)

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.append(message.text)

    def response(answer: Any) -> None:
        if answer.status >= 400 and answer.request.resource_type != "document":
            seen.append(f"{answer.status} for {answer.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.append(f"uncaught: {error}"))
    page.on("response", response)

    def failed(request: Any) -> None:
        if request.failure != "net::ERR_ABORTED":  # left behind by navigating away: harmless
            seen.append(f"failed: {request.url} ({request.failure})")

    page.on("requestfailed", failed)


@pytest.fixture
def page_as(
    browser: Any, live_server: str, signed_in_states: dict[str, Any]
) -> Iterator[Callable[[str | None], Any]]:
    """`page_as("lead")`: a page in a fresh context signed in as that role (None: signed out)."""
    contexts = []

    def open_page(role: str | None) -> Any:
        state = signed_in_states[role] if role else None
        context = browser.new_context(
            base_url=live_server, storage_state=state, accept_downloads=True
        )
        context.set_default_timeout(15_000)  # fail in seconds, not half a minute
        contexts.append(context)
        page = context.new_page()
        watch(page)
        return page

    yield open_page
    for context in contexts:
        for page in context.pages:
            _ERRORS.pop(id(page), None)
        context.close()


def screenshot(page: Any, name: str) -> None:
    """Save docs/screenshots/<name>.png for the README, when SIFT_SCREENSHOTS=1."""
    if TAKE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def run_jobs(
    server_env: dict[str, str], db: Callable[[], AbstractContextManager[Session]]
) -> Callable[[], dict[int, str]]:
    """`run_jobs()`: run every queued job in a process of its own, as a worker would; their
    states by id."""

    def run() -> dict[int, str]:
        with db() as session:
            queued = session.scalars(
                select(Job.id).where(Job.state == JobState.QUEUED.value).order_by(Job.id)
            ).all()
        if queued:
            script = (
                "import sys\n"
                "from app.entrypoints.domains import load_every_job_kind\n"
                "from app.platform.jobs.runner import execute_job\n"
                "load_every_job_kind()\n"
                "for job_id in map(int, sys.argv[1:]):\n"
                "    execute_job(job_id, inline=True)\n"
            )
            subprocess.run(
                [sys.executable, "-c", script, *map(str, queued)],
                cwd=ROOT, env=server_env, check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        with db() as session:
            rows = session.execute(select(Job.id, Job.state).where(Job.id.in_(queued))).all()
        return {job_id: state for job_id, state in rows}

    return run
