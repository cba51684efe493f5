"""A snapshot by the name people see: its number, or its digest as `sift snapshot` prints it.
Here in the platform because exports (datasets), training and evaluation all name snapshots and
the collections domain, which owns them, sits beside those domains, not below them."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Snapshot
from app.platform.errors import InvalidInput, NotFound

HEX = frozenset("0123456789abcdef")
# Shorter all-digit refs are numbers; from 8 hex digits on, a ref is a digest (or its prefix).
MIN_DIGEST = 8


def find_snapshot(session: Session, ref: int | str) -> Snapshot:
    """The snapshot numbered `ref`, or whose digest is or starts with `ref`; NotFound otherwise."""
    text = str(ref).strip().lower()
    snapshot: Snapshot | None
    if text.isdigit() and len(text) < MIN_DIGEST:
        snapshot = session.get(Snapshot, int(text))
    elif len(text) >= MIN_DIGEST and set(text) <= HEX:
        found = list(
            session.scalars(select(Snapshot).where(Snapshot.digest.startswith(text)).limit(2))
        )
        if len(found) > 1:
            raise InvalidInput(
                f"snapshot: {ref} starts more than one digest; give more of it", field="snapshot"
            )
        snapshot = found[0] if found else None
    else:
        raise InvalidInput(
            f"snapshot: {ref!r} is neither a snapshot number nor a digest", field="snapshot"
        )
    if snapshot is None:
        raise NotFound(f"no snapshot {ref}")
    return snapshot


# A snapshot in an API path or body: its number, or its digest (or a prefix of 8+ hex digits).
SnapshotRef = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9a-fA-F]+$")
]
