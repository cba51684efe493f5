"""Sessions and API tokens that can be revoked: a per-user session version

Revision ID: 0011
Revises: 0010

`users.session_version` is stored in the session cookie at sign-in and `api_tokens.session_version`
records it when a token is made; a cookie or token of another version is refused. Logout, a
password change, deactivation and an admin's "sign out everywhere" bump it. Existing rows start
at 1, so sessions and tokens made before the upgrade keep working until the first bump
(cookies without a version are refused, so everyone signs in once more).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("session_version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "api_tokens",
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
    )


def downgrade() -> None:
    op.drop_column("api_tokens", "session_version")
    op.drop_column("users", "session_version")
