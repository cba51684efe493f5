"""Scoring recipes: what a scorer asks, how its answer is read, and the key that versions it.

A recipe is pure data plus pure functions: the scoring job builds the requests, sends them
through the LLM client (or a local model), and hands the results back to `interpret`. Every
knob that can change a score goes into `Recipe.key`, so a changed template, model, range or
parse rule is a new scorer whose scores never mix with the old ones.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.models.scoring import Scorer, ScorerKind, ScoreState
from app.platform.errors import InvalidInput
from app.platform.hashing import json_sha256
from app.platform.llm.client import ChatRequest, ChatResult
from app.scoring import deita, lima
from app.scoring.parsing import parse_rating, validate_rule
from app.scoring.stats import text_stats

# Byte for byte as in gpt4life/alpagasus (rating/chatgpt_rating.py).
ALPAGASUS_SYSTEM = (
    "We would like to request your feedback on the performance of AI assistant in response to "
    "the instruction and the given input displayed following."
)
ALPAGASUS_TRIPLET = (
    "###Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}\n\n"
)
ALPAGASUS_ACCURACY = (
    "Please rate according to the accuracy of the response to the instruction and the input. "
    "Each assistant receives a score on a scale of 0 to 5, where a higher score indicates higher "
    "level of the accuracy. Please first output a single line containing value indicating the "
    "scores. In the subsequent line, please provide a comprehensive explanation of your "
    "evaluation, avoiding any potential bias. \n\n"
)
# "an score" is the paper's own wording, kept so that ratings match theirs.
ALPAGASUS_HELPFULNESS = (
    "Please rate according to the helpfulness of the response to the instruction and the input. "
    "Each assistant receives an score on a scale of 0 to 5, where a higher score indicates higher "
    "level of the helpfulness. Please first output a single line containing value indicating the "
    "scores. In the subsequent line, please provide a comprehensive explanation of your "
    "evaluation, avoiding any potential bias. \n\n"
)

PLACEHOLDERS = ("instruction", "input", "output")
# An OpenAI endpoint gives at most 20 alternatives per position.
DEITA_TOP_LOGPROBS = 20
_NAME = re.compile(r"[a-z0-9-]{1,60}")


@dataclass(frozen=True)
class Turn:
    """One user message and the assistant's reply ("" when there is none)."""

    user: str
    assistant: str


@dataclass(frozen=True)
class ExampleText:
    """The text of an example as the scorers read it."""

    instruction: str
    input: str
    output: str
    turns: tuple[Turn, ...]

    @classmethod
    def of(
        cls,
        messages: Sequence[Mapping[str, str]],
        instruction: str | None = None,
        input: str | None = None,
        output: str | None = None,
    ) -> ExampleText:
        """The scorers' view of an example's messages and its Alpaca fields."""
        turns = _turns(messages)
        if instruction is not None:
            return cls(instruction, input or "", output or "", turns)
        first = turns[0] if turns else Turn("", "")
        return cls(first.user, "", first.assistant, turns)

    @property
    def answer(self) -> str:
        """Every assistant turn, joined by blank lines."""
        if not self.turns:
            return self.output
        return "\n\n".join(turn.assistant for turn in self.turns)


def _turns(messages: Sequence[Mapping[str, str]]) -> tuple[Turn, ...]:
    """Consecutive user -> assistant pairs; system messages are not part of any turn."""
    turns: list[Turn] = []
    pending: str | None = None
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "user":
            if pending is not None:
                turns.append(Turn(pending, ""))
            pending = content
        elif role == "assistant":
            turns.append(Turn(pending or "", content))
            pending = None
    if pending is not None:
        turns.append(Turn(pending, ""))
    return tuple(turns)


@dataclass
class ScoreResult:
    """A score for one example: a value, or the state and raw text that say why there is none."""

    value: float | None
    state: ScoreState
    raw: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


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

    def for_local_model(self) -> Recipe:
        """The same Deita recipe, scored by a local transformers model instead of an endpoint."""
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
    )
}


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


