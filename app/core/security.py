"""Passwords, API tokens, CSRF tokens and the dependencies that enforce roles."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db import get_session
from app.core.errors import Forbidden, Unauthorized
from app.models import ApiToken, Role, User
from app.models.base import utcnow

_hasher = PasswordHasher()
TOKEN_PREFIX = "sift_"


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches the stored hash."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    """The SHA-256 under which an API token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    """A fresh random CSRF token for a browser session."""
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(expected and given and hmac.compare_digest(expected, given))


def user_for_token(session: Session, token: str) -> User | None:
    """The active user an API token belongs to, or None."""
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None or not row.user.is_active:
        return None
    row.last_used_at = utcnow()
    return row.user


def api_user(request: Request, session: Session = Depends(get_session, scope="function")) -> User:
    """The user behind the request's bearer token; 401 without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required (sift token create USER)")
    user = user_for_token(session, token.strip())
    if user is None:
        raise Unauthorized("the bearer token is not valid")
    return user


def require_api_role(role: Role) -> Callable[..., User]:
    """A dependency that admits API users whose role is at least `role`."""

    def dependency(user: User = Depends(api_user)) -> User:
        if not user.has_role(role):
            raise Forbidden(f"this needs the {role} role")
        return user

    return dependency


# Route parameters: the API caller, who must have at least this role.
ApiAnnotator = Annotated[User, Depends(require_api_role(Role.ANNOTATOR))]
ApiLead = Annotated[User, Depends(require_api_role(Role.LEAD))]
