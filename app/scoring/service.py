"""Scorers (versioned recipes), score jobs, and reading scores back: histograms and filters."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.datasets.service import count_examples
from app.models import Dataset, Example, Job, Score, Scorer, ScorerKind, ScoreState, User
from app.platform.errors import InvalidInput, NotFound
from app.platform.jobs.dispatch import create_job
from app.platform.llm.client import get_endpoint, require_priced
from app.platform.sampling import sample_if_large, scores_of
from app.scoring.recipes import (
    BUILTIN_RECIPES,
    Recipe,
    custom_recipe,
    get_recipe,
    recipe_from_scorer,
)

DEFAULT_ENDPOINT = "default"


@dataclass(frozen=True)
class ScorerChoice:
    """A recipe bound to what computes it: an endpoint, a local model path, or nothing."""

    recipe: Recipe
    model: str | None = None
    provider: str | None = None
    endpoint: str | None = None
    inputs: dict[str, int] = field(default_factory=dict)  # derived: input name -> scorer id


# ---------------------------------------------------------------- scorers


def find_scorer(session: Session, ref: str) -> Scorer:
    """A scorer by `name` (its newest version), `name@version`, or key."""
    name, _, version = ref.partition("@")
    query = select(Scorer).where(Scorer.name == name)
    if version:
        if not version.isdigit():
            raise InvalidInput(f"scorer: {ref!r} is not NAME or NAME@VERSION", field="scorer")
        query = query.where(Scorer.version == int(version))
    scorer = session.scalar(query.order_by(Scorer.version.desc()).limit(1))
    if scorer is None and len(ref) == 64:
        scorer = session.scalar(select(Scorer).where(Scorer.key == ref))
    if scorer is None:
        raise NotFound(f"no scorer {ref!r}; score a dataset with it first")
    return scorer


def list_scorers(session: Session) -> list[Scorer]:
    """Every stored scorer version, by name and newest version first."""
    return list(session.scalars(select(Scorer).order_by(Scorer.name, Scorer.version.desc())))


def _recipe(session: Session, name: str) -> Recipe:
    if name in BUILTIN_RECIPES:
        return get_recipe(name)
    stored = session.scalar(
        select(Scorer).where(Scorer.name == name).order_by(Scorer.version.desc()).limit(1)
    )
    if stored is None:
        return get_recipe(name)  # raises, listing the built-in names
    return recipe_from_scorer(stored)


def choose_scorer(
    session: Session, name: str, *, endpoint: str | None = None, model_path: str | None = None
) -> ScorerChoice:
    """The recipe `name` bound to the endpoint (LLM recipes) or local model path (Deita); a
    derived recipe is bound to the stored scorers it derives from."""
    recipe = _recipe(session, name)
    if recipe.is_derived:
        inputs = {
            need: stored_scorer(
                session, choose_scorer(session, need, endpoint=endpoint, model_path=model_path)
            )
            for need in recipe.needs
        }
        model = "+".join(scorer.key[:16] for scorer in inputs.values())
        ids = {need: scorer.id for need, scorer in inputs.items()}
        return ScorerChoice(recipe, model, "derived", inputs=ids)
    if model_path:
        path = Path(model_path).expanduser().resolve()
        if not (path / "config.json").is_file():
            raise InvalidInput(f"model: {model_path} is not a model folder", field="model")
        return ScorerChoice(recipe.for_local_model(), str(path), "transformers")
    if recipe.uses_llm:
        endpoint = endpoint or DEFAULT_ENDPOINT
        return ScorerChoice(recipe, get_endpoint(endpoint).model, endpoint, endpoint)
    if endpoint:
        raise InvalidInput(f"endpoint: {recipe.name} calls no model", field="endpoint")
    return ScorerChoice(recipe)


def stored_scorer(session: Session, choice: ScorerChoice) -> Scorer:
    """The Scorer row of a bound recipe; NotFound when it has never been used."""
    key = choice.recipe.key(choice.model, choice.provider)
    scorer = session.scalar(select(Scorer).where(Scorer.key == key))
    if scorer is None:
        raise NotFound(
            f"no {choice.recipe.name} scores from {choice.provider or 'here'}; "
            f"score with {choice.recipe.name} first"
        )
    return scorer


def get_or_create_scorer(session: Session, choice: ScorerChoice) -> Scorer:
    """The Scorer row for a bound recipe: a new version of the name when anything changed."""
    fields = choice.recipe.scorer_fields(choice.model, choice.provider)
    for _ in range(3):
        scorer = session.scalar(select(Scorer).where(Scorer.key == fields["key"]))
        if scorer is not None:
            return scorer
        newest = session.scalar(
            select(func.max(Scorer.version)).where(Scorer.name == fields["name"])
        )
        try:
            with session.begin_nested():
                scorer = Scorer(version=(newest or 0) + 1, **fields)
                session.add(scorer)
            return scorer
        except IntegrityError:
            continue  # another request created it (or took the version) first
    raise RuntimeError(f"could not store scorer {fields['name']}")


def create_custom_scorer(
    session: Session,
    name: str,
    prompt_template: str,
    *,
    parse: str = "first_number",
    low: float,
    high: float,
    system_prompt: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = 256,
    endpoint: str | None = None,
) -> Scorer:
    """Define an LLM rating recipe; a changed template is stored as a new version."""
    recipe = custom_recipe(
        name,
        prompt_template,
        parse=parse,
        low=low,
        high=high,
        system_prompt=system_prompt,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    endpoint = endpoint or DEFAULT_ENDPOINT
    choice = ScorerChoice(recipe, get_endpoint(endpoint).model, endpoint, endpoint)
    return get_or_create_scorer(session, choice)


# ---------------------------------------------------------------- jobs


def queue_for(recipe: Recipe) -> str:
    """Endpoint calls wait on the network (io); a local model wants the GPU; the rest is cpu."""
    if recipe.uses_llm:
        return "io"
    if recipe.kind == ScorerKind.LOCAL_LOGIT_SCORER:
        return "gpu"
    return "cpu"


def start_score_job(
    session: Session,
    dataset: Dataset,
    scorer_name: str,
    *,
    endpoint: str | None = None,
    model_path: str | None = None,
    budget_usd: float | None = None,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a job that scores every example of the dataset that has no score yet."""
    choice = choose_scorer(session, scorer_name, endpoint=endpoint, model_path=model_path)
    if budget_usd is not None:
        if budget_usd <= 0:
            raise InvalidInput("budget: must be more than 0 USD", field="budget_usd")
        if choice.endpoint is None or not choice.recipe.uses_llm:
            raise InvalidInput(
                f"budget: {choice.recipe.name} calls no priced endpoint", field="budget_usd"
            )
        require_priced(choice.endpoint, get_endpoint(choice.endpoint))
    scorer = get_or_create_scorer(session, choice)
    params: dict[str, Any] = {
        "scorer_id": scorer.id,
        "scorer": f"{scorer.name}@{scorer.version}",
        "endpoint": choice.endpoint,
        "model": choice.model,
    }
    if choice.inputs:
        params["inputs"] = choice.inputs
    job = create_job(
        session,
        "score",
        params,
        queue=queue_for(choice.recipe),
        user=user,
        dataset_id=dataset.id,
        idempotency_key=idempotency_key,
    )
    job.budget_usd = budget_usd
    return job


