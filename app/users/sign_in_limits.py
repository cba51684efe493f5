"""Limits on failed sign-ins, kept in the database so that every web process counts the same.

Three counts over a sliding window, each with its own limit: one name from one address (a
guesser at one account), one name from any address (a guesser spread over many addresses),
and one address across names (one password tried on many accounts). An attempt is recorded
before its password is checked, under a lock on its name and address, so that a burst of
parallel guesses cannot all slip in under the limit; a refused attempt is not recorded, so
waiting out the window always works. Per address, the limit counts failures; attempts still
being checked count only against a larger allowance, so that a team behind one address (an
office's NAT) can sign in at the same moment while a burst of guesses is still capped.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from app.models import SignInAttempt
from app.models.base import utcnow
from app.platform.db import side_transaction


@dataclass(frozen=True)
class Limits:
    """How many failures each count allows within `window`."""

    per_name_and_address: int = 5
    per_name: int = 20
    per_address: int = 30
    # Attempts from one address still being checked, beyond its failures: people signing in.
    in_flight_per_address: int = 100
    window: timedelta = timedelta(minutes=5)


LIMITS = Limits()
# How long a sign-in waits for its turn on its name's and address's locks.
QUEUE_TIMEOUT_S = 30
# Advisory-lock namespaces, so that a name and an address never share a lock by chance.
_NAME_LOCK, _ADDRESS_LOCK = 7301, 7302


def _key(text_: str) -> int:
    """A stable 32-bit key for an advisory lock."""
    return zlib.crc32(text_.encode()) - 2**31


def begin_attempt(session: Session, name: str, address: str, *, now: datetime | None = None) -> int:
    """Record an attempt to sign in as `name` from `address`, committed at once so that other
    processes count it, and return 0; or record nothing and return the seconds to wait when a
    limit is reached."""
    name, address = name.strip().casefold()[:100], address[:64]
    now = now or utcnow()
    with side_transaction(session) as side:
        # Name first, then address, always in this order: two attempts never wait on each other
        # in a circle. Held for the few milliseconds of this transaction; but everyone signing
        # in from one address (an office) queues on its lock, so the wait may be longer than
        # the usual lock timeout: a sign-in waits its turn rather than answer 503.
        side.execute(text(f"SET LOCAL lock_timeout = '{QUEUE_TIMEOUT_S}s'"))
        side.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                     {"ns": _NAME_LOCK, "key": _key(name)})  # fmt: skip
        side.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                     {"ns": _ADDRESS_LOCK, "key": _key(address)})  # fmt: skip
        side.execute(delete(SignInAttempt).where(SignInAttempt.attempted_at <= now - LIMITS.window))
        wait = _wait(side, name, address, now)
        if not wait:
            side.add(SignInAttempt(name=name, address=address, attempted_at=now))
        return wait


def _wait(session: Session, name: str, address: str, now: datetime) -> int:
    """Seconds until every count is under its limit again (0: now)."""
    same_name, same_address = SignInAttempt.name == name, SignInAttempt.address == address
    counts = (
        (same_name & same_address, LIMITS.per_name_and_address),
        (same_name, LIMITS.per_name),
        (same_address & SignInAttempt.failed, LIMITS.per_address),
        (same_address, LIMITS.per_address + LIMITS.in_flight_per_address),
    )
    waits = [0.0]
    for where, limit in counts:
        # The limit-th most recent attempt: once it leaves the window, one more may be tried.
        oldest_that_counts = session.scalar(
            select(SignInAttempt.attempted_at)
            .where(where, SignInAttempt.attempted_at > now - LIMITS.window)
            .order_by(SignInAttempt.attempted_at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        if oldest_that_counts is not None:
            waits.append((oldest_that_counts + LIMITS.window - now).total_seconds())
    return max(0, int(max(waits) + 0.999))


def failed(session: Session, name: str, address: str) -> None:
    """Mark this name's attempts from this address that were being checked as failed (in a
    transaction of its own, like the recording)."""
    with side_transaction(session) as side:
        side.execute(
            update(SignInAttempt)
            .where(
                SignInAttempt.name == name.strip().casefold()[:100],
                SignInAttempt.address == address[:64],
                ~SignInAttempt.failed,
            )
            .values(failed=True)
        )


def succeeded(session: Session, name: str, address: str) -> None:
    """Forget this name's failures from this address once its owner got in (the other counts
    keep theirs: a success proves nothing about other guesses). In a transaction of its own,
    like the recording, so that no request holds these rows' locks while it goes on."""
    with side_transaction(session) as side:
        side.execute(
            delete(SignInAttempt).where(
                SignInAttempt.name == name.strip().casefold()[:100],
                SignInAttempt.address == address[:64],
            )
        )
