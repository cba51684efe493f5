"""A tiny random-initialised Llama and a word-level tokenizer, built offline into a folder."""

from __future__ import annotations

import os
from pathlib import Path

# Nothing in these tests may reach a hub; set before transformers reads its settings.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from app.scoring.deita import COMPLEXITY_TEMPLATE, QUALITY_TEMPLATE

SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>"]
CORPUS = [
    COMPLEXITY_TEMPLATE,
    QUALITY_TEMPLATE,
    "How do I sort a list in Python? Use sorted(items) or items.sort().",
    "Write a haiku about the sea. Waves fold into foam, the gulls cry over the grey.",
    "What is 12 + 34? It is 46, and 5 times 6 is 30.",
    "Explain why the sky is blue: sunlight scatters off small molecules in the air.",
    "0 1 2 3 4 5 6 7 8 9",
]


def build_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on the corpus above, each digit a token of its own."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tokenizer.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="[UNK]",
        pad_token="[PAD]",
    )
    wrapped.save_pretrained(folder)
    return wrapped


def build_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama (hidden 32, 2 layers, 4 heads) and its tokenizer in `folder`."""
    tokenizer = build_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        # Wide weights give distinct, far-from-uniform scores, which make the checks meaningful.
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
