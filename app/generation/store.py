"""Writing generated examples and their provenance: upserts on natural keys, so a run written
twice adds nothing the second time."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.datasets.service import ExampleDraft, parse_alpaca
from app.generation.methods import Generated
from app.models import Example, ExampleStatus, Job, Origin, Provenance
from app.platform.db import conflict_insert

# Rows per statement: well below psycopg's 65,535 bound parameters.
BATCH = 2_000


def insert_examples(
    session: Session, dataset_id: int, drafts: Sequence[ExampleDraft], *, origin: str
) -> dict[str, int]:
    """Insert drafts that the dataset does not hold yet; the ids of all of them by hash."""
    rows = [
        {
            "dataset_id": dataset_id,
            "messages": d.messages,
            "instruction": d.instruction,
            "input": d.input,
            "output": d.output,
            "source": d.source,
            "category": d.category,
            "meta": d.meta,
            "external_id": d.external_id,
            "content_hash": d.content_hash,
            "source_format": d.source_format,
            "source_keys": d.source_keys,
            "origin": origin,
            "status": ExampleStatus.CANDIDATE.value,
            "version": 1,
        }
        for d in drafts
    ]
    statement = conflict_insert(Example).on_conflict_do_nothing(
        index_elements=["dataset_id", "content_hash"]
    )
    ids: dict[str, int] = {}
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        session.execute(statement, batch)
        hashes = [row["content_hash"] for row in batch]
        found = session.execute(
            select(Example.content_hash, Example.id).where(
                Example.dataset_id == dataset_id, Example.content_hash.in_(hashes)
            )
        )
        ids.update({content_hash: example_id for content_hash, example_id in found})
    return ids


def draft_of(item: Generated) -> ExampleDraft:
    """The example a generated task becomes: an Alpaca record, so that export round-trips."""
    draft = parse_alpaca(
        {"instruction": item.task.instruction, "input": item.task.input, "output": item.task.output}
    )
    draft.source = f"generated/{item.method}"
    return draft


def store_generated(session: Session, job: Job, into_id: int, items: Sequence[Generated]) -> int:
    """Write the generated examples into the dataset and record each one's provenance; how
    many examples the dataset did not hold before."""
    drafts = [draft_of(item) for item in items]
    before = _count_present(session, into_id, list({d.content_hash for d in drafts}))
    # `ids` holds every distinct hash, found after the insert: what is there now.
    ids = insert_examples(session, into_id, drafts, origin=Origin.GENERATED.value)
    origins = _origins(session, list(ids.values()))
    rows = []
    for item, draft in zip(items, drafts, strict=True):
        example_id = ids[draft.content_hash]
        if origins.get(example_id) != Origin.GENERATED.value:
            continue  # the dataset held this content already, from elsewhere
        parent = item.parent_id
        if item.parent_index is not None:
            parent = ids[drafts[item.parent_index].content_hash]
        rows.append(
            {
                "example_id": example_id,
                "method": item.method,
                "round": item.round,
                "parent_example_id": parent,
                "prompt": item.prompt,
                "endpoint": job.params["endpoint"],
                "model": job.params["model"],
                "job_id": job.id,
                "variant_group": item.variant_group,
                "details": item.details,
            }
        )
    statement = conflict_insert(Provenance).on_conflict_do_nothing(index_elements=["example_id"])
    for start in range(0, len(rows), BATCH):
        session.execute(statement, rows[start : start + BATCH])
    return len(ids) - before


def _origins(session: Session, ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(ids), BATCH):
        rows = session.execute(
            select(Example.id, Example.origin).where(Example.id.in_(ids[start : start + BATCH]))
        )
        found.update({example_id: origin for example_id, origin in rows})
    return found


def _count_present(session: Session, into_id: int, hashes: list[str]) -> int:
    """How many of the (distinct) `hashes` the dataset holds."""
    found = 0
    for start in range(0, len(hashes), BATCH):
        batch = hashes[start : start + BATCH]
        query = select(func.count()).where(
            Example.dataset_id == into_id, Example.content_hash.in_(batch)
        )
        found += session.scalar(query) or 0
    return found
