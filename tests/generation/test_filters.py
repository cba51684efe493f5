"""The keyword and shape filters of Self-Instruct and Alpaca, their response parsers, and
WizardLM's elimination rules, on real text."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.generation import filters, prompts
from app.generation.filters import ALPACA_BLACKLIST, SELF_INSTRUCT_BLACKLIST
from app.generation.prompts import Task

ALPACA_ONLY = ("video", "audio", "music", "flowchart", "diagram")


def test_alpaca_prompt_is_prompt_txt(data_dir: Path) -> None:
    assert (data_dir / "alpaca" / "prompt.txt").read_text("utf-8") == prompts.ALPACA_PROMPT


def test_alpaca_prompt_shows_the_tasks_as_alpaca_did() -> None:
    prompt = prompts.alpaca_prompt(
        [
            Task("Give three tips\n for  staying healthy:", "", "Eat well."),
            Task("Sum it.", "2, 3", "5"),
        ]
    )
    assert prompt.endswith(
        "List of 20 tasks:\n###\n1. Instruction: Give three tips for staying healthy\n"
        "1. Input:\n<noinput>\n1. Output:\nEat well.\n###\n2. Instruction: Sum it.\n2. Input:\n"
        "2, 3\n2. Output:\n5\n###\n3. Instruction:"
    )
    assert prompts.self_instruct_prompt(["Sort a list.", "Name a color:"]) == (
        "Come up with a series of tasks:\n1. Sort a list.\n2. Name a color\n3."
    )


@pytest.mark.parametrize("word", SELF_INSTRUCT_BLACKLIST)
def test_each_self_instruct_blacklisted_word_drops_in_any_case(word: str) -> None:
    for shown in (word, word.upper(), word.title()):
        text = f"Please describe the {shown} that explains the water cycle."
        assert filters.instruction_rejection(text, SELF_INSTRUCT_BLACKLIST) == (
            f"blacklisted word: {word}"
        )
        assert filters.instruction_rejection(text, ALPACA_BLACKLIST) == f"blacklisted word: {word}"


@pytest.mark.parametrize("word", ALPACA_ONLY)
def test_alpaca_adds_its_own_blacklisted_words(word: str) -> None:
    text = f"Recommend a {word.capitalize()} about the history of jazz."
    assert filters.instruction_rejection(text, ALPACA_BLACKLIST) == f"blacklisted word: {word}"
    assert filters.instruction_rejection(text, SELF_INSTRUCT_BLACKLIST) is None


@pytest.mark.parametrize(
    "text",
    [
        "Explain the mapping between keys and values in a Python dictionary.",
        "Summarise the profile of a graphic designer in two sentences.",
        "Describe how a plotter differs from a printer.",
        "List the files-free ways to share notes with a colleague.".replace(
            "files-free", "paperless"
        ),
        "Tell me where to go tomorrow for a quiet walk.",
    ],
)
def test_only_whole_words_are_blacklisted(text: str) -> None:
    assert filters.instruction_rejection(text, ALPACA_BLACKLIST) is None


def test_word_count_bounds() -> None:
    assert filters.instruction_rejection("Name three birds", ALPACA_BLACKLIST) == "too short"
    assert filters.instruction_rejection("Name three small birds", ALPACA_BLACKLIST) is None
    longest = "Describe " + " ".join(["carefully"] * 148) + " birds."
    assert len(longest.split()) == 150
    assert filters.instruction_rejection(longest, ALPACA_BLACKLIST) is None
    assert filters.instruction_rejection(longest + " Now", ALPACA_BLACKLIST) == "too long"


def test_write_a_program_punctuation_and_non_ascii_starts() -> None:
    def reason(text: str) -> str | None:
        return filters.instruction_rejection(text, ALPACA_BLACKLIST)

    assert reason("Write a program that sorts a list of names.") == "starts with 'Write a program'"
    assert (
        reason("write a program that sorts a list of names.") is None
    )  # case-sensitive, as in Alpaca
    assert reason('"Explain why the sky appears blue."') == "starts with punctuation"
    assert reason("- Explain why the sky appears blue.") == "starts with punctuation"
    assert reason("¿Por qué el cielo es azul durante el día?") == (
        "starts with a non-ASCII character"
    )
    assert reason("Éxplique pourquoi le ciel est bleu.") == "starts with a non-ASCII character"
    assert reason("Explain why the sky appears blue, in français.") is None


def test_alpaca_parser_drops_malformed_and_cut_off_tasks() -> None:
    text = (
        " Suggest three ways to reduce household food waste.\n4. Input:\n<noinput>\n4. Output:\n"
        "Plan meals, store food well, compost scraps.\n###\n"
        "5. Instruction: Explain recursion to a ten-year-old.\n5. Output:\nA function calls itself.\n"
        "###\n6. Instruction: Classify the sentiment of this review.\n6. Input:\nThe soup was cold."
        "\n6. Output:\nNegative\n###\n7. Instruction: Describe the smell of rain after a long"
    )
    kept, rejected = filters.parse_alpaca(text, "length", 3)
    assert kept == [
        Task(
            "Suggest three ways to reduce household food waste.",
            "",
            "Plan meals, store food well, compost scraps.",
        ),
        Task("Classify the sentiment of this review.", "The soup was cold.", "Negative"),
    ]
    assert [r.reason for r in rejected] == ["malformed", "cut off (finish_reason=length)"]
    # Finished normally, the last task counts.
    kept, _ = filters.parse_alpaca(
        text + " storm.\n7. Input:\n<noinput>\n7. Output:\nFresh.", "stop", 3
    )
    assert kept[-1] == Task("Describe the smell of rain after a long storm.", "", "Fresh.")


def test_self_instruct_parser_drops_a_cut_off_answer_whole() -> None:
    text = " Suggest a name for a bakery.\n10. give three uses of baking soda\n11. Plot the"
    kept, rejected = filters.parse_self_instruct(text, "stop")
    assert kept == ["Suggest a name for a bakery.", "Give three uses of baking soda"]
    assert [r.reason for r in rejected] == ["too short"]
    kept, rejected = filters.parse_self_instruct(text, "length")
    assert kept == [] and "cut off" in rejected[0].reason


def test_instance_answers() -> None:
    assert filters.parse_instance("Input: <noinput>\nOutput: Paris.", "stop") == ("", "Paris.")
    assert filters.parse_instance("Input: 2, 3\nOutput:\n5", "stop") == ("2, 3", "5")
    assert filters.parse_instance("Paris.", "stop") is None
    assert filters.parse_instance("Input: x\nOutput: y", "length") is None


@pytest.mark.parametrize(
    ("evolved", "reason"),
    [
        ("#Rewritten Prompt#: Explain photosynthesis in detail.", "#rewritten prompt#"),
        ("Rewrite the given prompt so that it asks about tides.", "given prompt"),
        ("#Created Prompt#:\nName a rare orchid.", "#created prompt#"),
        ("Your rewritten prompt: describe a volcano.", "rewritten prompt"),
    ],
)
def test_evolutions_that_copy_the_evolving_prompt_are_eliminated(evolved: str, reason: str) -> None:
    assert filters.evolution_rejection(evolved, "stop") == (
        f"copies the evolving prompt: {reason!r}"
    )


def test_elimination_rules_on_answers() -> None:
    assert (
        filters.evolution_rejection("Explain the causes of the French Revolution.", "stop") is None
    )
    assert filters.evolution_rejection("Explain the causes", "length") == (
        "the rewrite was cut off (finish_reason=length)"
    )
    assert filters.evolution_rejection("...?!", "stop") == "only punctuation and stop words"
    assert filters.answer_rejection("Sorry, I cannot help with that request.", "stop") == (
        "the model failed to answer: a short 'sorry'"
    )
    long_sorry = "Sorry for the delay. " + "The revolution began with fiscal crisis. " * 20
    assert filters.answer_rejection(long_sorry, "stop") is None
    assert filters.answer_rejection("It is what it is, and that is all.", "stop") == (
        "the answer is only punctuation and stop words"
    )
    assert filters.answer_rejection("The French Revolution began in 1789.", "length") == (
        "the model failed to answer: the answer was cut off (finish_reason=length)"
    )
    assert filters.answer_rejection("The French Revolution began in 1789.", "stop") is None


def test_equal_verdicts() -> None:
    assert filters.is_equal_verdict("Equal")
    assert filters.is_equal_verdict(" equal.")
    assert not filters.is_equal_verdict("Not Equal")
