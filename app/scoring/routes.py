"""JSON API for scorers, score jobs and score distributions."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.datasets.service import get_dataset
from app.models import User
from app.platform.db import DB
from app.platform.jobs.schemas import JobOut, hide_server_paths, looks_like_path, sees_server_paths
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import IdempotencyKey
from app.scoring import service
from app.scoring.recipes import BUILTIN_RECIPES
from app.scoring.schemas import Histogram, RecipeCreate, ScorerOut, ScoreStart, ScoreSummary

router = APIRouter(prefix="/api/v1", tags=["scoring"])
Shown = TypeVar("Shown", bound=BaseModel)


@router.get("/scorers", response_model=list[ScorerOut])
def list_scorers(session: DB, user: ApiAnnotator) -> list[ScorerOut]:
    """Every stored scorer version (a recipe bound to a model), newest version first; an
    annotator sees a local model's folder name, not its path."""
    return [_shown(ScorerOut.model_validate(s), user) for s in service.list_scorers(session)]


@router.get("/scorers/builtin", response_model=list[str])
def builtin_scorers(_: ApiAnnotator) -> list[str]:
    """The names of the built-in recipes."""
    return sorted(BUILTIN_RECIPES)


@router.post("/scorers", response_model=ScorerOut, status_code=201)
def create_scorer(body: RecipeCreate, session: DB, _: ApiLead) -> ScorerOut:
    """Define an LLM rating recipe; the same name with a changed template is a new version."""
    scorer = service.create_custom_scorer(
        session,
        body.name,
        body.prompt_template,
        parse=body.parse,
        low=body.low,
        high=body.high,
        system_prompt=body.system_prompt,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        endpoint=body.endpoint,
    )
    return ScorerOut.model_validate(scorer)


@router.post("/datasets/{name}/scores", response_model=JobOut, status_code=202)
def start_scoring(
    name: str,
    body: ScoreStart,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Score every example of the dataset that has no score from this scorer yet."""
    job = service.start_score_job(
        session,
        get_dataset(session, name),
        body.scorer,
        endpoint=body.endpoint,
        model_path=body.model,
        budget_usd=body.budget_usd,
        batch=body.batch,
        user=user,
        idempotency_key=idempotency_key,
    )
    return JobOut.model_validate(job)


@router.get("/datasets/{name}/scores", response_model=list[ScoreSummary])
def dataset_scores(name: str, session: DB, user: ApiAnnotator) -> list[ScoreSummary]:
    """The scorers that have scored this dataset, with how many ok scores each."""
    summary = service.scores_summary(session, get_dataset(session, name))
    return [_shown(ScoreSummary.model_validate(row), user) for row in summary]


@router.get("/datasets/{name}/scores/{scorer}/histogram", response_model=Histogram)
def score_histogram(
    name: str,
    scorer: str,
    session: DB,
    user: ApiAnnotator,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Histogram:
    """The distribution of a scorer's values over a dataset (`scorer` is NAME or NAME@VERSION)."""
    return _shown(
        Histogram.model_validate(
            service.histogram(session, get_dataset(session, name), scorer, bins)
        ),
        user,
    )


def _shown(out: Shown, user: User) -> Shown:
    """`out` without server paths for an annotator: a local model by its folder's name."""
    if sees_server_paths(user):
        return out
    update: dict[str, Any] = {}
    model = getattr(out, "model", None)
    if isinstance(model, str) and looks_like_path(model):
        update["model"] = PurePath(model).name
    if isinstance(getattr(out, "params", None), dict):
        update["params"] = hide_server_paths(out.params)  # type: ignore[attr-defined]
    return out.model_copy(update=update) if update else out
