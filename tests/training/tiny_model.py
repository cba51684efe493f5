"""A tiny random Llama with a word-level tokenizer trained on the very records a test fine-tunes
on, built offline into a folder (no hub)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from app.training.chat_templates import ALPACA_SYSTEM, VICUNA_SYSTEM

SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>"]
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
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    corpus = [*texts, *TEMPLATE_WORDS, "system user assistant", "0 1 2 3 4 5 6 7 8 9"]
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="[UNK]",
        pad_token="[PAD]",
    )
    if own_template:
        wrapped.chat_template = OWN_TEMPLATE
    wrapped.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(wrapped),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=wrapped.bos_token_id,
        eos_token_id=wrapped.eos_token_id,
        pad_token_id=wrapped.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
