"""Signing in and out in a real browser, and pages that run without a policy violation."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.models import User
from tests.browser.conftest import PASSWORD, errors_of, screenshot
from tests.factories import unique


@pytest.fixture
def visitor(db: Callable[[], AbstractContextManager[Session]]) -> User:
    """An annotator of this test's own: signing out ends every session of theirs (the version
    bump), and the package's signed-in annotator must stay signed in for the other tests."""
    from app.users.service import create_user

    with db() as session:
        return create_user(session, unique("annotator"), "annotator", PASSWORD)


def test_a_visitor_signs_in_and_out(page_as: Callable[..., Any], visitor: User) -> None:
    page = page_as(None)
    page.goto("/jobs")
    assert "/login" in page.url  # sent to sign in, and back afterwards
    screenshot(page, "login")
    page.fill("input[name=name]", visitor.name)
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.get_by_text("Wrong name or password.").is_visible()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs")
    assert page.locator(".who").inner_text().startswith(visitor.name)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto("/datasets")
    assert "/login" in page.url
    assert errors_of(page) == []


def test_each_role_is_signed_in(page_as: Callable[..., Any], users: dict[str, User]) -> None:
    for role, user in users.items():
        page = page_as(role)
        page.goto("/datasets")
        assert page.locator(".who").inner_text() == f"{user.name} {role}"
        assert errors_of(page) == []
