"""Tiny random-initialised Llamas and word-level tokenizers, built offline by the tests (no
hub): the real transformers code runs on them in seconds on a CPU."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Nothing in these tests may reach a hub; set before transformers reads its settings.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>"]


def word_tokenizer(
    corpus: Iterable[str], *, bos_prefix: bool = False, vocab_size: int = 30_000
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on `corpus`, each digit a token of its own, keeping the
    `vocab_size` most frequent words (the rest are [UNK]); with `bos_prefix`, every encoded
    text starts with <s>."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tokenizer.train_from_iterator(
        corpus, trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL)
    )
    if bos_prefix:
        bos = tokenizer.token_to_id("<s>")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="[UNK]",
        pad_token="[PAD]",
    )


def save_random_llama(
    folder: Path,
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden: int,
    seed: int = 0,
    positions: int = 256,
    **config: Any,
) -> Path:
    """Save a random Llama (2 layers, 4 heads) sized to `tokenizer`, and the tokenizer."""
    tokenizer.save_pretrained(folder)
    settings = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(settings).save_pretrained(folder)
    return folder
