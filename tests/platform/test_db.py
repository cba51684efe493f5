"""Every connection of Sift's engines waits for a lock only so long, and plans each run of a
statement for its own values (never PostgreSQL's generic plan of a prepared statement)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from app.platform.db import LOCK_TIMEOUT_MS


def test_connections_time_out_on_locks_and_plan_for_their_values(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        timeout = "SELECT setting::int FROM pg_settings WHERE name = 'lock_timeout'"
        assert conn.execute(text(timeout)).scalar() == LOCK_TIMEOUT_MS
