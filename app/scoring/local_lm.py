"""Deita scores from a local transformers causal LM: the logits of "1".."6" after the prompt.

torch and transformers are imported when a scorer is built, so that importing this module
costs nothing on a machine without the `ml` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.platform.errors import InvalidInput
from app.platform.local_models import check_model_path, load_causal_lm
from app.scoring.deita import SCORE_TOKENS


class LocalLogitScorer:
    """A causal LM loaded from a local folder or GGUF file that scores Deita prompts."""

    def __init__(self, path: str | Path, batch_size: int = 8) -> None:
        import torch

        folder = check_model_path(path)
        if batch_size < 1:
            raise InvalidInput("batch_size is at least 1", field="batch_size")
        self.batch_size = batch_size
        # Padding goes on the left, so that every prompt's last token sits at position -1.
        self.tokenizer, self.model, self.device = load_causal_lm(folder, padding_side="left")
        self.score_ids = torch.tensor(_digit_ids(self.tokenizer), device=self.device)

    def score(self, prompts: Sequence[str]) -> list[float]:
        """The expected Deita score of each prompt, in the order given."""
        # Prompts of similar length batch together: less padding, fewer wasted positions.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        scores: dict[int, float] = {}
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            values = self._score_batch([prompts[i] for i in batch])
            scores.update(zip(batch, values, strict=True))
        return [scores[i] for i in range(len(prompts))]

    def _score_batch(self, prompts: list[str]) -> list[float]:
        """Expected scores of one padded batch."""
        import torch

        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        mask = encoded["attention_mask"]
        # Positions count real tokens only, so a left-padded prompt reads as it would alone.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = self.model(
                input_ids=encoded["input_ids"], attention_mask=mask, position_ids=positions
            )
        logits = out.logits[:, -1, :].index_select(-1, self.score_ids).float()
        weights = torch.softmax(logits, dim=-1)
        grades = torch.arange(1, len(SCORE_TOKENS) + 1, device=self.device, dtype=weights.dtype)
        return [float(v) for v in (weights * grades).sum(-1).cpu()]


def _digit_ids(tokenizer: Any) -> list[int]:
    """The ids of the single tokens "1".."6" in this tokenizer's vocabulary."""
    ids = []
    for digit in SCORE_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(digit)
        if token_id is None or token_id == tokenizer.unk_token_id:
            # SentencePiece vocabularies may hold the digit only after a word-start marker.
            pieces = tokenizer.encode(digit, add_special_tokens=False)
            token_id = (
                pieces[-1] if pieces and tokenizer.decode(pieces[-1:]).strip() == digit else None
            )
        if token_id is None:
            raise InvalidInput(f"the tokenizer has no single token for {digit!r}", field="model")
        ids.append(int(token_id))
    return ids
