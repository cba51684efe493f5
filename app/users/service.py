"""Accounts and API tokens."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.security import hash_password, hash_token, new_token, verify_password
from app.models import ApiToken, Role, User


def get_user(session: Session, name: str) -> User:
    """The user called `name`; NotFound otherwise."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user called {name!r}")
    return user


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


# Checked against when the name is unknown, so that timing does not reveal which names exist.
_DUMMY_HASH = hash_password("not-a-real-password")


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


def create_token(session: Session, user: User) -> str:
    """A new API token for `user`; only its hash is stored, so it is shown once."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:12]))
    session.flush()
    return token
