"""Selection recipes: which examples of a pool a method picks, previewed before anything is
written, saved by name, and run into a collection.

The selection domain's public API is this module: what it defines, and what it re-exports from
the domain's other modules (imported `as` their own name). Other domains import only from here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import numpy as np
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from app.collections import service as collections
from app.datasets.service import get_dataset
from app.models import Collection, Dataset, Example, Job, Score, ScoreState, Selection, User
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.platform.jobs.dispatch import create_job
from app.platform.sampling import one_of
from app.scoring.service import find_scorer, score_condition, scorer_of
from app.selection import diversity
from app.selection.dedup import ClusterView as ClusterView
from app.selection.dedup import list_clusters as list_clusters
from app.selection.dedup import representative_only as representative_only
from app.selection.dedup import run_dedup as run_dedup
from app.selection.dedup import start_dedup_job as start_dedup_job
from app.selection.deita import deita_select, score_order
from app.selection.embed_job import start_embed_job as start_embed_job
from app.selection.evol import DERIVED, DERIVED_NOTE, EVOL, derived_evol, has_stored_evol
from app.selection.longest import longest_ids
from app.selection.neighbours import OnProgress, facility_similarity
from app.selection.sampling import quota_sample, random_sample
from app.selection.spec import DEDUP_METHODS as DEDUP_METHODS
from app.selection.spec import METHODS as METHODS
from app.selection.spec import SelectionSpec as SelectionSpec


class Bin(TypedDict):
    low: float
    high: float
    count: int


class Distribution(TypedDict):
    """Count, mean and histogram of one side's scores."""

    count: int
    mean: float | None
    bins: list[Bin]


class Preview(TypedDict):
    """What a spec would pick, before anything is written (a mapping: the API answers it as
    JSON, the page and `sift select --preview` read it by key)."""

    method: str
    pool: int
    selected: int
    groups_before: dict[str, int]
    groups_after: dict[str, int]
    example_ids: list[int]  # the first 1,000 picked, in order
    # How the method computed its picks, when it is not exact (facility location on a large pool).
    note: NotRequired[str]
    # With a scorer (the spec's, or its first filter's): the scores before and after.
    scorer: NotRequired[str]
    scores_before: NotRequired[Distribution]
    scores_after: NotRequired[Distribution]
    # The deita method on Deita's two scores when no deita-evol scores exist: says so.
    evol_score: NotRequired[str]


@dataclass
class Pool:
    """The candidates after filters, in pool (id) order."""

    dataset: Dataset
    ids: list[int]
    groups: dict[int, str]
    # The filters that made the pool, so that scores are read with one join, not by id lists.
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    scores: dict[str, dict[int, float]] = field(default_factory=dict)
    # What the selection should say it did beyond its counts (e.g. a derived evol score).
    notes: dict[str, str] = field(default_factory=dict)


def _conditions(
    session: Session, dataset: Dataset, spec: SelectionSpec
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Example.dataset_id == dataset.id]
    conditions += [score_condition(session, expression) for expression in spec.filters]
    if spec.source:
        conditions.append(Example.source == spec.source)
    if spec.one_per_cluster:
        conditions.append(representative_only(session, dataset.id, spec.one_per_cluster))
    return conditions


def candidate_pool(session: Session, spec: SelectionSpec, exclude: Sequence[int] = ()) -> Pool:
    """The examples of the spec's dataset that pass its filters, less those in `exclude`."""
    dataset = get_dataset(session, spec.dataset)
    column = getattr(Example, spec.group_by)
    conditions = _conditions(session, dataset, spec)
    if exclude:
        # A condition, not a filter on the ids: scores and derived scores are read with it too.
        conditions.append(~one_of(session, Example.id, list(exclude)))
    rows = session.execute(select(Example.id, column).where(*conditions).order_by(Example.id)).all()
    return Pool(dataset, [r[0] for r in rows], {r[0]: r[1] or "" for r in rows}, conditions)


def _scores(session: Session, ref: str, pool: Pool) -> dict[int, float]:
    """The ok values of a scorer for the pool's examples (by their content), read once."""
    if ref not in pool.scores:
        scorer = find_scorer(session, ref)
        # An alias: the pool's score filters are subqueries on `scores` of their own.
        score = aliased(Score)
        rows = session.execute(
            select(Example.id, score.value)
            .join(score, score.content_hash == Example.content_hash)
            .where(
                *pool.conditions,
                score.scorer_id == scorer.id,
                score.state == ScoreState.OK.value,
                score.value.is_not(None),
            )
        )
        pool.scores[ref] = {example_id: value for example_id, value in rows if value is not None}
    return pool.scores[ref]


