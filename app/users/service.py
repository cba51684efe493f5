"""Accounts and API tokens."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiToken, Role, User
from app.models.base import utcnow
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.platform.security import hash_password, hash_token, new_token, verify_password


def get_user(session: Session, name: str) -> User:
    """The user called `name`; NotFound otherwise."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user called {name!r}")
    return user


def user_exists(session: Session, name: str) -> bool:
    """True when an account of this name exists (active or not)."""
    return session.scalar(select(User.id).where(User.name == name)) is not None


def create_user(session: Session, name: str, role: str, password: str | None = None) -> User:
    """A new user; the name must be free and the role known."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a user name must be 1 to 100 characters")
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"unknown role {role!r}: choose admin, lead or annotator")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user called {name!r} exists already")
    user = User(name=name, role=role, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def generate_password() -> str:
    """A random password for an account created without one."""
    return secrets.token_urlsafe(12)


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None. Argon2 runs on every path (a
    dummy hash for an unknown name, a deactivated account or one without a password), so
    timing tells none of them apart from a wrong password."""
    user = session.scalar(select(User).where(User.name == name))
    password_hash = user.password_hash if user is not None and user.is_active else None
    return user if verify_password(password_hash, password) else None


def create_token(session: Session, user: User) -> str:
    """A new API token for `user`; only its hash is stored, so it is shown once."""
    token = new_token()
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=hash_token(token),
            prefix=token[:12],
            session_version=user.session_version,
        )
    )
    session.flush()
    return token


# ---------------------------------------------------------------- administration

MIN_PASSWORD = 8


def list_users(session: Session) -> list[User]:
    """Every account, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def get_user_by_id(session: Session, user_id: int) -> User:
    """The user with this id; NotFound otherwise."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _other_active_admins(session: Session, user: User) -> int:
    """Active admins besides `user`, counted under a row lock so that two admins demoting
    each other at the same moment cannot both succeed."""
    rows = session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True), User.id != user.id)
        .with_for_update()
    )
    return len(list(rows))


def _keep_an_admin(session: Session, user: User) -> None:
    if user.role == Role.ADMIN.value and user.is_active and not _other_active_admins(session, user):
        raise Conflict(f"{user.name} is the last active admin: make another admin first")


def set_role(session: Session, user: User, role: str) -> User:
    """Change a user's role; the last active admin keeps theirs."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"role: unknown role {role!r}", field="role")
    if role != Role.ADMIN.value:
        _keep_an_admin(session, user)
    user.role = role
    return user


def sign_out_everywhere(user: User) -> User:
    """End every browser session and API token of `user` at once: the session version they
    carry no longer matches. Tokens made afterwards work."""
    user.session_version = (user.session_version or 1) + 1
    return user


def set_active(session: Session, user: User, active: bool, actor: User) -> User:
    """Deactivate (signed out everywhere, tokens refused) or reactivate an account; nobody
    deactivates themselves, and the last active admin stays."""
    if not active:
        if user.id == actor.id:
            raise Conflict("you cannot deactivate yourself: ask another admin")
        _keep_an_admin(session, user)
        if user.is_active:
            sign_out_everywhere(user)  # reactivating later revives no session or token
    user.is_active = active
    return user


def check_password(password: str) -> str:
    """The password, if long enough to be given to someone; InvalidInput otherwise."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters", field="password")
    return password


def set_password(user: User, password: str | None) -> str:
    """Give `user` a new password (a generated one when none is given); returns it."""
    password = check_password(password or generate_password())
    user.password_hash = hash_password(password)
    sign_out_everywhere(user)  # sessions and tokens made under the old password end
    return password


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    """A user's API tokens, newest first (revoked ones too)."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list(session.scalars(query))


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of `user`'s tokens; revoking twice is not an error."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"no token {token_id} of {user.name}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
