"""Scoring recipes: the AlpaGasus prompts byte for byte, requests, reading answers, keys."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, cast

import pytest

from app.models.scoring import Scorer, ScorerKind, ScoreState
from app.platform.errors import InvalidInput
from app.platform.llm.chat import ChatResult
from app.scoring.chat_requests import build_requests, local_prompts
from app.scoring.custom_recipes import custom_recipe
from app.scoring.example_text import ExampleText, Turn
from app.scoring.interpretation import derive, from_turn_scores, interpret, score_locally
from app.scoring.recipes import BUILTIN_RECIPES, Recipe, get_recipe, recipe_from_scorer

SYSTEM = "We would like to request your feedback on the performance of AI assistant in response to the instruction and the given input displayed following."
ACCURACY = "Please rate according to the accuracy of the response to the instruction and the input. Each assistant receives a score on a scale of 0 to 5, where a higher score indicates higher level of the accuracy. Please first output a single line containing value indicating the scores. In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias. \n\n"
HELPFULNESS = "Please rate according to the helpfulness of the response to the instruction and the input. Each assistant receives an score on a scale of 0 to 5, where a higher score indicates higher level of the helpfulness. Please first output a single line containing value indicating the scores. In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias. \n\n"

ALPACA = ExampleText.of(
    [
        {"role": "user", "content": "Translate to French.\n\nGood {morning}"},
        {"role": "assistant", "content": "Bonjour {matin}"},
    ],
    "Translate to French.",
    "Good {morning}",
    "Bonjour {matin}",
)
CHAT = ExampleText.of(
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
    ],
    None,
    None,
    None,
)


def answer(text: str | None, finish_reason: str = "stop", **kw: Any) -> ChatResult:
    """A successful chat result."""
    return ChatResult(text=text, finish_reason=finish_reason, **kw)


def logprobs(dominant: int | None = None, missing: str | None = None) -> ChatResult:
    """A one-token answer with top log-probabilities over the digits."""
    top = {str(d): math.log(1 / 6) for d in range(1, 7)}
    if dominant is not None:
        top = {str(d): -40.0 for d in range(1, 7)} | {str(dominant): 0.0}
    top.pop(missing or "", None)
    return answer("1", finish_reason="length", top_logprobs=top)


# Example text


def test_example_text_from_alpaca_fields() -> None:
    assert ALPACA.instruction == "Translate to French."
    assert ALPACA.input == "Good {morning}"
    assert ALPACA.output == "Bonjour {matin}"
    assert ALPACA.turns == (Turn("Translate to French.\n\nGood {morning}", "Bonjour {matin}"),)


def test_example_text_from_messages() -> None:
    assert (CHAT.instruction, CHAT.input, CHAT.output) == ("Hi", "", "Hello!")
    assert CHAT.turns == (Turn("Hi", "Hello!"), Turn("What is 2+2?", "4"))
    assert CHAT.answer == "Hello!\n\n4"


def test_a_user_message_without_reply_is_a_turn_with_an_empty_answer() -> None:
    text = ExampleText.of(
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], None, None, None
    )
    assert text.turns == (Turn("a", ""), Turn("b", ""))


# AlpaGasus


def test_alpagasus_prompt_is_the_papers_byte_for_byte() -> None:
    (request,) = build_requests(get_recipe("alpagasus"), ALPACA)
    user = (
        "###Instruction:\nTranslate to French.\n\n### Input:\nGood {morning}\n\n### Response:\nBonjour {matin}\n\n"
        + ACCURACY
    )
    assert request.messages == (("system", SYSTEM), ("user", user))
    assert (request.temperature, request.max_tokens, request.top_logprobs) == (0.0, 256, None)


def test_alpagasus_helpfulness_keeps_the_papers_an_score() -> None:
    (request,) = build_requests(get_recipe("alpagasus-helpfulness"), ALPACA)
    assert request.messages[0] == ("system", SYSTEM)
    assert request.messages[1][1].endswith(HELPFULNESS)
    assert "receives an score" in request.messages[1][1]


def test_alpagasus_on_a_chat_uses_its_first_turn_and_an_empty_input() -> None:
    (request,) = build_requests(get_recipe("alpagasus"), CHAT)
    assert request.messages[1][1].startswith(
        "###Instruction:\nHi\n\n### Input:\n\n\n### Response:\nHello!\n\n"
    )


def test_a_rating_is_read_and_its_text_kept() -> None:
    result = interpret(get_recipe("alpagasus"), ALPACA, [answer("4.5\nAccurate.")])
    assert (result.value, result.state, result.raw) == (4.5, ScoreState.OK, "4.5\nAccurate.")


@pytest.mark.parametrize(
    ("text", "finish_reason"),
    [
        ("The translation is correct.", "stop"),
        ("11/10", "stop"),
        ("-1", "stop"),
        ("5.5", "stop"),
        ("I'm sorry, but I can't help with that.", "stop"),
        ("4", "length"),
    ],
)
def test_unreadable_ratings_are_parse_errors_with_the_text_kept(
    text: str, finish_reason: str
) -> None:
    result = interpret(get_recipe("alpagasus"), ALPACA, [answer(text, finish_reason)])
    assert result.value is None
    assert result.state == ScoreState.PARSE_ERROR
    assert result.raw == text
    assert result.details["reason"]


def test_a_failed_call_is_a_failed_score() -> None:
    failed = ChatResult(text=None, error="timeout after 3 retries")
    result = interpret(get_recipe("alpagasus"), ALPACA, [failed])
    assert (result.value, result.state, result.raw) == (
        None,
        ScoreState.FAILED,
        "timeout after 3 retries",
    )


# Deita through an endpoint


def test_deita_requests_one_per_turn() -> None:
    requests = build_requests(get_recipe("deita-complexity"), CHAT)
    assert [r.messages for r in requests] == [
        (
            (
                "user",
                "You are a helpful assistant. Please identify the complexity score of the following user query. \n##Query: Hi  \n##Complexity: ",
            ),
        ),
        (
            (
                "user",
                "You are a helpful assistant. Please identify the complexity score of the following user query. \n##Query: What is 2+2?  \n##Complexity: ",
            ),
        ),
    ]
    assert all((r.temperature, r.max_tokens, r.top_logprobs) == (0.0, 1, 20) for r in requests)


def test_deita_quality_prompt_holds_the_turns_answer() -> None:
    prompts = local_prompts(get_recipe("deita-quality"), CHAT)
    assert prompts[1] == (
        "You are a helpful assistant. Please identify the quality score of the Response corresponding to the Question. \n #Question#:\nWhat is 2+2?\n#Response#:\n4 \n##Quality: "
    )


def test_deita_score_is_the_mean_over_turns() -> None:
    result = interpret(get_recipe("deita-complexity"), CHAT, [logprobs(), logprobs(dominant=6)])
    assert result.state == ScoreState.OK
    assert result.details["turns"] == pytest.approx([3.5, 6.0])
    assert result.value == pytest.approx(4.75)
    assert result.details["flags"] == [None, None]
    assert "flag" not in result.details


def test_deita_missing_token_gives_three_and_a_flag() -> None:
    result = interpret(get_recipe("deita-quality"), CHAT, [logprobs(missing="4"), logprobs()])
    assert result.details["turns"] == pytest.approx([3.0, 3.5])
    assert result.details["flags"] == ["tokens_missing", None]
    assert result.details["flag"] == "tokens_missing"


def test_deita_without_logprobs_is_failed_not_three() -> None:
    result = interpret(get_recipe("deita-quality"), ALPACA, [answer("5")])
    assert result.state == ScoreState.FAILED
    assert "log-probabilities" in (result.raw or "")


def test_deita_with_a_failed_turn_is_failed() -> None:
    results = [logprobs(), ChatResult(text=None, error="HTTP 500")]
    result = interpret(get_recipe("deita-quality"), CHAT, results)
    assert (result.state, result.raw) == (ScoreState.FAILED, "HTTP 500")


def test_local_turn_scores_make_the_same_result() -> None:
    assert from_turn_scores([2.0, 4.0]).value == 3.0
    assert from_turn_scores([]).state == ScoreState.FAILED


# deita-evol


def test_evol_is_the_sum_over_turns_of_complexity_times_quality() -> None:
    inputs = {
        "deita-complexity": (3.0, {"turns": [2.0, 4.0]}),
        "deita-quality": (4.0, {"turns": [5.0, 3.0]}),
    }
    result = derive(get_recipe("deita-evol"), inputs)
    assert result.state == ScoreState.OK
    assert result.value == pytest.approx(2 * 5 + 4 * 3)
    assert result.details["turns"] == pytest.approx([10.0, 12.0])


def test_evol_keeps_a_flag_of_its_inputs() -> None:
    inputs: dict[str, tuple[float | None, dict[str, Any]]] = {
        "deita-complexity": (3.0, {"turns": [3.0], "flag": "tokens_missing"}),
        "deita-quality": (4.0, {"turns": [4.0]}),
    }
    result = derive(get_recipe("deita-evol"), inputs)
    assert (result.value, result.details["flag"]) == (12.0, "tokens_missing")


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"deita-quality": (4.0, {"turns": [4.0]})}, "no deita-complexity score"),
        (
            {"deita-complexity": (None, {}), "deita-quality": (4.0, {"turns": [4.0]})},
            "has no value",
        ),
        ({"deita-complexity": (3.0, {}), "deita-quality": (4.0, {"turns": [4.0]})}, "per-turn"),
        (
            {
                "deita-complexity": (3.0, {"turns": [3.0, 3.0]}),
                "deita-quality": (4.0, {"turns": [4.0]}),
            },
            "differ in turns",
        ),
    ],
)
def test_evol_without_usable_inputs_is_failed(inputs: Any, reason: str) -> None:
    result = derive(get_recipe("deita-evol"), inputs)
    assert (result.value, result.state) == (None, ScoreState.FAILED)
    assert reason in (result.raw or "")


def test_evol_sends_nothing() -> None:
    evol = get_recipe("deita-evol")
    assert evol.is_derived and not evol.uses_llm and not evol.is_local
    assert evol.needs == ("deita-complexity", "deita-quality")
    with pytest.raises(InvalidInput):
        build_requests(evol, CHAT)


# Heuristics


def test_length_is_the_assistant_characters_with_the_stats_kept() -> None:
    result = score_locally(get_recipe("length"), CHAT)
    assert result.value == len("Hello!") + len("4")
    assert result.details["turns"] == 2
    assert result.details["characters"] == len("Hi" + "Hello!" + "What is 2+2?" + "4")
    assert result.details["words"] == 1 + 1 + 3 + 1
    assert result.details["instruction_chars"] == 2


def test_lima_checks_all_turns_joined() -> None:
    text = ExampleText.of(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "See [the docs](https://example.com)."},
            {"role": "user", "content": "and?"},
            {"role": "assistant", "content": "I think so."},
        ],
        None,
        None,
        None,
    )
    result = score_locally(get_recipe("lima"), text)
    assert result.details["failed"] == ["length", "first_person", "links"]
    assert result.value == pytest.approx(3 / 6)
    assert result.details["cleaned"] == "See the docs.\n\nI think so."
    assert result.details["cleaned_turns"] == ["See the docs.", "I think so."]


def test_lima_stores_no_cleaned_text_when_nothing_changes() -> None:
    result = score_locally(get_recipe("lima"), CHAT)
    assert "cleaned" not in result.details


def test_lima_length_bounds_come_from_the_recipe() -> None:
    short = Recipe(
        name="lima",
        kind=ScorerKind.HEURISTIC,
        params={"heuristic": "lima", "min_chars": 1, "max_chars": 10},
    )
    assert score_locally(short, CHAT).value == 1.0


# Recipes, keys and custom recipes


def test_builtin_names() -> None:
    assert set(BUILTIN_RECIPES) == {
        "lima",
        "length",
        "alpagasus",
        "alpagasus-helpfulness",
        "deita-complexity",
        "deita-quality",
        "deita-evol",
        "reward",
        "ifd",
        "ifd-ppl",
    }
    with pytest.raises(InvalidInput, match="alpagasus-helpfulness"):
        get_recipe("gpt-judge")


def test_kinds_and_properties() -> None:
    assert get_recipe("lima").is_local and not get_recipe("lima").uses_llm
    assert (
        get_recipe("alpagasus").uses_llm and get_recipe("alpagasus").kind == ScorerKind.LLM_RATING
    )
    assert get_recipe("deita-quality").kind == ScorerKind.LOGPROB_SCORER
    local = get_recipe("deita-quality").for_local_model()
    assert local.kind == ScorerKind.LOCAL_LOGIT_SCORER and not local.uses_llm
    with pytest.raises(InvalidInput):
        get_recipe("alpagasus").for_local_model()


def test_key_changes_with_template_model_provider_and_sampling() -> None:
    base = get_recipe("alpagasus")
    key = base.key("gpt-4o", "openai")
    assert len(key) == 64 and key == base.key("gpt-4o", "openai")
    changed = [
        base.key("gpt-4o-mini", "openai"),
        base.key("gpt-4o", "vllm"),
        Recipe(**{**vars(base), "prompt_template": (base.prompt_template or "") + " "}).key(
            "gpt-4o", "openai"
        ),
        Recipe(**{**vars(base), "temperature": 0.7}).key("gpt-4o", "openai"),
        Recipe(**{**vars(base), "high": 10}).key("gpt-4o", "openai"),
        Recipe(**{**vars(base), "parse": "first_number"}).key("gpt-4o", "openai"),
        Recipe(**{**vars(base), "system_prompt": None}).key("gpt-4o", "openai"),
        get_recipe("alpagasus-helpfulness").key("gpt-4o", "openai"),
    ]
    assert key not in changed
    assert get_recipe("deita-quality").for_local_model().key("m", None) != get_recipe(
        "deita-quality"
    ).key("m", None)


def test_a_note_does_not_change_the_key() -> None:
    base = get_recipe("lima")
    assert Recipe(**{**vars(base), "version_note": "why"}).key(None, None) == base.key(None, None)


def scorer_row(recipe: Recipe, model: str | None, provider: str | None) -> Scorer:
    """A Scorer as the database gives it back: params through JSON."""
    import json

    fields = recipe.scorer_fields(model, provider)
    fields["params"] = json.loads(json.dumps(fields["params"]))
    return cast(Scorer, SimpleNamespace(version=1, **fields))


@pytest.mark.parametrize("name", sorted(BUILTIN_RECIPES))
def test_every_builtin_survives_a_round_trip_through_its_row(name: str) -> None:
    recipe = get_recipe(name)
    row = scorer_row(recipe, "some-model", "local")
    rebuilt = recipe_from_scorer(row)
    assert rebuilt == recipe
    assert rebuilt.key("some-model", "local") == row.key


def test_a_custom_recipe_survives_a_round_trip_and_scores() -> None:
    recipe = custom_recipe(
        "clarity",
        "Rate the clarity of this answer from 1 to 10.\nQ: {instruction} {input}\nA: {output}\n"
        'Reply as JSON {{"score": n}}.',
        parse=r'regex:"score":\s*(\d+)',
        low=1,
        high=10,
        system_prompt="You are a strict grader.",
    )
    row = scorer_row(recipe, "llama-3-8b", "vllm")
    assert row.kind == "llm_rating"
    rebuilt = recipe_from_scorer(row)
    assert rebuilt == recipe
    (request,) = build_requests(rebuilt, ALPACA)
    assert request.messages[1][1].endswith('A: Bonjour {matin}\nReply as JSON {"score": n}.')
    assert interpret(rebuilt, ALPACA, [answer('{"score": 7}')]).value == 7.0
    assert interpret(rebuilt, ALPACA, [answer('{"score": 12}')]).state == ScoreState.PARSE_ERROR


def test_a_changed_custom_template_is_a_new_key() -> None:
    one = custom_recipe("clarity", "Rate {output}", low=0, high=5)
    two = custom_recipe("clarity", "Rate this: {output}", low=0, high=5)
    assert one.key("m", "p") != two.key("m", "p")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "x" * 61}, "name"),
        ({"name": "alpagasus"}, "name"),
        ({"prompt_template": "no placeholder"}, "prompt_template"),
        ({"prompt_template": "Rate {answer}"}, "prompt_template"),
        ({"prompt_template": "Rate {output.__class__}"}, "prompt_template"),
        ({"prompt_template": "Rate {output!r}"}, "prompt_template"),
        ({"prompt_template": "Rate {output:>10}"}, "prompt_template"),
        ({"prompt_template": "Rate {0}"}, "prompt_template"),
        ({"prompt_template": "Rate {output} as {score: n}"}, "prompt_template"),
        ({"prompt_template": "Rate {output"}, "prompt_template"),
        ({"parse": "regex:("}, "parse"),
        ({"parse": r"regex:\d+"}, "parse"),
        ({"parse": "vibes"}, "parse"),
        ({"low": 5, "high": 5}, "high"),
        ({"low": 0, "high": math.inf}, "high"),
        ({"temperature": 3.0}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_custom_recipe_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {
        "name": "clarity",
        "prompt_template": "Rate {output}",
        "low": 0,
        "high": 5,
    }
    with pytest.raises(InvalidInput) as error:
        custom_recipe(**(arguments | kwargs))
    assert error.value.detail["field"] == field
