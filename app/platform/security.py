"""Passwords, API tokens, CSRF tokens and the dependencies that enforce roles."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlalchemy import Engine, func, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.models import ApiToken, Role, User
from app.platform.db import get_session, transaction
from app.platform.errors import Forbidden, Unauthorized

_hasher = PasswordHasher()
TOKEN_PREFIX = "sift_"
log = logging.getLogger(__name__)
# A token's last use is a hint for people (the users page shows it), not an audit record: it is
# written at most once a minute per token. Written on every request, it made every client of a
# shared token queue on one row lock (issue 12).
TOKEN_TOUCH_INTERVAL_S = 60.0
# The write gives up at once rather than wait behind another writer of the same row.
TOKEN_TOUCH_LOCK_TIMEOUT = "100ms"


# argon2 takes 64 MiB and four threads for a few hundred milliseconds: a burst of sign-ins (a
# team arriving at nine) took the memory and starved the requests holding locks, until the
# sign-in limits' lock timed out (503). At most one hash per core runs; the rest wait a turn.
_HASHING = threading.BoundedSemaphore(os.cpu_count() or 1)


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    with _HASHING:
        return _hasher.hash(password)


# Checked against when there is no usable hash (unknown name, deactivated account, no password),
# so that every sign-in runs argon2 and timing does not tell those cases apart.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches the stored hash. Without a hash argon2 still runs
    (against a dummy) and the answer is False."""
    with _HASHING:
        if not password_hash:
            with contextlib.suppress(VerificationError, InvalidHashError):
                _hasher.verify(_DUMMY_HASH, password)
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


def active_token(session: Session, token: str) -> ApiToken | None:
    """The unrevoked token row of an active user, made under the user's current session
    version (a password change, deactivation or "sign out everywhere" ends it), or None.
    Reads only."""
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None or not row.user.is_active:
        return None
    if row.session_version != row.user.session_version:
        return None
    return row


def user_for_token(session: Session, token: str) -> User | None:
    """The active user an API token belongs to, or None."""
    row = active_token(session, token)
    return row.user if row is not None else None


class TouchThrottle:
    """Which tokens this process should record a use of now: each at most once per interval.
    In memory, per process; the UPDATE's own condition keeps several processes to about one
    write a minute too."""

    def __init__(self, interval_s: float = TOKEN_TOUCH_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key: str, now: float | None = None) -> bool:
        """True (and counted as written) when `key` was not written in the last interval."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                return False
            if len(self._last) > 10_000:  # forget tokens not seen for an interval
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval_s}
            self._last[key] = now
            return True


def touch_token(engine: Engine, token_id: int) -> None:
    """Record that a token was used, in a short transaction of its own, unless another process
    did within the minute. Never waits on a lock and never fails: a use not recorded now is
    recorded by the next request after the interval."""
    stale = or_(
        ApiToken.last_used_at.is_(None),
        ApiToken.last_used_at < func.now() - timedelta(seconds=TOKEN_TOUCH_INTERVAL_S),
    )
    try:
        with transaction(engine) as session:
            session.execute(text(f"SET LOCAL lock_timeout = '{TOKEN_TOUCH_LOCK_TIMEOUT}'"))
            session.execute(text("SET LOCAL synchronous_commit = off"))  # a hint, not a record
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, stale)
                .values(last_used_at=func.now())
            )
    except SQLAlchemyError as exc:
        log.debug("last use of token %s not recorded: %s", token_id, exc)


_touches = TouchThrottle()
# One thread writes the touches, off the request's thread and transaction: a request never
# waits for it, and it takes at most one database connection at a time.
_toucher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sift-token-touch")


def api_user(request: Request, session: Session = Depends(get_session, scope="function")) -> User:
    """The user behind the request's bearer token; 401 without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required (sift token create USER)")
    row = active_token(session, token.strip())
    if row is None:
        raise Unauthorized("the bearer token is not valid")
    if _touches.due(row.token_hash):
        _toucher.submit(touch_token, session.get_bind().engine, row.id)
    return row.user


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
