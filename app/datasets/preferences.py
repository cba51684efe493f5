"""Preference pairs from what reviewers did, in TRL's conversational preference format
(`prompt`, `chosen`, `rejected`, each a list of messages), for DPO and its kin:

- an edited answer (chosen) against the answer it replaced (rejected), when the edit left the
  prompt as it was;
- the variants of one Evol-Quality group (the answers grown from one example, and that
  example), each accepted one against each rejected one, when they share the prompt.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from app.models import CollectionItem, Example, ExampleStatus, Provenance, Revision, SnapshotItem

CHUNK = 2_000


@dataclass(frozen=True)
class Answered:
    """An example's messages and review status, as the source holds them."""

    example_id: int
    messages: list[dict[str, str]]
    status: str | None


def preference_pairs(session: Session, kind: str, source_id: int) -> Iterator[dict[str, Any]]:
    """Every pair the source's examples give: edits first (by example id), then groups."""
    for chunk in _chunks(session, _rows(kind, source_id)):
        originals = _originals(session, [a.example_id for a in chunk])
        for answered in chunk:
            original = originals.get(answered.example_id)
            if original is not None:
                yield from _pair(answered.messages, original, "edit", answered.example_id)
    yield from _group_pairs(session, kind, source_id)


def _rows(kind: str, source_id: int) -> Select[Any, Any, Any]:
    """(example id, messages, status) of the source, by example id."""
    if kind == "snapshot":
        return (
            select(SnapshotItem.example_id, SnapshotItem.messages, SnapshotItem.status)
            .where(SnapshotItem.snapshot_id == source_id, SnapshotItem.example_id.is_not(None))
            .order_by(SnapshotItem.example_id)
        )
    query = select(Example.id, Example.messages, Example.status)
    if kind == "collection":
        query = query.join(CollectionItem, CollectionItem.example_id == Example.id).where(
            CollectionItem.collection_id == source_id
        )
    else:
        query = query.where(Example.dataset_id == source_id)
    return query.order_by(Example.id)


def _chunks(session: Session, query: Select[Any, Any, Any]) -> Iterator[list[Answered]]:
    """The query's rows in chunks, by keyset on the example id (memory stays flat)."""
    key = query.selected_columns[0]
    last: int | None = None
    while True:
        page = query if last is None else query.where(key > last)
        rows = session.execute(page.limit(CHUNK)).all()
        if not rows:
            return
        yield [Answered(example_id, messages, status) for example_id, messages, status in rows]
        last = rows[-1][0]


def _originals(session: Session, example_ids: Sequence[int]) -> dict[int, list[dict[str, str]]]:
    """Each edited example's messages before its first edit."""
    rows = session.execute(
        select(Revision.example_id, Revision.before)
        .where(Revision.example_id.in_(example_ids))
        .order_by(Revision.example_id, Revision.id)
        .ext(distinct_on(Revision.example_id))
    )
    return {example_id: before["messages"] for example_id, before in rows if "messages" in before}


def _pair(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]], origin: str, *ids: int
) -> Iterator[dict[str, Any]]:
    """The pair, when both end in an answer to the same prompt and the answers differ."""
    if not (chosen and rejected and chosen[-1]["role"] == rejected[-1]["role"] == "assistant"):
        return
    if chosen[:-1] != rejected[:-1] or chosen[-1]["content"] == rejected[-1]["content"]:
        return
    yield {
        "prompt": chosen[:-1],
        "chosen": [chosen[-1]],
        "rejected": [rejected[-1]],
        "origin": origin,
        "example_ids": list(ids),
    }


def _group_pairs(session: Session, kind: str, source_id: int) -> Iterator[dict[str, Any]]:
    """Accepted against rejected variants within each Evol-Quality group of the source."""
    members = _rows(kind, source_id).subquery()
    grouped = session.execute(
        select(Provenance.variant_group, Provenance.example_id).where(
            Provenance.variant_group.is_not(None),
            Provenance.example_id.in_(select(members.c[0])),
        )
    ).all()
    groups: dict[int, set[int]] = {}
    for group, example_id in grouped:
        if group is not None:  # the query asks for grouped variants only
            groups.setdefault(group, {group}).add(example_id)
    if not groups:
        return
    wanted = sorted(set().union(*groups.values()))
    answered = _answered(session, kind, source_id, wanted)
    for group in sorted(groups):
        variants = [answered[i] for i in sorted(groups[group]) if i in answered]
        good = [v for v in variants if v.status == ExampleStatus.ACCEPTED.value]
        bad = [v for v in variants if v.status == ExampleStatus.REJECTED.value]
        for chosen, rejected in product(good, bad):
            yield from _pair(chosen.messages, rejected.messages, "evol-quality",
                             chosen.example_id, rejected.example_id)  # fmt: skip


def _answered(
    session: Session, kind: str, source_id: int, example_ids: list[int]
) -> dict[int, Answered]:
    """These examples of the source, by id."""
    query = _rows(kind, source_id)
    key = query.selected_columns[0]
    rows = session.execute(query.where(key.in_(example_ids))).all()
    return {example_id: Answered(example_id, m, status) for example_id, m, status in rows}
