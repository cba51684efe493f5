"""The chat requests (or local prompts) that score one example with a recipe."""

from __future__ import annotations

from app.models.scoring import ScorerKind
from app.platform.errors import InvalidInput
from app.platform.llm.chat import ChatRequest
from app.scoring.example_text import ExampleText
from app.scoring.recipes import Recipe
from app.scoring.reward import conversation
from app.scoring.reward_endpoint import PARSE as REWARD_ENDPOINT


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
    if recipe.parse == REWARD_ENDPOINT:  # the conversation itself, the answer to rate last
        return [ChatRequest.of(conversation(example), **sampling)]
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
