"""JSON API for scorers, score jobs and score distributions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.datasets.service import get_dataset
from app.platform.db import DB
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import IdempotencyKey
from app.scoring import service
from app.scoring.recipes import BUILTIN_RECIPES
from app.scoring.schemas import Histogram, RecipeCreate, ScorerOut, ScoreStart, ScoreSummary

router = APIRouter(prefix="/api/v1", tags=["scoring"])


@router.get("/scorers", response_model=list[ScorerOut])
def list_scorers(session: DB, _: ApiAnnotator) -> list[ScorerOut]:
    """Every stored scorer version (a recipe bound to a model), newest version first."""
    return [ScorerOut.model_validate(s) for s in service.list_scorers(session)]


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
        user=user,
        idempotency_key=idempotency_key,
    )
    return JobOut.model_validate(job)


@router.get("/datasets/{name}/scores", response_model=list[ScoreSummary])
def dataset_scores(name: str, session: DB, _: ApiAnnotator) -> list[ScoreSummary]:
    """The scorers that have scored this dataset, with how many ok scores each."""
    summary = service.scores_summary(session, get_dataset(session, name))
    return [ScoreSummary.model_validate(row) for row in summary]


@router.get("/datasets/{name}/scores/{scorer}/histogram", response_model=Histogram)
def score_histogram(
    name: str,
    scorer: str,
    session: DB,
    _: ApiAnnotator,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Histogram:
    """The distribution of a scorer's values over a dataset (`scorer` is NAME or NAME@VERSION)."""
    return Histogram.model_validate(
        service.histogram(session, get_dataset(session, name), scorer, bins)
    )
