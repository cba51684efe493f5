"""The scoring domain's face to the others: scorers (versioned recipes), score jobs, score
filters and histograms. Other domains import scoring through this module only; the names
below that live in sibling modules are re-exported on purpose."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Dataset, Job, ScorerKind, User
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import create_job
from app.platform.llm.endpoints import get_endpoint, require_priced

# Re-exported: the scoring domain's public names that live in its other modules.
from app.scoring.example_text import ExampleText as ExampleText
from app.scoring.filters import score_condition as score_condition
from app.scoring.filters import scorer_of as scorer_of
from app.scoring.histograms import dataset_histograms as dataset_histograms
from app.scoring.histograms import histogram as histogram
from app.scoring.histograms import score_histograms as score_histograms
from app.scoring.histograms import scores_summary as scores_summary
from app.scoring.recipes import BUILTIN_RECIPES as BUILTIN_RECIPES
from app.scoring.recipes import Recipe
from app.scoring.recipes import recipe_from_scorer as recipe_from_scorer
from app.scoring.scorers import ScorerChoice as ScorerChoice
from app.scoring.scorers import choose_scorer as choose_scorer
from app.scoring.scorers import create_custom_scorer as create_custom_scorer
from app.scoring.scorers import find_scorer as find_scorer
from app.scoring.scorers import get_or_create_scorer as get_or_create_scorer
from app.scoring.scorers import list_scorers as list_scorers
from app.scoring.sorting import ScoreColumns as ScoreColumns
from app.scoring.sorting import ScoreSort as ScoreSort
from app.scoring.sorting import score_columns as score_columns
from app.scoring.sorting import sorted_page as sorted_page


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
    batch: bool = False,
    user: User | None = None,
    idempotency_key: str | None = None,
    example_ids: list[int] | None = None,
) -> Job:
    """Queue a job that scores every example of the dataset (only `example_ids`, when given)
    that has no score yet (with `batch`, its LLM calls go through the Batch API at the batch
    price)."""
    choice = choose_scorer(session, scorer_name, endpoint=endpoint, model_path=model_path)
    if batch and (choice.endpoint is None or not choice.recipe.uses_llm):
        raise InvalidInput(
            f"batch: {choice.recipe.name} calls no LLM endpoint, so it has no batch to run",
            field="batch",
        )
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
    if example_ids is not None:
        params["example_ids"] = sorted(set(example_ids))
    if batch:
        params["batch"] = True
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
