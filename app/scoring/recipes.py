"""Scoring recipes: what a scorer asks, how its answer is read, and the key that versions it.

A recipe is pure data: the scoring job builds the requests (`chat_requests`), sends them
through the LLM client (or a local model), and hands the results back to `interpretation`.
Every knob that can change a score goes into `Recipe.key`, so a changed template, model, range
or parse rule is a new scorer whose scores never mix with the old ones. Leads' own recipes are
checked in `custom_recipes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.models.scoring import Scorer, ScorerKind
from app.platform.errors import InvalidInput
from app.platform.hashing import json_sha256
from app.scoring import deita, ifd, lima, reward_endpoint
from app.scoring.prompts import (
    ALPAGASUS_ACCURACY,
    ALPAGASUS_HELPFULNESS,
    ALPAGASUS_SYSTEM,
    ALPAGASUS_TRIPLET,
)

# An OpenAI endpoint gives at most 20 alternatives per position.
DEITA_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class Recipe:
    """A scoring recipe: everything that decides a score, apart from the model that gives it."""

    name: str
    kind: ScorerKind
    system_prompt: str | None = None
    prompt_template: str | None = None
    # "alpagasus", "first_number", "regex:<pattern>" (LLM ratings); "deita"; "" (no model text)
    parse: str = ""
    low: float | None = None
    high: float | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    top_logprobs: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    needs: tuple[str, ...] = ()
    # Bumped when the code behind a built-in recipe changes what it computes.
    revision: int = 1
    version_note: str = ""

    def __post_init__(self) -> None:
        # 0 and 0.0 must hash alike, or a recipe rebuilt from JSON would get another key.
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "needs", tuple(self.needs))
        object.__setattr__(self, "params", dict(self.params))

    def stored_params(self) -> dict[str, Any]:
        """Everything, besides name, kind, template, model and provider, that rebuilds the recipe."""
        return {
            "system_prompt": self.system_prompt,
            "parse": self.parse,
            "low": self.low,
            "high": self.high,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_logprobs": self.top_logprobs,
            "needs": list(self.needs),
            "revision": self.revision,
            "version_note": self.version_note,
            "extra": dict(self.params),
        }

    def key(self, model: str | None, provider: str | None) -> str:
        """A sha256 over everything that can change a score; any change gives a new key."""
        identity = self.stored_params()
        # The note describes a version; it does not change what is computed.
        identity.pop("version_note")
        identity |= {
            "name": self.name,
            "kind": self.kind.value,
            "prompt_template": self.prompt_template,
            "model": model,
            "provider": provider,
        }
        return json_sha256(identity)

    def scorer_fields(self, model: str | None, provider: str | None) -> dict[str, Any]:
        """The columns of the Scorer row that stores this recipe."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "prompt_template": self.prompt_template,
            "model": model,
            "provider": provider,
            "key": self.key(model, provider),
            "params": self.stored_params(),
        }

    def for_endpoint(self) -> Recipe:
        """The local reward recipe asked of an endpoint that serves a reward instead (the same
        name, another kind and key); any other recipe as it is."""
        return ENDPOINT_REWARD if self.parse == "reward" else self

    def for_local_model(self) -> Recipe:
        """The same Deita recipe, scored by a local transformers model instead of an endpoint
        (a recipe that only a local model scores, as it is)."""
        if self.kind == ScorerKind.LOCAL_LOGIT_SCORER:
            return self
        if self.parse != "deita":
            raise InvalidInput(f"{self.name} cannot be scored by a local model", field="scorer")
        return replace(self, kind=ScorerKind.LOCAL_LOGIT_SCORER)

    @property
    def is_derived(self) -> bool:
        """True when the recipe combines other recipes' stored scores and calls nothing."""
        return bool(self.needs)

    @property
    def uses_llm(self) -> bool:
        """True when scoring sends requests to an LLM endpoint."""
        calls = self.kind in (ScorerKind.LLM_RATING, ScorerKind.LOGPROB_SCORER)
        return calls and not self.is_derived

    @property
    def is_local(self) -> bool:
        """True when scoring is a heuristic computed here, with no model at all."""
        return self.kind == ScorerKind.HEURISTIC and not self.is_derived


