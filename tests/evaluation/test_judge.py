"""The judge prompts are the published ones, verdicts are read as the papers' code reads them,
and the two orders combine by the AlpaGasus / MT-Bench rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.evaluation import judge
from tests.conftest import DATA

JUDGE_PROMPTS = DATA / "fastchat_llm_judge" / "judge_prompts.jsonl"
FASTCHAT = (
    {p["name"]: p for p in map(json.loads, JUDGE_PROMPTS.read_text().splitlines())}
    if JUDGE_PROMPTS.is_file()
    else {}
)


def _user(request: judge.ChatRequest) -> str:
    return request.messages[1][1]


@pytest.mark.parametrize("name", ["pair-v2", "pair-v2-multi-turn"])
def test_mt_bench_prompts_are_fastchats(data_dir: Path, name: str) -> None:
    published = FASTCHAT[name]
    turns = ["Q1?", "Q2?"] if name.endswith("multi-turn") else ["Q1?"]
    first, second = ["A1", "A2"][: len(turns)], ["B1", "B2"][: len(turns)]
    request = judge.judge_request("mt-bench", turns, first, second)
    if len(turns) == 1:
        expected = published["prompt_template"].format(question="Q1?", answer_a="A1", answer_b="B1")
    else:
        expected = published["prompt_template"].format(
            question_1="Q1?",
            question_2="Q2?",
            answer_a_1="A1",
            answer_a_2="A2",
            answer_b_1="B1",
            answer_b_2="B2",
        )
    assert request.messages == (("system", published["system_prompt"]), ("user", expected))
    assert (request.temperature, request.max_tokens) == (0.0, 2048)


def test_the_alpagasus_prompt_is_the_papers() -> None:
    request = judge.judge_request("alpagasus", ["What is 2+2?"], ["4"], ["five"])
    system, user = request.messages[0][1], _user(request)
    assert (
        system == "You are a helpful and precise assistant for checking the quality of the answer."
    )
    assert user.startswith(
        "[Question]\nWhat is 2+2?\n\n[The Start of Assistant 1's Answer]\n4\n\n"
        "[The End of Assistant 1's Answer]\n\n[The Start of Assistant 2's Answer]\nfive\n\n"
        "[The End of Assistant 2's Answer]\n\n[System]\nWe would like to request your feedback"
    )
    assert "Please first output a single line containing only two values" in user
    assert user.endswith("does not affect your judgment.\n\n")
    assert (request.temperature, request.max_tokens) == (0.0, 256)
    with pytest.raises(ValueError, match="single-turn"):
        judge.judge_request("alpagasus", ["one", "two"], ["a", "b"], ["c", "d"])


ALPAGASUS_REPLIES = [
    (
        "8 6\nAssistant 1 provided a precise and relevant answer, with a worked example. "
        "Assistant 2 was correct but much shorter and skipped the edge cases.",
        judge.FIRST,
        (8.0, 6.0),
    ),
    ("7, 9\nAssistant 2 gave more detail.", judge.SECOND, (7.0, 9.0)),
    ("8.5 8.5\n\nBoth assistants were equally helpful.", judge.TIE, (8.5, 8.5)),
    ("  9 4  \nAssistant 2 misread the question.", judge.FIRST, (9.0, 4.0)),
    ("0 7\nAssistant 1's answer is empty.", judge.SECOND, (0.0, 7.0)),
]
ALPAGASUS_UNREADABLE = [
    "Assistant 1: 8\nAssistant 2: 6",  # the scores are not alone on the first line
    "I would rate both assistants highly.\n8 8",
    "8\n6",  # one value on the first line
    "8 6 7\nThree scores.",
    "eight six",
    "",
    "11 3\nOut of the scale.",
]


@pytest.mark.parametrize(("text", "winner", "scores"), ALPAGASUS_REPLIES)
def test_alpagasus_verdicts_are_read_from_the_first_line(
    text: str, winner: str, scores: tuple[float, float]
) -> None:
    assert judge.read_verdict("alpagasus", text) == judge.Reading(winner, scores)


@pytest.mark.parametrize("text", ALPAGASUS_UNREADABLE)
def test_unreadable_alpagasus_verdicts_are_errors(text: str) -> None:
    reading = judge.read_verdict("alpagasus", text)
    assert reading.winner == judge.ERROR and reading.reason


PAIR_REPLIES = [
    (
        "Assistant A's answer is more thorough: it explains the trade-offs and gives an example, "
        "while Assistant B only names the options.\n\nFinal verdict: [[A]]",
        judge.FIRST,
    ),
    ("Both are correct, but B is clearer and follows the requested format.\n\n[[B]]", judge.SECOND),
    ("The two responses are essentially equivalent in quality. [[C]]", judge.TIE),
    ("After comparing both, [[A]] is better; to be explicit, my verdict is [[A]].", judge.FIRST),
]
PAIR_UNREADABLE = [
    "Assistant A is better.",  # no bracketed verdict
    "[A]",
    "I cannot decide between [[A]] and [[B]].",
    "",
]


@pytest.mark.parametrize(("text", "winner"), PAIR_REPLIES)
def test_mt_bench_verdicts(text: str, winner: str) -> None:
    assert judge.read_verdict("mt-bench", text).winner == winner


@pytest.mark.parametrize("text", PAIR_UNREADABLE)
def test_unreadable_mt_bench_verdicts_are_errors(text: str) -> None:
    assert judge.read_verdict("mt-bench", text).winner == judge.ERROR


def test_orders_are_read_as_models() -> None:
    assert judge.as_model(judge.FIRST, a_shown_first=True) == "a"
    assert judge.as_model(judge.FIRST, a_shown_first=False) == "b"
    assert judge.as_model(judge.SECOND, a_shown_first=False) == "a"
    assert judge.as_model(judge.TIE, a_shown_first=False) == "tie"
    assert judge.as_model(judge.ERROR, a_shown_first=True) == "error"


@pytest.mark.parametrize(
    ("ab", "ba", "result"),
    [
        ("a", "a", "win"),
        ("a", "tie", "win"),
        ("tie", "a", "win"),
        ("tie", "tie", "tie"),
        ("a", "b", "tie"),
        ("b", "a", "tie"),
        ("b", "b", "lose"),
        ("b", "tie", "lose"),
        ("tie", "b", "lose"),
        ("error", "a", "error"),
        ("tie", "error", "error"),
        ("error", "error", "error"),
    ],
)
def test_two_orders_combine(ab: str, ba: str, result: str) -> None:
    assert judge.combine(ab, ba) == result


def test_winning_score() -> None:
    assert judge.winning_score(0, 0, 0) is None
    assert judge.winning_score(5, 3, 2) == pytest.approx(1.3)
    assert judge.winning_score(0, 0, 4) == 0.0
    assert judge.winning_score(4, 0, 0) == 2.0