# ---------------------------------------------------------------- reading scores

FILTER = re.compile(r"^\s*([a-z0-9-]+(?:@\d+)?)\s*(>=|<=|!=|==|=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
STATE_FILTER = re.compile(r"^\s*([a-z0-9-]+(?:@\d+)?)\s*:\s*(ok|parse_error|failed|unscored)\s*$")


def score_condition(session: Session, expression: str) -> ColumnElement[bool]:
    """A WHERE clause on examples for `alpagasus>=4.5`, `lima=1` or `alpagasus:parse_error`."""
    if match := FILTER.match(expression):
        ref, op, number = match.groups()
        scorer = find_scorer(session, ref)
        value = float(number)
        compare = {
            ">=": Score.value >= value,
            "<=": Score.value <= value,
            ">": Score.value > value,
            "<": Score.value < value,
            "=": Score.value == value,
            "==": Score.value == value,
            "!=": Score.value != value,
        }[op]
        return _has_score(scorer, and_(Score.state == ScoreState.OK.value, compare))
    if match := STATE_FILTER.match(expression):
        ref, state = match.groups()
        scorer = find_scorer(session, ref)
        if state == "unscored":
            return ~_has_score(scorer, Score.state.is_not(None))
        return _has_score(scorer, Score.state == state)
    raise InvalidInput(
        f"score: {expression!r} is not SCORER OP NUMBER (e.g. alpagasus>=4.5) "
        "or SCORER:STATE (e.g. alpagasus:parse_error)",
        field="score",
    )


def scorer_of(expression: str) -> str:
    """The scorer a filter expression reads (`alpagasus` of `alpagasus>=4.5`)."""
    match = FILTER.match(expression) or STATE_FILTER.match(expression)
    if match is None:
        raise InvalidInput(f"score: {expression!r} is not a score filter", field="score")
    return match.group(1)


def _has_score(scorer: Scorer, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        Score.content_hash == Example.content_hash, Score.scorer_id == scorer.id, condition
    )


def histogram(session: Session, dataset: Dataset, ref: str, bins: int = 20) -> dict[str, Any]:
    """The distribution of a scorer's values over a dataset, and how many are not ok."""
    if not 1 <= bins <= 200:
        raise InvalidInput("bins: must be between 1 and 200", field="bins")
    scorer = find_scorer(session, ref)
    joined = (
        select(Score.scorer_id, Score.state, Score.value)
        .join(Example, Example.content_hash == Score.content_hash)
        .where(Example.dataset_id == dataset.id, Score.scorer_id == scorer.id)
        .subquery()
    )
    states: dict[str, int] = dict(
        session.execute(select(joined.c.state, func.count()).group_by(joined.c.state)).all()
    )
    total = count_examples(session, dataset)
    low, high, mean = session.execute(
        select(func.min(joined.c.value), func.max(joined.c.value), func.avg(joined.c.value)).where(
            joined.c.state == ScoreState.OK.value
        )
    ).one()
    ranges = {scorer.id: (low, high, mean)}
    edges = _edges([scorer], ranges, bins)
    counts = _all_bins(session, joined, edges, bins)
    [drawn] = _histograms([scorer], total, {scorer.id: states}, ranges, edges, counts, bins, None)
    values: dict[float, int] = dict(
        session.execute(
            select(joined.c.value, func.count())
            .where(joined.c.state == ScoreState.OK.value)
            .group_by(joined.c.value)
            .order_by(joined.c.value)
            .limit(101)
        ).all()
    )
    del drawn["sampled"]
    # Exact counts when the values are few (ratings on a 0.5 grid, Deita on 1-6).
    drawn["values"] = (
        None if len(values) > 100 else [{"value": v, "count": c} for v, c in values.items()]
    )
    return drawn


def scores_summary(session: Session, dataset: Dataset) -> list[dict[str, Any]]:
    """Which scorers have scored this dataset, with how many ok values each."""
    rows = session.execute(
        select(Scorer, func.count(Score.id))
        .join(Score, Score.scorer_id == Scorer.id)
        .join(
            Example,
            and_(Example.content_hash == Score.content_hash, Example.dataset_id == dataset.id),
        )
        .where(Score.state == ScoreState.OK.value)
        .group_by(Scorer.id)
        .order_by(Scorer.name, Scorer.version)
    ).all()
    return [
        {"scorer": f"{s.name}@{s.version}", "kind": s.kind, "model": s.model, "scored": n}
        for s, n in rows
    ]


def score_histograms(session: Session, dataset: Dataset, bins: int = 24) -> list[dict[str, Any]]:
    """The histogram of every scorer that has scored this dataset, for the dataset page."""
    return [
        histogram(session, dataset, row["scorer"], bins) for row in scores_summary(session, dataset)
    ]


def dataset_histograms(
    session: Session,
    dataset: Dataset,
    bins: int = 24,
    *,
    sample: int | None = None,
    exact_up_to: int | None = None,
) -> list[dict[str, Any]]:
    """What `score_histograms` gives (without exact value counts) for every scorer at once,
    for the dashboard. Up to `exact_up_to` examples (EXACT_UP_TO), in two passes over the
    dataset's scores (states and ranges, then bins); a larger dataset, where each pass costs
    seconds, through a uniform sample of `sample` (POOL_SAMPLE) examples, whose size "sampled"
    then gives (None when exact)."""
    drawn = sample_if_large(
        session, dataset, [Example.content_hash], sample=sample, exact_up_to=exact_up_to
    )
    if drawn is not None:
        return _sampled_histograms(session, [row[0] for row in drawn.values()], bins)
    joined = (
        select(Score.scorer_id, Score.state, Score.value)
        .join(Example, Example.content_hash == Score.content_hash)
        .where(Example.dataset_id == dataset.id)
        .subquery()
    )
    per_state = session.execute(
        select(
            joined.c.scorer_id,
            joined.c.state,
            func.count(),
            func.min(joined.c.value),
            func.max(joined.c.value),
            func.avg(joined.c.value),
        ).group_by(joined.c.scorer_id, joined.c.state)
    ).all()
    states: dict[int, dict[str, int]] = {}
    ranges: dict[int, tuple[Any, Any, Any]] = {}
    for scorer_id, state, count, low, high, mean in per_state:
        states.setdefault(scorer_id, {})[state] = count
        if state == ScoreState.OK.value:
            ranges[scorer_id] = (low, high, mean)
    scorers = _scorers(session, list(ranges))
    total = count_examples(session, dataset)
    edges = _edges(scorers, ranges, bins)
    counts = _all_bins(session, joined, edges, bins)
    return _histograms(scorers, total, states, ranges, edges, counts, bins, None)


def _sampled_histograms(session: Session, hashes: list[str], bins: int) -> list[dict[str, Any]]:
    """The dashboard's histograms over the examples with these contents, counted here."""
    states: dict[int, dict[str, int]] = {}
    values: dict[int, list[float]] = {}
    for (scorer_id, _), (state, value) in scores_of(session, hashes).items():
        per_state = states.setdefault(scorer_id, {})
        per_state[state] = per_state.get(state, 0) + 1
        if state == ScoreState.OK.value and value is not None:
            values.setdefault(scorer_id, []).append(value)
    ranges = {i: (min(v), max(v), sum(v) / len(v)) for i, v in values.items()}
    scorers = _scorers(session, list(ranges))
    edges = _edges(scorers, ranges, bins)
    counts: dict[tuple[int, int], int] = {}
    for scorer_id, (low, width) in edges.items():
        for value in values[scorer_id]:
            # As in `_all_bins`: the floor, the top edge in the last bin, below the range in none.
            i = min(math.floor((value - low) / width), bins - 1)
            counts[(scorer_id, i)] = counts.get((scorer_id, i), 0) + 1
    return _histograms(scorers, len(hashes), states, ranges, edges, counts, bins, len(hashes))


def _scorers(session: Session, ids: list[int]) -> list[Scorer]:
    query = select(Scorer).where(Scorer.id.in_(ids)).order_by(Scorer.name, Scorer.version)
    return list(session.scalars(query))


def _edges(
    scorers: list[Scorer], ranges: dict[int, tuple[Any, Any, Any]], bins: int
) -> dict[int, tuple[float, float]]:
    """Scorer id -> (low edge, bin width): the recipe's range, a side it leaves open taken
    from the values seen."""
    edges: dict[int, tuple[float, float]] = {}
    for scorer in scorers:
        recipe = recipe_from_scorer(scorer)
        low, high, _ = ranges[scorer.id]
        lo = recipe.low if recipe.low is not None else low
        hi = recipe.high if recipe.high is not None else high
        if lo is not None and hi is not None:
            edges[scorer.id] = (lo, (hi - lo) / bins if hi > lo else 1.0)
    return edges


def _histograms(
    scorers: list[Scorer],
    total: int,
    states: dict[int, dict[str, int]],
    ranges: dict[int, tuple[Any, Any, Any]],
    edges: dict[int, tuple[float, float]],
    counts: dict[tuple[int, int], int],
    bins: int,
    sampled: int | None,
) -> list[dict[str, Any]]:
    return [
        {
            "scorer": s.name,
            "version": s.version,
            "key": s.key,
            "model": s.model,
            "total": total,
            "states": {state.value: states[s.id].get(state.value, 0) for state in ScoreState}
            | {"unscored": total - sum(states[s.id].values())},
            "min": ranges[s.id][0],
            "max": ranges[s.id][1],
            "mean": float(ranges[s.id][2]) if ranges[s.id][2] is not None else None,
            "bins": [
                {
                    "low": edges[s.id][0] + i * edges[s.id][1],
                    "high": edges[s.id][0] + (i + 1) * edges[s.id][1],
                    "count": counts.get((s.id, i), 0),
                }
                for i in range(bins)
            ]
            if s.id in edges
            else [],
            "values": None,
            "sampled": sampled,
        }
        for s in scorers
    ]


def _all_bins(
    session: Session, joined: Any, edges: dict[int, tuple[float, float]], count: int
) -> dict[tuple[int, int], int]:
    """(scorer id, bin index) -> ok values in that bin, for every scorer in one pass."""
    if not edges:
        return {}
    low = case({i: lo for i, (lo, _) in edges.items()}, value=joined.c.scorer_id)
    width = case({i: w for i, (_, w) in edges.items()}, value=joined.c.scorer_id)
    offset = (joined.c.value - low) / width
    step = cast(func.floor(offset), Integer)
    # The top edge belongs to the last bin (a 5 on a 0-5 scale).
    index = case((step >= count, count - 1), else_=step)
    rows = session.execute(
        select(joined.c.scorer_id, index, func.count())
        .where(joined.c.state == ScoreState.OK.value, joined.c.scorer_id.in_(list(edges)))
        .group_by(joined.c.scorer_id, index)
    )
    return {(int(s), int(i)): n for s, i, n in rows}
