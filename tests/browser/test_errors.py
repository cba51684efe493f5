"""An htmx action that fails shows why on the page, next to what was clicked: a refusal from
the server (a job removed meanwhile: 404), a database lock held past the lock timeout (503 with
Retry-After) and a request that never reaches the server. Before static/errors.js, each of
these showed nothing but a line in the browser console."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, delete, text
from sqlalchemy.orm import Session

from app.models import Job, JobState
from tests.browser.conftest import errors_of, screenshot

# What a failed htmx request leaves in the console besides our message: htmx's own log lines
# and the browser's note of the failed request.
EXPECTED_NOISE = (
    "Response Status Error Code",
    "htmx:sendError",
    "htmx:afterRequest",
    " for http",
    "failed: http",
)


def paused_job(db: Callable[[], AbstractContextManager[Session]]) -> int:
    """A job waiting for a bigger budget: the jobs page offers Cancel (and does not poll for it)."""
    with db() as session:
        job = Job(kind="score", queue="io", params={}, state=JobState.PAUSED_BUDGET.value)
        session.add(job)
        session.flush()
        return job.id


def cancel_button(page: Any, job_id: int) -> Any:
    return page.locator(f'form[action="/jobs/{job_id}/cancel"] button')


def message_above_jobs(page: Any) -> Any:
    """The error message shown just above the jobs table (the request's target)."""
    message = page.locator(".htmx-error").first
    message.wait_for(state="visible")
    assert page.evaluate("document.querySelector('.htmx-error').nextElementSibling.id") == "jobs"
    return message


def unexpected(page: Any) -> list[str]:
    return [e for e in errors_of(page) if not any(n in e for n in EXPECTED_NOISE)]


def test_a_refused_cancel_shows_its_reason_on_the_page(
    page_as: Callable[..., Any], db: Callable[[], AbstractContextManager[Session]]
) -> None:
    job_id = paused_job(db)
    page = page_as("lead")
    page.goto("/jobs")
    with db() as session:  # someone else removes it meanwhile
        session.execute(delete(Job).where(Job.id == job_id))
    cancel_button(page, job_id).click()
    message = message_above_jobs(page)
    assert message.inner_text().startswith(f"Error 404 · no job {job_id}")
    assert message.is_visible()
    screenshot(page, "htmx-error")
    message.get_by_role("button", name="dismiss").click()
    assert page.locator(".htmx-error").count() == 0
    assert unexpected(page) == []


def test_a_cancel_held_up_by_a_lock_answers_503_on_the_page_and_works_after(
    page_as: Callable[..., Any],
    db: Callable[[], AbstractContextManager[Session]],
    db_engine: Engine,
) -> None:
    job_id = paused_job(db)
    page = page_as("lead")
    page.goto("/jobs")
    with db_engine.connect() as holder, holder.begin():
        # A transaction that holds the jobs table past the server's lock timeout (5 s).
        holder.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
        with page.expect_response(f"**/jobs/{job_id}/cancel", timeout=20_000) as answer:
            cancel_button(page, job_id).click()
        assert answer.value.status == 503
        assert answer.value.headers["retry-after"] == "1"
    message = message_above_jobs(page)
    assert message.inner_text().startswith("Error 503 · the database is busy: try again")

    cancel_button(page, job_id).click()  # the lock is gone: it goes through, the error goes
    page.locator(".htmx-error").first.wait_for(state="detached")
    with db() as session:
        assert session.get(Job, job_id).state == JobState.CANCELLED.value  # type: ignore[union-attr]
    assert unexpected(page) == []


def test_a_request_that_never_reaches_the_server_says_so(
    page_as: Callable[..., Any], db: Callable[[], AbstractContextManager[Session]]
) -> None:
    job_id = paused_job(db)
    page = page_as("lead")
    page.goto("/jobs")
    page.route(f"**/jobs/{job_id}/cancel", lambda route: route.abort("connectionrefused"))
    cancel_button(page, job_id).click()
    message = message_above_jobs(page)
    assert message.inner_text().startswith("Sift did not answer")
    assert unexpected(page) == []
