"""Deita scores from a local transformers model: a tiny random Llama built here, offline."""

from __future__ import annotations

import os
from pathlib import Path

# Nothing here may reach a hub; set before transformers reads its settings.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.platform.errors import InvalidInput
from app.scoring.chat_requests import local_prompts
from app.scoring.deita import expected_from_logits
from app.scoring.example_text import ExampleText
from app.scoring.interpretation import from_turn_scores
from app.scoring.local_lm import LocalLogitScorer
from app.scoring.recipes import get_recipe
from tests.real_models import RealModel
from tests.scoring.tiny_llama import build_tiny_llama

QUERIES = [
    "How do I sort a list in Python?",
    "Write a haiku about the sea. Waves fold into foam, the gulls cry over the grey.",
    "What is 12 + 34?",
    "Explain why the sky is blue.",
    "Sort",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny model and its tokenizer."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def scorer(model_dir: Path) -> LocalLogitScorer:
    """A scorer on the tiny model, three prompts a batch."""
    return LocalLogitScorer(model_dir, batch_size=3)


def prompts() -> list[str]:
    """Deita complexity prompts of different lengths."""
    recipe = get_recipe("deita-complexity")
    messages = [{"role": r, "content": q} for q in QUERIES for r in ("user", "assistant")]
    return local_prompts(recipe, ExampleText.of(messages, None, None, None))


def test_scores_are_between_one_and_six(scorer: LocalLogitScorer) -> None:
    scores = scorer.score(prompts())
    assert len(scores) == len(QUERIES)
    assert all(1.0 <= s <= 6.0 for s in scores)
    # A random model still tells prompts apart: the scores are not a constant.
    assert max(scores) - min(scores) > 1e-3


def test_batched_equals_unbatched(scorer: LocalLogitScorer) -> None:
    texts = prompts()
    batched = scorer.score(texts)
    alone = [scorer.score([text])[0] for text in texts]
    assert batched == pytest.approx(alone, abs=1e-4)


def test_scores_match_a_manual_forward_pass(scorer: LocalLogitScorer, model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    digit_ids = [tokenizer.get_vocab()[str(d)] for d in range(1, 7)]
    for text, score in zip(prompts(), scorer.score(prompts()), strict=True):
        ids = tokenizer(text, return_tensors="pt").input_ids
        assert ids[0, 0] == tokenizer.bos_token_id
        with torch.no_grad():
            logits = model(ids).logits[0, -1, digit_ids]
        weights = torch.softmax(logits, dim=-1)
        manual = float((weights * torch.arange(1, 7)).sum())
        assert score == pytest.approx(manual, abs=1e-4)
        assert score == pytest.approx(expected_from_logits(logits.tolist()), abs=1e-4)


def test_digits_are_single_tokens(scorer: LocalLogitScorer) -> None:
    tokens = scorer.tokenizer.convert_ids_to_tokens(scorer.score_ids.tolist())
    assert tokens == ["1", "2", "3", "4", "5", "6"]


def test_a_multi_turn_example_is_scored_per_turn(scorer: LocalLogitScorer) -> None:
    example = ExampleText.of(
        [
            {"role": "user", "content": "What is 12 + 34?"},
            {"role": "assistant", "content": "It is 46."},
            {"role": "user", "content": "And 5 times 6?"},
            {"role": "assistant", "content": "30."},
        ],
        None,
        None,
        None,
    )
    turn_scores = scorer.score(local_prompts(get_recipe("deita-quality"), example))
    result = from_turn_scores(turn_scores)
    assert len(result.details["turns"]) == 2
    assert result.value == pytest.approx(sum(turn_scores) / 2)


def test_an_empty_list_scores_nothing(scorer: LocalLogitScorer) -> None:
    assert scorer.score([]) == []


def test_a_path_without_a_model_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        LocalLogitScorer(tmp_path)
    with pytest.raises(InvalidInput):
        LocalLogitScorer(tmp_path / "missing")


def test_a_gguf_file_scores_like_its_converted_folder(smollm2: RealModel) -> None:
    # SmolLM2 from its GGUF file, through the one loading path: the same scores as its folder.
    from_file = LocalLogitScorer(smollm2.gguf, batch_size=2).score(prompts()[:2])
    from_folder = LocalLogitScorer(smollm2.folder, batch_size=2).score(prompts()[:2])
    assert from_file == from_folder and all(1.0 <= s <= 6.0 for s in from_file)