def select_ids(
    session: Session,
    spec: SelectionSpec,
    *,
    held: Sequence[int] = (),
    exclude: Sequence[int] = (),
) -> list[int]:
    """The example ids the spec picks, in the method's order; writes nothing. `held`: what the
    target collection already holds (k-center and facility location start from it); `exclude`:
    examples never picked (an experiment's held-out split)."""
    spec.check()
    return _pick(session, spec, candidate_pool(session, spec, exclude), held)[0]


def _pick(
    session: Session,
    spec: SelectionSpec,
    pool: Pool,
    held: Sequence[int] = (),
    progress: OnProgress | None = None,
) -> tuple[list[int], str | None]:
    """The picks, and a note when the method approximated."""
    budget = spec.budget if spec.budget is not None else len(pool.ids)
    if spec.method == "longest":
        return longest_ids(session, pool.ids, budget, spec.tokenizer), None
    if spec.method in ("k-center", "facility-location"):
        return _diverse(session, spec, pool, budget, held, progress)
    return _pick_ranked(session, spec, pool, budget), None


def _pick_ranked(session: Session, spec: SelectionSpec, pool: Pool, budget: int) -> list[int]:
    if spec.method == "random":
        return random_sample(pool.ids, budget, seed=spec.seed)
    if spec.method == "lima-quota":
        groups: dict[str, list[int]] = {}
        for example_id in pool.ids:
            groups.setdefault(pool.groups[example_id], []).append(example_id)
        scores = _scores(session, spec.scorer, pool) if spec.scorer else None
        return quota_sample(
            groups, budget, tau=spec.tau, quotas=spec.quotas, scores=scores, seed=spec.seed
        )
    if spec.method == "threshold":
        if not spec.scorer:
            return pool.ids[:budget]
        scores = _scores(session, spec.scorer, pool)
        scored = [i for i in pool.ids if i in scores]
        return [scored[i] for i in score_order([scores[i] for i in scored])[:budget]]
    return _deita(session, spec, pool, budget)


def _deita(session: Session, spec: SelectionSpec, pool: Pool, budget: int) -> list[int]:
    scores = _evol_or(session, spec, pool)
    scored = [i for i in pool.ids if i in scores]
    ordered = [scored[i] for i in score_order([scores[i] for i in scored])]
    if not ordered:
        return []
    matrix = _vectors(session, spec, ordered)
    return [ordered[int(k)] for k in deita_select(matrix, budget, spec.threshold)]


def _vectors(
    session: Session, spec: SelectionSpec, ids: Sequence[int], *, held: bool = False
) -> np.ndarray:
    """The examples' stored embeddings, a row each in the order given; InvalidInput names how
    many have none (a held example outside the pool may have none: it is left out)."""
    from app.platform.vectors.models import DEFAULT_MODEL
    from app.platform.vectors.store import load_embeddings

    model = spec.embedding_model or DEFAULT_MODEL
    hashes = dict(
        session.execute(
            select(Example.id, Example.content_hash).where(one_of(session, Example.id, list(ids)))
        ).all()
    )
    vectors = load_embeddings(session, sorted(set(hashes.values())), model)
    missing = [i for i in ids if hashes.get(i) not in vectors]
    if missing and not held:
        raise InvalidInput(
            f"embedding_model: {len(missing)} candidates have no {model} embedding; "
            f"run `sift embed --dataset {spec.dataset}` first",
            field="embedding_model",
        )
    rows = [vectors[hashes[i]] for i in ids if hashes.get(i) in vectors]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), dtype=np.float32)


def _evol_or(session: Session, spec: SelectionSpec, pool: Pool) -> dict[int, float]:
    """The spec's scorer's values, or the pool's stored evol scores, or (with none) the evol
    score derived from Deita's complexity and quality."""
    if spec.scorer:
        return _scores(session, spec.scorer, pool)
    stored = _scores(session, EVOL, pool) if has_stored_evol(session) else {}
    if stored:
        return stored
    if DERIVED not in pool.scores:
        pool.scores[DERIVED] = derived_evol(session, pool.conditions)
        pool.notes["evol_score"] = DERIVED_NOTE
    return pool.scores[DERIVED]


def _diverse(
    session: Session,
    spec: SelectionSpec,
    pool: Pool,
    budget: int,
    held: Sequence[int],
    progress: OnProgress | None,
) -> tuple[list[int], str | None]:
    """k-center or facility location over the pool, from what the collection holds."""
    taken = set(held)
    candidates = [i for i in pool.ids if i not in taken]
    scores = _scores(session, spec.scorer, pool) if spec.scorer else {}
    if spec.method == "facility-location" and spec.alpha > 0:
        candidates = [i for i in candidates if i in scores]  # q must be known
    if not candidates or not budget:
        return [], None
    matrix = _vectors(session, spec, candidates)
    held_matrix = _vectors(session, spec, list(held), held=True) if held else None
    if held_matrix is not None and not len(held_matrix):
        held_matrix = None
    if spec.method == "k-center":
        first = 0
        if held_matrix is None:
            first = diversity.first_center(candidates, scores, spec.seed)
        picks = diversity.k_center(matrix, budget, held=held_matrix, first=first)
        return [candidates[k] for k in picks], None
    quality = np.array([scores.get(i, 0.0) for i in candidates])
    result = diversity.facility_location(
        facility_similarity(session, spec, candidates, matrix, progress),
        budget,
        quality=quality,
        alpha=spec.alpha,
        covered=diversity.coverage_of(matrix, held_matrix),
    )
    return [candidates[k] for k in result.picks], result.note