def _alpagasus(name: str, dimension: str, request: str) -> Recipe:
    """An AlpaGasus rating recipe on one dimension."""
    return Recipe(
        name=name,
        kind=ScorerKind.LLM_RATING,
        system_prompt=ALPAGASUS_SYSTEM,
        prompt_template=ALPAGASUS_TRIPLET + request,
        parse="alpagasus",
        low=0,
        high=5,
        temperature=0.0,
        max_tokens=256,
        params={"dimension": dimension},
    )


def _deita(name: str, dimension: str, template: str) -> Recipe:
    """A Deita scorer recipe, read from the log-probabilities of "1".."6"."""
    return Recipe(
        name=name,
        kind=ScorerKind.LOGPROB_SCORER,
        prompt_template=template,
        parse="deita",
        low=1,
        high=6,
        temperature=0.0,
        max_tokens=1,
        top_logprobs=DEITA_TOP_LOGPROBS,
        params={"dimension": dimension},
    )


def _ifd(name: str, definition: str, prompt: str) -> Recipe:
    """An IFD recipe (app/scoring/ifd.py), scored by a local causal LM."""
    return Recipe(
        name=name,
        kind=ScorerKind.LOCAL_LOGIT_SCORER,
        parse="ifd",
        low=0,
        params={
            "definition": definition,
            "prompt": prompt,
            "max_length": ifd.DEFINITIONS[definition],
            "multi_turn": "each answer after the turns before it, joined by blank lines; mean",
        },
    )


BUILTIN_RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="lima",
            kind=ScorerKind.HEURISTIC,
            low=0,
            high=1,
            params={"heuristic": "lima", "min_chars": lima.MIN_CHARS, "max_chars": lima.MAX_CHARS},
        ),
        Recipe(name="length", kind=ScorerKind.HEURISTIC, low=0, params={"heuristic": "length"}),
        _alpagasus("alpagasus", "accuracy", ALPAGASUS_ACCURACY),
        _alpagasus("alpagasus-helpfulness", "helpfulness", ALPAGASUS_HELPFULNESS),
        _deita("deita-complexity", "complexity", deita.COMPLEXITY_TEMPLATE),
        _deita("deita-quality", "quality", deita.QUALITY_TEMPLATE),
        Recipe(
            name="deita-evol",
            kind=ScorerKind.LOGPROB_SCORER,
            params={"combine": "sum_of_products"},
            needs=("deita-complexity", "deita-quality"),
        ),
        Recipe(
            name="reward",
            kind=ScorerKind.LOCAL_LOGIT_SCORER,
            parse="reward",
            params={"input": "chat template, else (prompt, answer) text pair", "value": "logit"},
        ),
        _ifd("ifd", "cherry", ifd.CHERRY_PROMPT_INPUT),
        _ifd("ifd-ppl", "superfiltering", ifd.SUPERFILTERING_PROMPT_INPUT),
    )
}


# `reward` with --endpoint: a reward model served the NIM way (app/scoring/reward_endpoint.py).
ENDPOINT_REWARD = Recipe(
    name="reward",
    kind=ScorerKind.LLM_RATING,
    parse=reward_endpoint.PARSE,
    max_tokens=reward_endpoint.MAX_TOKENS,
    params={
        "protocol": reward_endpoint.PROTOCOL,
        "input": "the conversation as chat messages, the answer to rate last",
        "value": " else ".join(reward_endpoint.VALUE_ATTRIBUTES),
    },
)


def get_recipe(name: str) -> Recipe:
    """The built-in recipe of that name."""
    try:
        return BUILTIN_RECIPES[name]
    except KeyError:
        names = ", ".join(BUILTIN_RECIPES)
        raise InvalidInput(f"unknown scorer {name!r}; built in: {names}", field="scorer") from None


def recipe_from_scorer(scorer: Scorer) -> Recipe:
    """Rebuild the recipe a Scorer row stores, built-in or custom."""
    params = dict(scorer.params or {})
    return Recipe(
        name=scorer.name,
        kind=ScorerKind(scorer.kind),
        system_prompt=params.get("system_prompt"),
        prompt_template=scorer.prompt_template,
        parse=params.get("parse", ""),
        low=params.get("low"),
        high=params.get("high"),
        temperature=params.get("temperature", 0.0),
        max_tokens=params.get("max_tokens", 256),
        top_logprobs=params.get("top_logprobs"),
        params=params.get("extra") or {},
        needs=tuple(params.get("needs") or ()),
        revision=params.get("revision", 1),
        version_note=params.get("version_note") or "",
    )
