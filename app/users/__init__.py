"""Accounts, roles, sign-in and API tokens."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "users",
    pages="app.users.pages:router",
    commands="app.users.commands:commands",
)
