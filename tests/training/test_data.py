"""Chat templates, assistant-only labels, packing and presets (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from app.platform.errors import InvalidInput
from app.training.chat_templates import apply_template
from app.training.data import IGNORE, encode, encode_all, pack
from app.training.presets import build_params
from tests.training.tiny_model import build_tiny_base

CONVERSATION = [
    {"role": "system", "content": "Answer in one word"},
    {"role": "user", "content": "Name a colour"},
    {"role": "assistant", "content": "Blue"},
    {"role": "user", "content": "Name another colour"},
    {"role": "assistant", "content": "Green"},
]


@pytest.fixture(scope="module")
def own_template_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose tokenizer brings its own chat template."""
    texts = [m["content"] for m in CONVERSATION]
    return build_tiny_base(tmp_path_factory.mktemp("own"), texts, own_template=True, hidden=32)


def _trained_text(tokenizer: object, row: dict) -> str:
    kept = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE]
    return tokenizer.decode(kept)  # type: ignore[attr-defined]


@pytest.mark.parametrize("template", ["alpaca", "vicuna", "own"])
def test_only_assistant_turns_are_trained(own_template_model: Path, template: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(own_template_model)
    name = apply_template(tokenizer, "auto" if template == "own" else template, "tiny")
    assert name == template
    row = encode(tokenizer, CONVERSATION, 256)
    assert not row["truncated"]
    # Both answers and the EOS closing each; nothing of the system or user turns.
    assert _trained_text(tokenizer, row).split() == ["Blue", "</s>", "Green", "</s>"]
    prompt = tokenizer.apply_chat_template(
        CONVERSATION[:2], add_generation_prompt=True, tokenize=False
    )
    full = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert str(full).startswith(
        str(prompt)
    )  # evaluation's prompts are formatted exactly as in training


def test_a_base_model_without_a_template_needs_a_named_one(tmp_path: Path) -> None:
    folder = build_tiny_base(tmp_path, ["hello world"], hidden=32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with pytest.raises(InvalidInput, match="no chat template"):
        apply_template(tokenizer, "auto", str(folder))


def test_truncation_packing_and_nothing_to_learn(own_template_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(own_template_model)
    apply_template(tokenizer, "alpaca", "tiny")
    short = encode(tokenizer, CONVERSATION, 10)
    assert short["truncated"] and len(short["input_ids"]) == 10
    encoded = encode_all(tokenizer, [CONVERSATION, CONVERSATION[:3]], 64)
    assert len(encoded.rows) == 2 and encoded.skipped == 0
    blocks = pack(encoded.rows, 16)
    assert all(len(b["input_ids"]) == 16 for b in blocks[:-1])
    assert sum(len(b["input_ids"]) for b in blocks) == encoded.tokens  # no padding, nothing lost
    assert sum(len(b["labels"]) for b in blocks) == encoded.tokens
    with pytest.raises(InvalidInput, match="no example has an assistant answer"):
        encode_all(tokenizer, [CONVERSATION[:2]], 64)


def test_every_dropped_example_is_named_with_its_reason(own_template_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(own_template_model)
    apply_template(tokenizer, "alpaca", "tiny")
    long_prompt = [
        {"role": "user", "content": "Name a colour " * 40},
        {"role": "assistant", "content": "Blue"},
    ]
    encoded = encode_all(tokenizer, [CONVERSATION, long_prompt, CONVERSATION[:2]], 48)
    assert len(encoded.rows) == 1 and encoded.skipped == 2
    assert [position for position, _ in encoded.dropped] == [1, 2]
    assert "prompt fills all 48 tokens of max_seq_length" in encoded.dropped[0][1]
    assert encoded.dropped[1][1] == "it has no assistant answer"


def test_presets_hold_the_papers_values_and_every_value_is_editable() -> None:
    lima = build_params("lima")
    assert (lima.epochs, lima.learning_rate, lima.min_learning_rate) == (15, 1e-5, 1e-6)
    assert (lima.batch_size, lima.adam_beta1, lima.adam_beta2, lima.weight_decay) == (
        32, 0.9, 0.95, 0.1,
    )  # fmt: skip
    assert lima.scheduler == "linear" and lima.warmup_ratio == 0
    alpaca = build_params("alpaca", epochs=5, method="full")
    assert (alpaca.learning_rate, alpaca.batch_size, alpaca.scheduler) == (2e-5, 128, "cosine")
    assert (alpaca.warmup_ratio, alpaca.epochs, alpaca.method) == (0.03, 5, "full")
    with pytest.raises(InvalidInput, match="min_learning_rate must be below"):
        build_params("lima", learning_rate=1e-7)
    with pytest.raises(InvalidInput, match=r"^batch_size"):
        build_params("alpaca", batch_size=0)
    with pytest.raises(InvalidInput, match="preset"):
        build_params("gpt")
