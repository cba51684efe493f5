"""Loading a local transformers model folder (never from a hub): torch and transformers are
imported on first use, so that importing this costs nothing without the `ml` extra."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast


def load_causal_lm(folder: Path, *, padding_side: str) -> tuple[Any, Any, Any]:
    """A local causal LM in eval mode, its tokenizer (with a pad token) and the device it is on:
    the GPU when there is one, in the model's own dtype there, float32 on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(
        folder, local_files_only=True, padding_side=padding_side
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    dtype = "auto" if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
    # transformers' own annotation of `to` does not accept a device.
    return tokenizer, cast(Any, model).to(device).eval(), device
