"""The admins' user pages, and what signing in guarantees: cookie flags, a fresh session,
one message for every failure, and a limit on failed attempts."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiToken, User
from app.users.service import authenticate
from app.users.sign_in_limits import LIMITS
from tests.factories import make_user
from tests.web.test_pages import HOSTILE, csrf_from, sign_in

SECRET = re.compile(r'<code class="secret">([^<]+)</code>')


@pytest.fixture
def admin(session: Session) -> User:
    return make_user(session, "admin")


def post(client: TestClient, url: str, token: str, **data: str):  # type: ignore[no-untyped-def]
    """A form post from the page (CSRF token included), without following redirects."""
    return client.post(url, data={"csrf_token": token, **data}, follow_redirects=False)


def test_only_admins_see_the_user_pages(client: TestClient, session: Session) -> None:
    for role in ("annotator", "lead"):
        client.cookies.clear()
        sign_in(client, make_user(session, role))
        assert client.get("/admin/users").status_code == 403
        assert client.get("/admin/users/1").status_code == 403
        assert 'href="/admin/users"' not in client.get("/datasets").text
    client.cookies.clear()
    assert client.get("/admin/users", follow_redirects=False).status_code == 303  # to sign in
    sign_in(client, make_user(session, "admin"))
    page = client.get("/admin/users")
    assert page.status_code == 200
    assert 'href="/admin/users"' in client.get("/datasets").text
    assert page.headers["cache-control"] == "no-store"


def test_non_admins_cannot_change_accounts(client: TestClient, session: Session) -> None:
    victim = make_user(session, "annotator")
    token = sign_in(client, make_user(session, "lead"))
    assert post(client, "/admin/users", token, name="x", role="admin").status_code == 403
    assert post(client, f"/admin/users/{victim.id}/role", token, role="admin").status_code == 403
    assert post(client, f"/admin/users/{victim.id}/tokens", token).status_code == 403
    session.refresh(victim)
    assert victim.role == "annotator"
    assert session.scalar(select(User).where(User.name == "x")) is None


def test_an_admin_creates_a_user_with_a_generated_password(
    client: TestClient, session: Session, admin: User
) -> None:
    token = sign_in(client, admin)
    response = post(client, "/admin/users", token, name="maria", role="lead")
    assert response.status_code == 200
    password = SECRET.search(response.text)
    assert password is not None
    created = session.scalar(select(User).where(User.name == "maria"))
    assert created is not None and created.role == "lead"
    assert authenticate(session, "maria", password.group(1)) is created
    assert SECRET.search(client.get("/admin/users").text) is None  # shown once only


def test_creating_a_user_explains_what_is_wrong(
    client: TestClient, session: Session, admin: User
) -> None:
    token = sign_in(client, admin)
    taken = post(
        client, "/admin/users", token, name=admin.name, role="lead", password="long enough"
    )
    assert taken.status_code == 422 and "exists already" in taken.text
    role = post(client, "/admin/users", token, name="newbie", role="boss", password="long enough")
    assert role.status_code == 422 and "unknown role" in role.text
    short = post(client, "/admin/users", token, name="newbie", role="lead", password="short")
    assert short.status_code == 422 and "password: at least 8 characters" in short.text
    assert 'value="newbie"' in short.text  # what was typed stays in the form
    assert session.scalar(select(User).where(User.name == "newbie")) is None
    assert post(client, "/admin/users", "", name="newbie", role="lead").status_code == 403


def test_an_admin_changes_a_role_and_resets_a_password(
    client: TestClient, session: Session, admin: User
) -> None:
    target = make_user(session, "annotator")
    token = sign_in(client, admin)
    response = post(client, f"/admin/users/{target.id}/role", token, role="lead")
    assert response.status_code == 303
    session.refresh(target)
    assert target.role == "lead"
    reset = post(client, f"/admin/users/{target.id}/password", token)
    password = SECRET.search(reset.text)
    assert password is not None
    assert authenticate(session, target.name, "correct horse") is None
    assert authenticate(session, target.name, password.group(1)) is target
    chosen = post(client, f"/admin/users/{target.id}/password", token, password="a chosen one")
    assert chosen.status_code == 200 and SECRET.search(chosen.text) is None
    assert authenticate(session, target.name, "a chosen one") is target
    assert client.get("/admin/users/999999999").status_code == 404
    assert post(client, "/admin/users/999999999/role", token, role="lead").status_code == 404


def test_a_deactivated_user_is_signed_out_and_their_tokens_refused(
    client: TestClient, session: Session, admin: User
) -> None:
    target = make_user(session, "lead")
    other = TestClient(client.app)
    sign_in(other, target)
    token = sign_in(client, admin)
    created = post(client, f"/admin/users/{target.id}/tokens", token)
    api_token = SECRET.search(created.text)
    assert api_token is not None
    headers = {"authorization": f"Bearer {api_token.group(1)}"}
    assert other.get("/api/v1/datasets", headers=headers).status_code == 200
    assert (
        post(client, f"/admin/users/{target.id}/active", token, active="false").status_code == 303
    )
    assert other.get("/datasets", follow_redirects=False).status_code == 303  # to sign in
    assert other.get("/api/v1/datasets", headers=headers).status_code == 401
    assert post(client, f"/admin/users/{target.id}/active", token, active="true").status_code == 303
    # Reactivating revives neither the old session nor the old token (issue 18, finding 1).
    assert other.get("/datasets", follow_redirects=False).status_code == 303
    assert other.get("/api/v1/datasets", headers=headers).status_code == 401


def test_tokens_are_shown_once_and_revoked(
    client: TestClient, session: Session, admin: User
) -> None:
    target = make_user(session, "annotator")
    token = sign_in(client, admin)
    created = post(client, f"/admin/users/{target.id}/tokens", token)
    api_token = SECRET.search(created.text)
    assert api_token is not None
    page = client.get(f"/admin/users/{target.id}").text
    assert api_token.group(1) not in page and api_token.group(1)[:12] in page
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == target.id))
    assert row is not None
    headers = {"authorization": f"Bearer {api_token.group(1)}"}
    assert client.get("/api/v1/datasets", headers=headers).status_code == 200
    revoke = f"/admin/users/{target.id}/tokens/{row.id}/revoke"
    assert post(client, revoke, token).status_code == 303
    assert post(client, revoke, token).status_code == 303  # twice is not an error
    assert client.get("/api/v1/datasets", headers=headers).status_code == 401
    other = make_user(session, "annotator")
    assert post(client, f"/admin/users/{other.id}/tokens/{row.id}/revoke", token).status_code == 404


def test_the_last_active_admin_cannot_lock_everyone_out(
    client: TestClient, session: Session
) -> None:
    for existing in session.scalars(select(User).where(User.role == "admin")):
        existing.is_active = False  # admins of other tests in this database do not count
    admin = make_user(session, "admin")
    token = sign_in(client, admin)
    demote = post(client, f"/admin/users/{admin.id}/role", token, role="lead")
    assert demote.status_code == 409 and "last active admin" in demote.text
    itself = post(client, f"/admin/users/{admin.id}/active", token, active="false")
    assert itself.status_code == 409 and "cannot deactivate yourself" in itself.text
    session.refresh(admin)
    assert admin.role == "admin" and admin.is_active
    second = make_user(session, "admin")
    assert post(client, f"/admin/users/{admin.id}/role", token, role="lead").status_code == 303
    session.refresh(admin)
    assert admin.role == "lead"
    # Now a lead: the admin pages are closed to them, and the other admin is the last one.
    assert client.get("/admin/users").status_code == 403
    client.cookies.clear()
    token = sign_in(client, second)
    last = post(client, f"/admin/users/{second.id}/role", token, role="annotator")
    assert last.status_code == 409


def test_user_names_are_escaped(client: TestClient, session: Session, admin: User) -> None:
    hostile = make_user(session, "annotator")
    hostile.name = HOSTILE
    session.flush()
    sign_in(client, admin)
    for page in (client.get("/admin/users"), client.get(f"/admin/users/{hostile.id}")):
        assert "<script>window" not in page.text
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt; {{7*7}}" in page.text


def test_the_session_cookie_is_http_only_and_same_site(
    client: TestClient, session: Session
) -> None:
    user = make_user(session, "annotator")
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login",
        data={"name": user.name, "password": "correct horse", "csrf_token": token},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_signing_in_starts_a_fresh_session(
    client: TestClient, session: Session, admin: User
) -> None:
    client.get("/login")
    before = client.cookies.get("sift_session")
    sign_in(client, admin)
    after = client.cookies.get("sift_session")
    assert before and after and before != after
    # A cookie captured before signing in (a fixation attempt) stays anonymous.
    attacker = TestClient(client.app)
    attacker.cookies.set("sift_session", before)
    assert attacker.get("/datasets", follow_redirects=False).status_code == 303


def test_failed_sign_ins_are_limited_per_name_and_address(
    client: TestClient, session: Session
) -> None:
    user = make_user(session, "annotator")
    token = csrf_from(client.get("/login").text)
    for _ in range(LIMITS.per_name_and_address):
        wrong = post(client, "/login", token, name=user.name, password="guess")
        assert wrong.status_code == 400 and "Wrong name or password." in wrong.text
    locked = post(client, "/login", token, name=user.name, password="correct horse")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in locked.text
    assert client.get("/datasets", follow_redirects=False).status_code == 303
    # Another name from the same address is not affected.
    other = make_user(session, "annotator")
    assert (
        post(client, "/login", token, name=other.name, password="correct horse").status_code == 303
    )
