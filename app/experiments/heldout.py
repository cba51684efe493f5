"""The held-out split: examples of the pool drawn once (seeded) that no arm may select, and each
trained model's loss on them, a real forward pass over the same chat template and the same
labels as training (the assistant tokens only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.platform.errors import InvalidInput
from app.platform.local_models import token_losses
from app.training.service import IGNORE, encode

BATCH = 8


def heldout_size(asked: float, available: int) -> int:
    """How many examples `asked` means: a fraction of `available` when below 1 (at least one),
    else a whole count; InvalidInput naming the field when it leaves no pool to select from."""
    if asked <= 0:
        raise InvalidInput(
            "heldout: a fraction in (0, 1) or a count of at least 1", field="heldout"
        )
    if asked < 1:
        size = max(1, round(asked * available))
    elif float(asked).is_integer():
        size = int(asked)
    else:
        raise InvalidInput(
            f"heldout: {asked} is neither a fraction below 1 nor a whole count", field="heldout"
        )
    if size >= available:
        raise InvalidInput(
            f"heldout: {size:,} of {available:,} selectable examples leaves none to select",
            field="heldout",
        )
    return size


def draw_heldout(candidates: Sequence[int], asked: float, seed: int) -> list[int]:
    """The held-out example ids: a seeded sample of `candidates` (the same ids and seed give the
    same split), in id order."""
    ordered = sorted(candidates)
    size = heldout_size(asked, len(ordered))
    picked = np.random.default_rng(seed).choice(len(ordered), size=size, replace=False)
    return sorted(ordered[int(i)] for i in picked)


@dataclass
class Losses:
    """Each example's mean loss over its assistant tokens (None when none is left after
    truncation) and how many tokens that mean is over."""

    losses: list[float | None]
    tokens: list[int]

    def as_json(self, run_id: int) -> dict[str, Any]:
        """What an arm keeps: the run measured, and every example's figures."""
        skipped = sum(1 for loss in self.losses if loss is None)
        return {"run_id": run_id, "losses": self.losses, "tokens": self.tokens, "skipped": skipped}


def example_losses(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    max_length: int,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> Losses:
    """Each conversation encoded as training encodes it (template, labels on the assistant
    turns, cut at `max_length`) and its mean next-token loss over those labels, in batches
    padded on the right (causal attention: padding after a row changes none of its logits)."""
    import torch

    rows = [encode(tokenizer, messages, max_length) for messages in conversations]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    losses: list[float | None] = []
    tokens: list[int] = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        # Token t predicts token t + 1, as the model's own loss shifts them.
        target = labels[:, 1:].to(device)
        each = token_losses(logits[:, :-1], target, ignore_index=IGNORE)
        counted = (target != IGNORE).sum(dim=1)
        for total, count in zip(each.sum(dim=1).tolist(), counted.tolist(), strict=True):
            losses.append(total / count if count else None)
            tokens.append(int(count))
        if on_batch is not None:
            on_batch(min(start + BATCH, len(rows)))
    return Losses(losses, tokens)


def mean_token_loss(
    losses: Sequence[float | None], tokens: Sequence[int], rows: np.ndarray
) -> np.ndarray:
    """The loss per token over the examples of each row of `rows` (indices, resampled or not):
    every example weighted by its tokens, as one pass over the split would average them."""
    loss = np.array([0.0 if v is None else v for v in losses])
    weight = np.array(tokens, dtype=float)
    return (loss[rows] * weight[rows]).sum(axis=-1) / np.maximum(weight[rows].sum(axis=-1), 1)
