"""A tiny random-initialised Llama and a word-level tokenizer for the scoring prompts."""

from __future__ import annotations

from pathlib import Path

from app.scoring.deita import COMPLEXITY_TEMPLATE, QUALITY_TEMPLATE
from tests.tiny_models import save_random_llama, word_tokenizer

CORPUS = [
    COMPLEXITY_TEMPLATE,
    QUALITY_TEMPLATE,
    "How do I sort a list in Python? Use sorted(items) or items.sort().",
    "Write a haiku about the sea. Waves fold into foam, the gulls cry over the grey.",
    "What is 12 + 34? It is 46, and 5 times 6 is 30.",
    "Explain why the sky is blue: sunlight scatters off small molecules in the air.",
    "0 1 2 3 4 5 6 7 8 9",
]


def build_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama (hidden 32, 2 layers, 4 heads) and its tokenizer in `folder`."""
    tokenizer = word_tokenizer(CORPUS, bos_prefix=True)
    # Wide weights give distinct, far-from-uniform scores, which make the checks meaningful.
    return save_random_llama(folder, tokenizer, hidden=32, seed=seed, initializer_range=0.5)
