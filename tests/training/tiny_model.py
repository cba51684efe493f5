"""A tiny random Llama with a word-level tokenizer trained on the very records a test fine-tunes
on, built offline into a folder (no hub)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.training.chat_templates import ALPACA_SYSTEM, VICUNA_SYSTEM
from tests.tiny_models import save_random_llama, word_tokenizer

TEMPLATE_WORDS = [ALPACA_SYSTEM, VICUNA_SYSTEM, "### Instruction: ### Response: USER: ASSISTANT:"]
# A model's own template, in the style of ChatML, for the "auto" path.
OWN_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def short_records(data_dir: Path, n: int = 8) -> list[dict[str, Any]]:
    """The first `n` records of AlpaGasus' random 9k whose text is under 30 words."""
    records = json.loads((data_dir / "alpagasus" / "random_9k.json").read_text())
    chosen = [r for r in records if len(" ".join(r.values()).split()) < 30]
    return chosen[:n]


def build_tiny_base(
    folder: Path, texts: Sequence[str], *, own_template: bool = False, hidden: int = 64
) -> Path:
    """Save a tiny random Llama (2 layers) and a tokenizer whose vocabulary covers `texts`."""
    corpus = [*texts, *TEMPLATE_WORDS, "system user assistant", "0 1 2 3 4 5 6 7 8 9"]
    tokenizer = word_tokenizer(corpus)
    if own_template:
        tokenizer.chat_template = OWN_TEMPLATE
    return save_random_llama(folder, tokenizer, hidden=hidden, tie_word_embeddings=False)
