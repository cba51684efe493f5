"""Where a generated example came from: its method, round, parent, prompt and model, and for
Evol-Quality the group of answers it was rewritten among."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.models import Dataset, Example, Provenance


@dataclass
class Variant:
    """One answer of an Evol-Quality group: the original (round 0) or a rewrite."""

    example_id: int
    round: int
    operation: str | None
    output: str
    dataset: str


@dataclass
class ProvenanceView:
    """Where one generated example came from, ready to show."""

    example_id: int
    method: str
    round: int
    parent_example_id: int | None
    prompt: str
    endpoint: str
    model: str
    job_id: int | None
    variant_group: int | None
    details: dict[str, Any]
    created_at: datetime
    variants: list[Variant] = field(default_factory=list)

    @property
    def operation(self) -> str | None:
        """The evolution operation (deepen, helpfulness...), when there was one."""
        value = self.details.get("operation") or self.details.get("variant")
        return str(value) if value else None


def provenance_for(session: Session, example_ids: list[int]) -> dict[int, ProvenanceView]:
    """The provenance of each generated example among `example_ids` (others are absent)."""
    if not example_ids:
        return {}
    rows = session.scalars(select(Provenance).where(Provenance.example_id.in_(example_ids)))
    views = {
        row.example_id: ProvenanceView(
            row.example_id,
            row.method,
            row.round,
            row.parent_example_id,
            row.prompt,
            row.endpoint,
            row.model,
            row.job_id,
            row.variant_group,
            dict(row.details or {}),
            row.created_at,
        )
        for row in rows
    }
    groups = {v.variant_group for v in views.values() if v.variant_group is not None}
    members = _group_members(session, groups)
    for view in views.values():
        if view.variant_group is not None:
            view.variants = members.get(view.variant_group, [])
    return views


def _group_members(session: Session, groups: set[int]) -> dict[int, list[Variant]]:
    """Every answer of each group: its root example first, then the rewrites by round."""
    if not groups:
        return {}
    found: dict[int, list[Variant]] = {group: [] for group in groups}
    roots = session.execute(
        select(Example.id, Example.output, Example.messages, Dataset.name)
        .join(Dataset, Dataset.id == Example.dataset_id)
        .where(Example.id.in_(groups))
    )
    for example_id, output, messages, dataset in roots:
        found[example_id].append(Variant(example_id, 0, None, _answer(output, messages), dataset))
    rewrites = session.execute(
        select(Provenance, Example.output, Example.messages, Dataset.name)
        .join(Example, Example.id == Provenance.example_id)
        .join(Dataset, Dataset.id == Example.dataset_id)
        .where(Provenance.variant_group.in_(groups))
        .order_by(Provenance.variant_group, Provenance.round, Provenance.example_id)
    )
    for row, output, messages, dataset in rewrites:
        assert row.variant_group is not None
        operation = (row.details or {}).get("operation")
        variant = Variant(row.example_id, row.round, operation, _answer(output, messages), dataset)
        found[row.variant_group].append(variant)
    return found


def _answer(output: str | None, messages: list[dict[str, str]]) -> str:
    if output is not None:
        return output
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    return answers[-1] if answers else ""


def variants_of(session: Session, example_id: int) -> list[Variant]:
    """The Evol-Quality group an example belongs to (as the original or as a rewrite), side by
    side: the original first, then each rewrite by round; empty when it has none."""
    group = session.scalar(
        select(Provenance.variant_group)
        .where(
            or_(Provenance.example_id == example_id, Provenance.variant_group == example_id),
            Provenance.variant_group.is_not(None),
        )
        .limit(1)
    )
    if group is None:
        return []
    return _group_members(session, {group}).get(group, [])
