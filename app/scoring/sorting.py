"""Examples tables sorted by a score, and the score columns they show.

A sorted page walks the scores index (scorer, value, content hash) from one end and joins each
score to its example, so that the first page of a million reads about one page of rows instead
of sorting the pool. Keyset paging: the cursor is the last row's (value, hash, id); when the
scored examples run out, the unscored follow by id (so nothing is hidden by sorting)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, select, tuple_
from sqlalchemy.orm import Session, aliased

from app.models import Example, Score, Scorer, ScoreState
from app.platform.errors import InvalidInput
from app.scoring.scorers import find_scorer

_SORT = re.compile(r"^(-?)([a-z0-9-]+(?:@\d+)?)$")
# A cursor in the scored part: "s:<value>:<content hash>:<id>"; in the unscored tail: "u:<id>".
_CURSOR = re.compile(r"^(?:s:(-?[0-9.eE+-]+|inf|-inf):([0-9a-f]{1,64}):(\d+)|u:(\d+))$")


@dataclass(frozen=True)
class ScoreSort:
    """A table's order: by one scorer's values, highest first unless `ascending`."""

    scorer: str
    ascending: bool = False

    @classmethod
    def parse(cls, text: str) -> ScoreSort | None:
        """`alpagasus` (highest first), `+alpagasus` or `alpagasus:asc` (lowest first); blank:
        None (id order)."""
        text = text.strip()
        if not text:
            return None
        ascending = text.startswith("+") or text.endswith(":asc")
        name = text.removeprefix("+").removesuffix(":asc").removesuffix(":desc")
        match = _SORT.match(name)
        if match is None or match.group(1):
            raise InvalidInput(f"sort: {text!r} is not a scorer name", field="sort")
        return cls(match.group(2), ascending)

    @property
    def param(self) -> str:
        """This order as the `sort` query parameter."""
        return f"{self.scorer}:asc" if self.ascending else self.scorer

    def flipped(self) -> ScoreSort:
        """The same scorer the other way round (what clicking the header again does)."""
        return ScoreSort(self.scorer, not self.ascending)


def sorted_page(
    session: Session,
    base: Select[Any],
    sort: ScoreSort,
    cursor: str | None,
    limit: int,
) -> tuple[list[Example], str | None]:
    """One page of `base` (a filtered select of Example) in the order of `sort`, and the
    cursor of the next page (None at the end)."""
    scorer = find_scorer(session, sort.scorer)
    scored_after, unscored_after = _parse_cursor(cursor)
    rows: list[Example] = []
    if unscored_after is None:
        joined = scored_order(base, scorer.id, sort, scored_after)
        found = session.execute(joined.limit(limit + 1)).all()
        rows = [example for example, _ in found]
        if len(found) > limit:
            example, value = found[limit - 1]
            return rows[:limit], f"s:{value!r}:{example.content_hash}:{example.id}"
        unscored_after = 0
    unscored = base.where(
        ~exists().where(
            Score.content_hash == Example.content_hash,
            Score.scorer_id == scorer.id,
            Score.state == ScoreState.OK.value,
        ),
        Example.id > unscored_after,
    ).order_by(Example.id)
    scored = len(rows)
    rows += session.scalars(unscored.limit(limit + 1 - scored))
    if len(rows) > limit:
        # The next page starts the unscored tail from its beginning when this one ends on
        # the last scored example.
        return rows[:limit], f"u:{rows[limit - 1].id if limit > scored else 0}"
    return rows, None


def scored_order(base: Select[Any], scorer_id: int, sort: ScoreSort, after: Any) -> Select[Any]:
    """`base`'s examples with an ok score from the scorer, with their value, in `sort`'s order
    (ties by content hash, then id, so that the index gives the order), after a cursor's key."""
    # An alias: score filters in `base` are EXISTS over scores, which must not correlate to it.
    ranked = aliased(Score, name="ranked")
    joined = base.join(
        ranked,
        and_(
            ranked.content_hash == Example.content_hash,
            ranked.scorer_id == scorer_id,
            ranked.state == ScoreState.OK.value,
        ),
    ).add_columns(ranked.value)
    key = tuple_(ranked.value, ranked.content_hash, Example.id)
    if after is not None:
        joined = joined.where(key > after if sort.ascending else key < after)
    order = (ranked.value, ranked.content_hash, Example.id)
    return joined.order_by(*(c if sort.ascending else c.desc() for c in order))


def _parse_cursor(cursor: str | None) -> tuple[Any, int | None]:
    """(the scored key to continue after, or the unscored id to continue after)."""
    if not cursor:
        return None, None
    match = _CURSOR.match(cursor)
    if match is None:
        raise InvalidInput("cursor: not a page of this table", field="cursor")
    if match.group(4) is not None:
        return None, int(match.group(4))
    return tuple_(float(match.group(1)), match.group(2), int(match.group(3))), None


@dataclass(frozen=True)
class ScoreColumns:
    """The score columns of one page of a table: their labels, and each row's values."""

    labels: list[str]
    values: dict[int, dict[str, float | None]]

    def of(self, example_id: int, label: str) -> float | None:
        """The value in one cell (None: no ok score)."""
        return self.values.get(example_id, {}).get(label)


def score_columns(
    session: Session, examples: list[Example], also: str | None = None
) -> ScoreColumns:
    """A column per scorer that scored any example of the page (and `also`, the one sorted
    on), labelled by name, or NAME@VERSION where several versions of a name appear."""
    hashes = {e.content_hash for e in examples}
    rows = (
        session.execute(
            select(Score.content_hash, Score.value, Scorer.name, Scorer.version)
            .join(Scorer, Scorer.id == Score.scorer_id)
            .where(Score.content_hash.in_(hashes), Score.state == ScoreState.OK.value)
        ).all()
        if hashes
        else []
    )
    versions: dict[str, set[int]] = {}
    for _, _, name, version in rows:
        versions.setdefault(name, set()).add(version)

    def label(name: str, version: int) -> str:
        return name if len(versions[name]) == 1 else f"{name}@{version}"

    by_hash: dict[str, dict[str, float | None]] = {}
    for content_hash, value, name, version in rows:
        by_hash.setdefault(content_hash, {})[label(name, version)] = value
    labels = sorted({label(name, version) for _, _, name, version in rows})
    if also and also not in labels:
        labels.append(also)
    return ScoreColumns(labels, {e.id: by_hash.get(e.content_hash, {}) for e in examples})
