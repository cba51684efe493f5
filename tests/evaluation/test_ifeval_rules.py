"""IFEval's rules as Sift applies them: the same verdicts as the reference package
(`if-verifiable`) on the same responses, NLTK's Punkt model from a package (nothing downloaded),
and the reference's prompt- and instruction-level accuracies."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import nltk
import punkt
import pytest
from if_verifiable import IFEvalSample, evaluate_output_for_sample
from if_verifiable.ifeval import instructions_util

from app.evaluation import ifeval
from app.platform.config import get_settings
from app.platform.errors import InvalidInput

SHIPPED = [json.loads(line) for line in ifeval.shipped_prompts().read_text().splitlines()]

LOREM = (
    "The river runs past the old mill and under the stone bridge where children play in "
    "summer and skaters glide in winter while the town watches from the banks. "
)
# Responses that meet or miss each kind of instruction, and the edges the loose check exists
# for (a chatty first or last line, markdown asterisks).
RESPONSES = [
    "Hello world.",
    "hello world, this is all lowercase and it has a comma.",
    "THIS RESPONSE IS WRITTEN IN CAPITAL LETTERS ONLY AND IT IS IN ENGLISH.",
    '```json\n{"name": "sift", "items": [1, 2, 3]}\n```',
    '{"name": "sift"}',
    'Sure, here is the JSON:\n```json\n{"a": 1}\n```\nHope this helps!',
    "<<A Title>>\n\n*highlighted section one* and *highlighted section two* and *three*.",
    "SECTION 1\nFirst part.\nSECTION 2\nSecond part.\nSECTION 3\nThird part.",
    "* first bullet\n* second bullet\n* third bullet",
    "First paragraph here.\n\n***\n\nSecond paragraph here.\n\n***\n\nThird paragraph here.",
    "Paragraph one talks about rivers.\n\nParagraph two talks about bridges.",
    "Dear [name], your address is [address] and your phone is [phone].\nP.S. See you soon.",
    "My answer is yes.",
    "My answer is maybe.",
    '"The whole response is wrapped in double quotation marks."',
    "Is there anything else I can help with?",
    "The weather is nice. Is there anything else I can help with?",
    "Section 1: **bold** text, with commas, and more words.",
    "Here is my answer:\n" + LOREM * 30 + "\nThat is all.",
    LOREM * 3,
    "Dr. Smith went to Washington D.C. on Jan. 5th. He met Mr. Jones at 3 p.m. It was fine! Yes.",
    "Das ist ein deutscher Satz, der nur auf Deutsch geschrieben wurde und sonst nichts enthält.",
    "Ceci est une réponse entièrement écrite en français, sans aucun mot anglais.",
    "Answer with the letter q q q q q and the word banana banana banana.",
    "   ",
]


def _sample(record: dict) -> IFEvalSample:
    return IFEvalSample(
        key=record["key"],
        prompt=record["prompt"],
        instruction_id_list=record["instruction_id_list"],
        kwargs=record["kwargs"],
    )


def _stratified(per_type: int) -> list[dict]:
    """The first `per_type` shipped prompts of each instruction type."""
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for record in SHIPPED:
        if any(taken[i] < per_type for i in record["instruction_id_list"]):
            chosen.append(record)
            for i in record["instruction_id_list"]:
                taken[i] += 1
    return chosen


def test_the_shipped_prompts_are_ifevals_541_with_its_25_instruction_types() -> None:
    assert len(SHIPPED) == 541
    types = {i for record in SHIPPED for i in record["instruction_id_list"]}
    assert len(types) == 25
    ifeval.check_instruction_ids(types)  # the rules know every one
    with pytest.raises(InvalidInput, match="IFEval has no instruction made:up"):
        ifeval.check_instruction_ids(["made:up", "punctuation:no_comma"])


def test_verdicts_equal_the_reference_package_on_every_instruction_type() -> None:
    chosen = _stratified(per_type=2)
    assert {i for r in chosen for i in r["instruction_id_list"]} == {
        i for r in SHIPPED for i in r["instruction_id_list"]
    }
    compared = passed = 0
    for record in chosen:
        # The prompt repeated (the repeat-the-request rules) and the prompt's own answers.
        for response in [*RESPONSES, record["prompt"], record["prompt"] + "\n" + LOREM]:
            ours = ifeval.check_response(
                record["prompt"], record["instruction_id_list"], record["kwargs"], response
            )
            # The same random draws for a checker that makes one up (see check_response).
            random.seed(ifeval.RULES_SEED)
            theirs, scores = evaluate_output_for_sample("ifeval", _sample(record), response)
            if not response.strip():
                # The reference's evaluation_lib fails every instruction of an empty response;
                # if-verifiable returns no results at all for one.
                assert not any(ours.strict) and not any(ours.loose) and theirs == []
                continue
            assert ours.strict == [r.strict_pass for r in theirs], (record["key"], response)
            assert ours.loose == [r.loose_pass for r in theirs], (record["key"], response)
            assert float(all(ours.strict)) == scores.binary_strict
            assert float(all(ours.loose)) == scores.binary_loose
            compared += 1
            passed += all(ours.loose)
    assert compared > 1_000 and passed > 50  # both verdicts were exercised, many times


def test_the_loose_check_forgives_a_first_line_and_asterisks() -> None:
    record = next(r for r in SHIPPED if r["instruction_id_list"] == ["punctuation:no_comma"])
    checked = ifeval.check_response(
        record["prompt"], ["punctuation:no_comma"], [{}], "Sure, here you go:\nNo commas at all."
    )
    assert checked.strict == [False] and checked.loose == [True]


def test_punkt_comes_from_a_package_and_counts_as_nltk_does() -> None:
    ifeval.prepare_rules()
    folder = get_settings().data_dir.resolve() / "nltk_data" / "tokenizers" / "punkt_tab"
    assert {p.name for p in (folder / "english").iterdir()} == set(ifeval.PUNKT_FILES)
    assert str(folder.parent.parent) in nltk.data.path
    texts = [
        "Dr. Smith went to Washington D.C. on Jan. 5th. He met Mr. Jones at 3 p.m. It was fine!",
        "One sentence. Two sentences? Three! And e.g. this is still the third... or a fourth.",
        LOREM * 4,
        *(record["prompt"] for record in SHIPPED[:120]),
    ]
    for text in texts:
        # NLTK's own tokenizer over the written files splits as the package's Punkt (which
        # asserts parity with NLTK's punkt_tab model) does.
        assert nltk.sent_tokenize(text) == punkt.sent_tokenize(text)
        assert instructions_util.count_sentences(text) == len(punkt.sent_tokenize(text))
    assert instructions_util.count_sentences(texts[0]) == 3
    assert nltk.word_tokenize("Don't stop, go.") == ["Do", "n't", "stop", ",", "go", "."]


def test_language_detection_is_seeded() -> None:
    ifeval.prepare_rules()
    from langdetect import DetectorFactory

    assert DetectorFactory.seed == 0
    record = next(r for r in SHIPPED if "language:response_language" in r["instruction_id_list"])
    short = "Ok sí"  # ambiguous: an unseeded detector answers differently from run to run
    verdicts = {
        tuple(
            ifeval.check_response(
                record["prompt"], record["instruction_id_list"], record["kwargs"], short
            ).strict
        )
        for _ in range(20)
    }
    assert len(verdicts) == 1


def test_accuracies_are_counted_as_the_reference_reports_them() -> None:
    results = [
        ifeval.Checked(["a:x", "b:y"], [True, True], [True, True]),
        ifeval.Checked(["a:x", "c:z"], [True, False], [True, True]),
        ifeval.Checked(["b:y"], [False], [False]),
    ]
    summary = ifeval.summarise(results)
    assert summary["prompts"] == 3 and summary["instructions"] == 5
    assert summary["prompt_strict"] == pytest.approx(1 / 3)
    assert summary["prompt_loose"] == pytest.approx(2 / 3)
    assert summary["instruction_strict"] == pytest.approx(3 / 5)
    assert summary["instruction_loose"] == pytest.approx(4 / 5)
    assert summary["by_instruction"] == {
        "a:x": {"count": 2, "strict": 1.0, "loose": 1.0},
        "b:y": {"count": 2, "strict": 0.5, "loose": 0.5},
        "c:z": {"count": 1, "strict": 0.0, "loose": 1.0},
    }
    assert ifeval.summarise([])["prompt_strict"] is None


def test_the_shipped_file_is_the_attributed_copy() -> None:
    root = Path(__file__).resolve().parents[2]
    assert "CC BY 4.0" in (root / "NOTICE").read_text()
    assert "cbe52f6eecf3986fdac745b4acba4da1408eb146" in (root / "NOTICE").read_text()
    assert len(ifeval.shipped_prompts().read_bytes()) == 207_111


def test_a_rule_that_draws_at_random_gives_one_verdict_and_leaves_random_alone() -> None:
    record = next(r for r in SHIPPED if r["key"] == 1122)  # "at least 4 '#'": not a letter
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    verdicts = {
        tuple(ifeval.check_response(record["prompt"], record["instruction_id_list"],
                                    record["kwargs"], "#a #b #c #d tweet " * k).strict)
        for k in (1, 1, 1)
    }  # fmt: skip
    assert len(verdicts) == 1
    assert random.random() == expected_next
