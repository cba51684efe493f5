"""A lead's own LLM rating recipe, checked field by field before it is stored."""

from __future__ import annotations

import math
import re
import string

from app.models.scoring import ScorerKind
from app.platform.errors import InvalidInput
from app.scoring.parsing import validate_rule
from app.scoring.recipes import BUILTIN_RECIPES, Recipe

PLACEHOLDERS = ("instruction", "input", "output")
_NAME = re.compile(r"[a-z0-9-]{1,60}")


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