def custom_recipe(
    name: str,
    prompt_template: str,
    *,
    parse: str = "first_number",
    low: float,
    high: float,
    system_prompt: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = 256,
) -> Recipe:
    """A lead's own LLM rating recipe, checked field by field."""
    if not _NAME.fullmatch(name):
        raise InvalidInput("a scorer name is 1 to 60 of a-z, 0-9 and '-'", field="name")
    if name in BUILTIN_RECIPES:
        raise InvalidInput(f"{name!r} is the name of a built-in scorer", field="name")
    validate_template(prompt_template)
    try:
        validate_rule(parse)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="parse") from None
    _validate_sampling(low, high, temperature, max_tokens)
    return Recipe(
        name=name,
        kind=ScorerKind.LLM_RATING,
        system_prompt=system_prompt or None,
        prompt_template=prompt_template,
        parse=parse,
        low=low,
        high=high,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def validate_template(template: str) -> None:
    """Raise InvalidInput unless the template uses only {instruction}, {input} and {output}."""
    try:
        fields = [item[1:] for item in string.Formatter().parse(template) if item[1] is not None]
    except ValueError as exc:
        raise InvalidInput(
            f"the template does not parse ({exc}); write a literal brace as {{{{ or }}}}",
            field="prompt_template",
        ) from None
    for field_name, spec, conversion in fields:
        # Attribute and index access ("{input.__class__}") would read more than the text.
        if field_name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + (field_name or "") + "}"
            raise InvalidInput(
                f"the template may use only {{instruction}}, {{input}} and {{output}}, not {shown}",
                field="prompt_template",
            )
    if not fields:
        raise InvalidInput(
            "the template uses none of {instruction}, {input}, {output}", field="prompt_template"
        )


def _validate_sampling(low: float, high: float, temperature: float, max_tokens: int) -> None:
    """Raise InvalidInput on a bad range or sampling parameter."""
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidInput("the range needs finite low < high", field="high")
    if not 0.0 <= temperature <= 2.0:
        raise InvalidInput("temperature is between 0 and 2", field="temperature")
    if not 1 <= max_tokens <= 32_768:
        raise InvalidInput("max_tokens is between 1 and 32768", field="max_tokens")


def render(template: str, instruction: str, input: str, output: str) -> str:
    """The template with the example's text in its placeholders."""
    # Braces in the values are plain text: format() parses the template only.
    return template.format(instruction=instruction, input=input, output=output)


def local_prompts(recipe: Recipe, example: ExampleText) -> list[str]:
    """The Deita prompt for each user/assistant turn of the example."""
    if recipe.parse != "deita" or recipe.prompt_template is None:
        raise InvalidInput(
            f"{recipe.name} is not scored from digit log-probabilities", field="scorer"
        )
    template = recipe.prompt_template
    return [render(template, turn.user, "", turn.assistant) for turn in example.turns]


def build_requests(recipe: Recipe, example: ExampleText) -> list[ChatRequest]:
    """The chat requests that score one example."""
    sampling = {
        "temperature": recipe.temperature,
        "max_tokens": recipe.max_tokens,
        "top_logprobs": recipe.top_logprobs,
    }
    if recipe.kind == ScorerKind.LLM_RATING and recipe.prompt_template is not None:
        user = render(recipe.prompt_template, example.instruction, example.input, example.output)
        system = (
            [{"role": "system", "content": recipe.system_prompt}] if recipe.system_prompt else []
        )
        return [ChatRequest.of([*system, {"role": "user", "content": user}], **sampling)]
    if recipe.kind == ScorerKind.LOGPROB_SCORER and not recipe.is_derived:
        prompts = local_prompts(recipe, example)
        return [ChatRequest.of([{"role": "user", "content": p}], **sampling) for p in prompts]
    raise InvalidInput(f"{recipe.name} sends no requests to an LLM", field="scorer")


def interpret(recipe: Recipe, example: ExampleText, results: Sequence[ChatResult]) -> ScoreResult:
    """The score that the endpoint's answers to `build_requests` give."""
    failures = [result.error for result in results if result.failed]
    if failures:
        return ScoreResult(None, ScoreState.FAILED, raw=failures[0])
    if not results:
        return ScoreResult(None, ScoreState.FAILED, raw="the example has no user/assistant turn")
    if recipe.kind == ScorerKind.LLM_RATING:
        return _read_rating(recipe, results[0])
    if recipe.parse == "deita":
        return _read_logprobs(example, results)
    raise InvalidInput(f"{recipe.name} reads no LLM answers", field="scorer")


def _read_rating(recipe: Recipe, result: ChatResult) -> ScoreResult:
    """A rating parsed from an answer; the raw text is kept whatever the outcome."""
    text = result.text or ""
    truncated = result.finish_reason == "length"
    parsed = parse_rating(text, recipe.parse, recipe.low, recipe.high, truncated=truncated)
    if parsed.value is None:
        return ScoreResult(
            None, ScoreState.PARSE_ERROR, raw=text, details={"reason": parsed.reason}
        )
    return ScoreResult(parsed.value, ScoreState.OK, raw=text)


def _read_logprobs(example: ExampleText, results: Sequence[ChatResult]) -> ScoreResult:
    """The Deita expected score per turn, from each turn's top log-probabilities."""
    if len(results) != len(example.turns):
        reason = f"{len(results)} answers for {len(example.turns)} turns"
        return ScoreResult(None, ScoreState.FAILED, raw=reason)
    if any(result.top_logprobs is None for result in results):
        reason = "the endpoint returned no log-probabilities; it must support top_logprobs"
        return ScoreResult(None, ScoreState.FAILED, raw=reason)
    scored = [deita.expected_score(result.top_logprobs or {}) for result in results]
    return from_turn_scores([value for value, _ in scored], [flag for _, flag in scored])


def from_turn_scores(
    values: Sequence[float], flags: Sequence[str | None] | None = None
) -> ScoreResult:
    """A Deita score from its per-turn values: their mean, with the turns kept in details."""
    if not values:
        return ScoreResult(None, ScoreState.FAILED, raw="the example has no user/assistant turn")
    flags = list(flags) if flags is not None else [None] * len(values)
    details: dict[str, Any] = {"turns": [float(v) for v in values], "flags": flags}
    if any(flags):
        details["flag"] = next(flag for flag in flags if flag)
    return ScoreResult(sum(values) / len(values), ScoreState.OK, details=details)


def score_locally(recipe: Recipe, example: ExampleText) -> ScoreResult:
    """A heuristic score, computed here without any model."""
    heuristic = recipe.params.get("heuristic")
    if heuristic == "length":
        stats = text_stats(example)
        return ScoreResult(float(stats["assistant_chars"]), ScoreState.OK, details=stats)
    if heuristic == "lima":
        return _lima(recipe, example)
    raise InvalidInput(f"{recipe.name} is not a heuristic computed here", field="scorer")


def _lima(recipe: Recipe, example: ExampleText) -> ScoreResult:
    """The LIMA checks on all assistant turns joined, and the cleaned text when it differs."""
    answer = example.answer
    bounds = {k: int(recipe.params[k]) for k in ("min_chars", "max_chars") if k in recipe.params}
    check = lima.check_answer(answer, **bounds)
    details: dict[str, Any] = {"failed": check.failed}
    if check.cleaned != answer:
        details["cleaned"] = check.cleaned
        if len(example.turns) > 1:
            details["cleaned_turns"] = [lima.clean(turn.assistant) for turn in example.turns]
    return ScoreResult(check.value, ScoreState.OK, details=details)


def derive(
    recipe: Recipe, inputs: Mapping[str, tuple[float | None, Mapping[str, Any]]]
) -> ScoreResult:
    """A derived score from the stored (value, details) of the recipes it needs."""
    if recipe.params.get("combine") != "sum_of_products":
        raise InvalidInput(f"{recipe.name} is not derived from other scores", field="scorer")
    per_input: list[list[float]] = []
    for name in recipe.needs:
        turns = _input_turns(name, inputs.get(name))
        if isinstance(turns, str):
            return ScoreResult(None, ScoreState.FAILED, raw=turns)
        per_input.append(turns)
    if len({len(turns) for turns in per_input}) != 1:
        counts = ", ".join(f"{n}: {len(t)}" for n, t in zip(recipe.needs, per_input, strict=True))
        return ScoreResult(None, ScoreState.FAILED, raw=f"the inputs differ in turns ({counts})")
    products = [math.prod(values) for values in zip(*per_input, strict=True)]
    details: dict[str, Any] = {"turns": products}
    flags = [inputs[name][1].get("flag") for name in recipe.needs]
    if any(flags):
        details["flag"] = next(flag for flag in flags if flag)
    return ScoreResult(sum(products), ScoreState.OK, details=details)


def _input_turns(
    name: str, stored: tuple[float | None, Mapping[str, Any]] | None
) -> list[float] | str:
    """The per-turn values of one input score, or why it cannot be used."""
    if stored is None:
        return f"no {name} score for this example: score it first"
    value, details = stored
    turns = details.get("turns") if details else None
    if value is None:
        return f"the {name} score has no value"
    if not isinstance(turns, list) or not turns:
        return f"the {name} score keeps no per-turn values"
    return [float(t) for t in turns]
