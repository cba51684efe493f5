"""Applying the schema's migrations (Alembic) to the configured database."""

from __future__ import annotations

from app.platform.resources import resource


def upgrade_database() -> None:
    """Apply every migration to the configured database."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(resource("alembic.ini")))
    config.set_main_option("script_location", str(resource("migrations")))
    command.upgrade(config, "head")
