"""People and the tokens they use on the HTTP API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, false, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, BigId, CreatedMixin, IdMixin, StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LEAD = "lead"
    ANNOTATOR = "annotator"


ROLE_RANK = {Role.ANNOTATOR: 0, Role.LEAD: 1, Role.ADMIN: 2}


class User(IdMixin, CreatedMixin, Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20), default=Role.ANNOTATOR.value)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Stored in the session cookie at sign-in and in each API token at its creation; a cookie
    # or token of another version is refused. Bumped by logout, a password change,
    # deactivation and "sign out everywhere", so every older session and token ends at once.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    def has_role(self, role: Role) -> bool:
        """True when this user's role is at least `role` (admin > lead > annotator)."""
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[role]


class ApiToken(IdMixin, CreatedMixin, Base):
    __tablename__ = "api_tokens"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    # Only a SHA-256 of the token is kept; the token itself is shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The user's session_version when the token was made: valid only while they are equal.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    user: Mapped[User] = relationship(back_populates="tokens")


class SignInAttempt(IdMixin, Base):
    """A sign-in that failed (or is being checked), kept for the sign-in limits' window: in the
    database, so that every web process counts the same attempts."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_name", "name", "attempted_at"),
        Index("ix_sign_in_attempts_address", "address", "attempted_at"),
        Index("ix_sign_in_attempts_attempted_at", "attempted_at"),
    )

    name: Mapped[str] = mapped_column(String(100))  # as typed, case-folded
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # False while the password is being checked; a success deletes the row instead.
    failed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
