"""Colours of the embedding map's points: by membership (the default), review status, source or
one scorer's values, with the legend that explains them. Fills are SVG presentation
attributes, which the Content-Security-Policy allows (style attributes it does not)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.dashboard_view import collection_url
from app.collections.embedding_map import EmbeddingMap, MapPoint
from app.collections.pick_table import scorer_choices
from app.models import Collection, Example, Score, ScoreState
from app.platform.errors import SiftError
from app.scoring.service import find_scorer, list_scorers

COLOUR_BY = ("collection", "status", "source", "score")
STATUS_FILLS = {"candidate": "#9aa3ad", "accepted": "#2f9e44", "rejected": "#e03131"}
# Tableau 10: categories told apart at a glance; the rest of the sources share a grey.
CATEGORICAL = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
               "#ff9da7", "#9c755f")  # fmt: skip
OTHER = "#c5cad1"
# Viridis at five steps, low to high.
RAMP = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


@dataclass(frozen=True)
class Painted:
    """A point with its fill and what it stands for (its tooltip and the lasso's data)."""

    point: MapPoint
    fill: str | None
    label: str


@dataclass
class Coloured:
    """The points, painted, and the legend: (fill, label) pairs."""

    points: list[Painted]
    legend: list[tuple[str, str]]
    note: str = ""


def paint(session: Session, points: list[MapPoint], by: str, scorer: str = "") -> Coloured:
    """The map's points coloured `by` membership, status, source or a scorer's values."""
    if by not in COLOUR_BY or by == "collection" or (by == "score" and not scorer):
        return Coloured([Painted(p, None, "") for p in points], [])
    ids = [p.id for p in points]
    rows = session.execute(
        select(Example.id, Example.status, Example.source, Example.content_hash).where(
            Example.id.in_(ids)
        )
    ).all()
    status = {i: s for i, s, _, _ in rows}
    source = {i: src or "(none)" for i, _, src, _ in rows}
    if by == "status":
        legend = [(fill, name) for name, fill in STATUS_FILLS.items()]
        return Coloured(
            [Painted(p, STATUS_FILLS.get(status.get(p.id, ""), OTHER), status.get(p.id, "")) for p in points],
            legend,
        )  # fmt: skip
    if by == "source":
        top = [name for name, _ in Counter(source.values()).most_common(len(CATEGORICAL))]
        fills = dict(zip(top, CATEGORICAL, strict=False))
        legend = [(fills[name], name) for name in top]
        if len(set(source.values())) > len(top):
            legend.append((OTHER, "other sources"))
        return Coloured(
            [Painted(p, fills.get(source.get(p.id, ""), OTHER), source.get(p.id, "")) for p in points],
            legend,
        )  # fmt: skip
    found = find_scorer(session, scorer)
    hashes = {i: h for i, _, _, h in rows}
    values = dict(
        session.execute(
            select(Score.content_hash, Score.value).where(
                Score.scorer_id == found.id,
                Score.state == ScoreState.OK.value,
                Score.content_hash.in_(set(hashes.values())),
            )
        ).all()
    )
    seen = [v for v in values.values() if v is not None]
    if not seen:
        return Coloured(
            [Painted(p, OTHER, "unscored") for p in points],
            [(OTHER, "unscored")],
            f"No point of the map has a {found.name} score.",
        )
    low, high = min(seen), max(seen)
    step = (high - low) / len(RAMP) or 1.0
    legend = [
        (fill, f"{low + i * step:.3g} to {low + (i + 1) * step:.3g}") for i, fill in enumerate(RAMP)
    ]
    painted = []
    for p in points:
        value = values.get(hashes.get(p.id, ""))
        if value is None:
            painted.append(Painted(p, OTHER, "unscored"))
        else:
            index = min(int((value - low) / step), len(RAMP) - 1)
            painted.append(Painted(p, RAMP[index], f"{found.name} {value:.3g}"))
    return Coloured(painted, [*legend, (OTHER, "unscored")])


def map_context(
    session: Session,
    collection: Collection,
    drawn: EmbeddingMap | None,
    colour: str,
    scorer: str,
) -> dict[str, Any]:
    """What `collections/_map.html` shows: the map, its points painted, the colour choices."""
    painted = None
    note = ""
    if drawn is not None and drawn.points:
        try:
            painted = paint(session, drawn.points, colour, scorer)
        except SiftError as exc:  # an unknown scorer: say so, keep the default colours
            painted, note = paint(session, drawn.points, "collection"), exc.message
        note = note or painted.note
    stored = dict.fromkeys(s.name for s in list_scorers(session))
    return {
        "map": drawn,
        "painted": painted,
        "colour": colour if colour in COLOUR_BY else "collection",
        "colours": COLOUR_BY,
        "scorer": scorer,
        "scored_by": list(stored),
        "scorers": scorer_choices(session),
        "map_note": note,
        "base": collection_url(collection.name),
        "map_collection": collection.name,
    }
