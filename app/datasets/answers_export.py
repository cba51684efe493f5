"""Answers to a collection's review questions in exports: each record of a collection or a
snapshot carries `answers`, `{question key: {annotator: value}}` (a snapshot's as frozen),
once the collection asks questions; a dataset's records carry none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.writers import ExampleView
from app.models import Snapshot
from app.platform.answers import answers_by_example, question_keys, snapshot_has_answers


def exports_answers(session: Session, kind: str, source_id: int) -> bool:
    """True when the records of this export carry `answers`."""
    if kind == "collection":
        return bool(question_keys(session, source_id))
    if kind == "snapshot":
        if snapshot_has_answers(session, source_id):
            return True
        collection_id = session.scalar(
            select(Snapshot.collection_id).where(Snapshot.id == source_id)
        )
        return collection_id is not None and bool(question_keys(session, collection_id))
    return False


def answers_for(
    session: Session, kind: str, source_id: int, chunk: Sequence[ExampleView]
) -> dict[int, dict[str, Any]]:
    """View index in the chunk -> its answers: read live for a collection, as frozen for a
    snapshot."""
    if kind == "snapshot":
        return {i: view.answers or {} for i, view in enumerate(chunk)}
    live = answers_by_example(session, source_id, [v.id for v in chunk if v.id is not None])
    return {i: live.get(view.id, {}) if view.id is not None else {} for i, view in enumerate(chunk)}
