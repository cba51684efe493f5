"""Sessions and API tokens that can be revoked (issue 18, finding 1), argon2 on every sign-in
path (finding 3): logout, a password change, deactivation and an admin's "sign out
everywhere" end every cookie and token made before, and reactivating revives none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import User
from app.platform import security
from app.users import service
from app.users.service import authenticate, create_token
from tests.factories import make_user
from tests.web.test_pages import csrf_from, sign_in

API = "/api/v1/datasets"
ROOT = Path(__file__).resolve().parents[2]


def signed_in(client: TestClient) -> bool:
    """True when the client's cookie signs someone in."""
    return client.get("/datasets", follow_redirects=False).status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_copy_of_the_cookie_is_refused_after_logout(client: TestClient, session: Session) -> None:
    token = sign_in(client, make_user(session, "annotator"))
    copy = dict(client.cookies)
    assert signed_in(client)
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    client.cookies.clear()
    client.cookies.update(copy)  # the attacker replays the cookie taken before logout
    assert not signed_in(client)


def test_a_password_change_ends_old_sessions_and_tokens(
    client: TestClient, session: Session
) -> None:
    user = make_user(session, "lead")
    old_token = create_token(session, user)
    sign_in(client, user)
    assert client.get(API, headers=bearer(old_token)).status_code == 200
    service.set_password(user, "a new password")
    session.flush()
    assert not signed_in(client)
    assert client.get(API, headers=bearer(old_token)).status_code == 401
    new_token = create_token(session, user)  # made after the change: works
    assert client.get(API, headers=bearer(new_token)).status_code == 200
    sign_in(client, user, "a new password")
    assert signed_in(client)


def test_reactivating_revives_no_session_or_token(client: TestClient, session: Session) -> None:
    admin = make_user(session, "admin")
    user = make_user(session, "lead")
    old_token = create_token(session, user)
    sign_in(client, user)
    service.set_active(session, user, False, admin)
    session.flush()
    assert not signed_in(client)
    service.set_active(session, user, True, admin)
    session.flush()
    assert not signed_in(client)
    assert client.get(API, headers=bearer(old_token)).status_code == 401


def test_an_admin_signs_a_user_out_everywhere(client: TestClient, session: Session) -> None:
    user = make_user(session, "lead")
    admin = make_user(session, "admin")
    old_token = create_token(session, user)
    sign_in(client, user)
    user_cookie = dict(client.cookies)
    client.cookies.clear()
    csrf = sign_in(client, admin)
    assert "Sign out everywhere" in client.get(f"/admin/users/{user.id}").text
    response = client.post(
        f"/admin/users/{user.id}/sign-out", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    assert signed_in(client)  # the admin's own session is another user's: untouched
    client.cookies.clear()
    client.cookies.update(user_cookie)
    assert not signed_in(client)
    assert client.get(API, headers=bearer(old_token)).status_code == 401


def test_signing_out_everywhere_needs_an_admin(client: TestClient, session: Session) -> None:
    victim = make_user(session, "lead")
    csrf = sign_in(client, make_user(session, "lead"))
    response = client.post(
        f"/admin/users/{victim.id}/sign-out", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 403
    session.refresh(victim)
    assert victim.session_version == 1


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting its verifications."""

    calls = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.calls += 1
        return super().verify(hash, password)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CountingHasher]]:
    CountingHasher.calls = 0
    monkeypatch.setattr(security, "_hasher", CountingHasher())
    yield CountingHasher


def test_every_sign_in_path_runs_argon2(session: Session, counting: type[CountingHasher]) -> None:
    admin = make_user(session, "admin")
    active = make_user(session, "annotator")
    inactive = make_user(session, "annotator")
    service.set_active(session, inactive, False, admin)
    no_password = service.create_user(session, "nopass-user", "annotator")
    cases: list[tuple[str, str, User | None]] = [
        (active.name, "correct horse", active),
        (active.name, "wrong password", None),
        ("nobody-by-this-name", "correct horse", None),
        (inactive.name, "correct horse", None),  # the right password of a deactivated account
        (no_password.name, "correct horse", None),
    ]
    for name, password, expected in cases:
        before = counting.calls
        assert authenticate(session, name, password) is expected
        assert counting.calls == before + 1, name


def test_the_cookie_is_secure_when_https_only_is_set(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.entrypoints.web import create_app
    from app.platform.config import get_settings
    from app.platform.db import get_session

    monkeypatch.setattr(get_settings(), "session_https_only", True)
    app = create_app()

    def shared_session() -> Iterator[Session]:
        yield session
        session.commit()

    app.dependency_overrides[get_session] = shared_session
    with TestClient(app, base_url="https://testserver") as https:
        user = make_user(session, "annotator")
        response = https.post(
            "/login",
            data={
                "name": user.name,
                "password": "correct horse",
                "csrf_token": csrf_from(https.get("/login").text),
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()


def test_the_compose_file_marks_cookies_secure_by_default() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    setting = compose["x-sift-env"]["SIFT_SESSION_HTTPS_ONLY"]
    assert setting == "${SIFT_SESSION_HTTPS_ONLY:-true}"
