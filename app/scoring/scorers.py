"""Scorers: versioned recipes bound to what computes them (an endpoint, a local model, or
nothing), found by name, name@version or key."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Scorer, ScorerKind
from app.platform.errors import InvalidInput, NotFound
from app.platform.llm.endpoints import get_endpoint
from app.platform.local_models import check_model_path
from app.scoring.custom_recipes import custom_recipe
from app.scoring.recipes import BUILTIN_RECIPES, Recipe, get_recipe, recipe_from_scorer

DEFAULT_ENDPOINT = "default"


@dataclass(frozen=True)
class ScorerChoice:
    """A recipe bound to what computes it: an endpoint, a local model path, or nothing."""

    recipe: Recipe
    model: str | None = None
    provider: str | None = None
    endpoint: str | None = None
    inputs: dict[str, int] = field(default_factory=dict)  # derived: input name -> scorer id


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
    if endpoint and not model_path:
        recipe = recipe.for_endpoint()
    if recipe.kind == ScorerKind.LOCAL_LOGIT_SCORER and not model_path:
        also = (
            " or an endpoint that serves a reward (--endpoint NAME)"
            if recipe.parse == "reward"
            else ""
        )
        raise InvalidInput(
            f"model: {recipe.name} needs a local model (--model PATH){also}", field="model"
        )
    if model_path:
        path = check_model_path(model_path)
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