def preview(
    session: Session, spec: SelectionSpec, bins: int = 20, *, held: Sequence[int] = ()
) -> Preview:
    """What the spec would pick: count, score distribution and per-group counts, before
    (the filtered pool) and after; `held` as in `select_ids`."""
    spec.check()
    pool = candidate_pool(session, spec)
    chosen, note = _pick(session, spec, pool, held)
    result = Preview(
        method=spec.method,
        pool=len(pool.ids),
        selected=len(chosen),
        groups_before=dict(Counter(pool.groups.values()).most_common()),
        groups_after=dict(Counter(pool.groups[i] for i in chosen).most_common()),
        example_ids=chosen[:1000],
    )
    if "evol_score" in pool.notes:
        result["evol_score"] = pool.notes["evol_score"]
    if note:
        result["note"] = note
    ref = spec.scorer or next((scorer_of(f) for f in spec.filters), None)
    if ref:
        scores = _scores(session, ref, pool)
        result["scorer"] = ref
        result["scores_before"] = _distribution([scores[i] for i in pool.ids if i in scores], bins)
        result["scores_after"] = _distribution([scores[i] for i in chosen if i in scores], bins)
    return result


def _distribution(values: list[float], bins: int) -> Distribution:
    if not values:
        return {"count": 0, "mean": None, "bins": []}
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=bins)
    return {
        "count": len(values),
        "mean": float(np.mean(values)),
        "bins": [
            {"low": float(edges[i]), "high": float(edges[i + 1]), "count": int(counts[i])}
            for i in range(len(counts))
        ],
    }


def save_selection(
    session: Session, name: str, spec: SelectionSpec, user: User | None = None
) -> Selection:
    """Store a named recipe; the same name with another spec is refused (recipes do not change)."""
    spec.check()
    dataset = get_dataset(session, spec.dataset)
    existing = session.scalar(select(Selection).where(Selection.name == name))
    if existing is not None:
        if existing.params != spec.canonical():
            raise Conflict(f"a selection called {name!r} exists with other settings")
        return existing
    selection = Selection(
        name=name,
        method=spec.method,
        dataset_id=dataset.id,
        params=spec.canonical(),
        created_by_id=user.id if user else None,
    )
    session.add(selection)
    session.flush()
    return selection


def get_selection(session: Session, name: str) -> SelectionSpec:
    """A saved recipe's spec."""
    selection = session.scalar(select(Selection).where(Selection.name == name))
    if selection is None:
        raise NotFound(f"no selection called {name!r}")
    return SelectionSpec(**selection.params)


def select_into(
    session: Session,
    collection: Collection,
    spec: SelectionSpec,
    *,
    name: str | None = None,
    user: User | None = None,
    progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Run the spec and add what it picks to the collection, up to the room it has left
    (`progress` hears how far its longest step, the index's neighbours, has gone)."""
    held = collections.item_ids(session, collection)
    spec.check()
    pool = candidate_pool(session, spec)
    chosen, note = _pick(session, spec, pool, held, progress)
    present = set(held)
    fresh = [i for i in chosen if i not in present]
    room = collection.target_size - len(present)
    recipe = name or f"{spec.method}-{spec.digest()}"
    added = collections.add_items(
        session, collection, fresh[: max(room, 0)], user=user, recipe=recipe
    )
    collections.record_recipe(collection, {"name": recipe, **spec.canonical()})
    return {
        "selected": len(chosen),
        "added": added,
        "already_in": len(chosen) - len(fresh),
        "over_target": max(len(fresh) - max(room, 0), 0),
        **pool.notes,
    } | ({"note": note} if note else {})


def start_select_job(
    session: Session,
    collection: Collection,
    spec: SelectionSpec,
    *,
    name: str | None = None,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a job that runs the spec into the collection."""
    spec.check()
    dataset = get_dataset(session, spec.dataset)
    params = {"collection_id": collection.id, "spec": spec.canonical(), "name": name}
    return create_job(
        session,
        "select",
        params,
        queue="cpu",
        user=user,
        dataset_id=dataset.id,
        idempotency_key=idempotency_key,
    )
