"""Instruction-following difficulty (IFD): how much the instruction helps a model predict the
answer. Two published definitions, each reproduced step by step from its reference code:

- `cherry` (Cherry LLM, tianyi-lab/Cherry_LLM `cherry_seletion/data_analysis.py --mod cherry
  --prompt alpaca` and `data_by_IFD.py`): the mean token loss of the answer after the Alpaca
  prompt, over its mean token loss after `"### Response:"` alone; max length 512. The prompt is
  tokenized (truncated to 512) to size the alone text's room (512 - prompt - 2); an example is not
  scored when that room is 4 tokens or less, when either text has no answer token left, or when
  prompt + alone answer tokens exceed 512. Cherry keeps IFD <= 1, highest first.
- `superfiltering` (Superfiltering, tianyi-lab/Superfiltering `code_ifd/data_analysis.py`,
  `put_analysis_to_data.py`, `select_data.py`): the perplexity of the answer after
  `"{instruction}\\n{input}\\n"` (`"{instruction}\\n"` without input), over the perplexity of
  the answer text alone (truncated to 1024 - prompt tokens + 1); max length 1024; no answer, no
  score. Superfiltering keeps IFD < 1, highest first.

In both, the answer's tokens are those after `len(tokenizer.encode(text before the answer))`
in the encoding of the whole text, exactly as the reference counts them; a loss is the mean
cross-entropy of those tokens, each predicted from the tokens before it. The forward passes are
batched (right padding, attention masks, a cap on padded tokens per batch); the numbers are those
of one example at a time. A multi-turn example scores each assistant turn with the conversation
before it as its instruction (turns joined by blank lines); the value is the mean over turns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.platform.errors import InvalidInput
from app.platform.local_models import token_losses

CHERRY_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
CHERRY_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:"
)
CHERRY_DIRECT = "### Response:"
SUPERFILTERING_PROMPT_INPUT = "{instruction}\n{input}\n"
SUPERFILTERING_PROMPT_NO_INPUT = "{instruction}\n"
DEFINITIONS = {"cherry": 512, "superfiltering": 1024}  # definition -> reference max length
# Padded tokens per forward pass: the logits of a batch are tokens x vocabulary floats.
MAX_BATCH_TOKENS = 4096


@dataclass(frozen=True)
class Piece:
    """A token sequence whose loss is the mean over positions [start, len(ids))."""

    ids: tuple[int, ...]
    start: int


@dataclass(frozen=True)
class Plan:
    """The two sequences one answer needs, or why it cannot be scored."""

    condition: Piece | None = None
    alone: Piece | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TurnScore:
    """One answer's IFD and the losses it comes from (None and a reason when not scorable)."""

    value: float | None
    loss_condition: float | None = None
    loss_alone: float | None = None
    reason: str | None = None


def _answer_start(tokenizer: Any, text: str, answer: str) -> int:
    """The reference's count: tokens of the text before the last occurrence of the answer."""
    return len(tokenizer.encode(text[: text.rfind(answer)]))


def _encode(tokenizer: Any, text: str, max_length: int) -> tuple[int, ...]:
    return tuple(tokenizer.encode(text, truncation=True, max_length=max_length))


def plan_cherry(
    tokenizer: Any, instruction: str, input: str, output: str, max_length: int = 512
) -> Plan:
    """Cherry LLM's two texts (alpaca prompt) and its reasons to skip an example."""
    template = CHERRY_PROMPT_INPUT if input else CHERRY_PROMPT_NO_INPUT
    prompt = template.format_map({"instruction": instruction, "input": input})
    whole, direct = prompt + output, CHERRY_DIRECT + output
    prompt_length = len(_encode(tokenizer, prompt, max_length))
    room = max_length - prompt_length - 2
    if room <= 4:
        return Plan(reason="the instruction leaves no room for the answer")
    alone = _encode(tokenizer, direct, room)
    alone_start = _answer_start(tokenizer, direct, output)
    condition = _encode(tokenizer, whole, max_length)
    condition_start = _answer_start(tokenizer, whole, output)
    alone_tokens = len(alone) - alone_start
    if alone_tokens <= 0 or len(condition) - condition_start <= 0:
        return Plan(reason="no answer token is left after truncation")
    if prompt_length + alone_tokens > max_length:
        return Plan(reason="instruction and answer exceed the maximum length")
    return Plan(Piece(condition, condition_start), Piece(alone, alone_start))


def plan_superfiltering(
    tokenizer: Any, instruction: str, input: str, output: str, max_length: int = 1024
) -> Plan:
    """Superfiltering's two texts (`"{instruction}\\n{input}\\n"` prompt)."""
    if output == "":
        return Plan(reason="the answer is empty")
    template = SUPERFILTERING_PROMPT_INPUT if input else SUPERFILTERING_PROMPT_NO_INPUT
    prompt = template.format_map({"instruction": instruction, "input": input})
    whole = prompt + output
    prompt_length = len(_encode(tokenizer, prompt, max_length))
    room = max_length - prompt_length + 1
    if room < 2:
        return Plan(reason="the instruction leaves no room for the answer")
    # Alone, every token but the first is predicted (the reference's labels = input_ids).
    alone = Piece(_encode(tokenizer, output, room), 1)
    condition = _encode(tokenizer, whole, max_length)
    start = max(_answer_start(tokenizer, whole, output), 1)
    if len(alone.ids) < 2 or len(condition) <= start:
        return Plan(reason="no answer token is left to predict")
    return Plan(Piece(condition, start), alone)


def turn_texts(
    instruction: str, input: str, output: str, turns: Sequence[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """The (instruction, input, answer) of each answer to score: the Alpaca fields of a
    single-turn example; per assistant turn of a conversation, the conversation before it."""
    if len(turns) <= 1:
        return [(instruction, input, output)] if output else []
    texts, history = [], []
    for user, assistant in turns:
        history.append(user)
        if assistant:
            texts.append(("\n\n".join(history), "", assistant))
        history.append(assistant)
    return texts


class IfdScorer:
    """A local causal LM (folder or .gguf file) that scores IFD by one definition, in padded
    batches."""

    def __init__(
        self,
        path: str,
        definition: str,
        *,
        max_length: int | None = None,
        batch_size: int = 16,
    ) -> None:
        from app.platform.local_models import check_model_path, load_causal_lm

        if definition not in DEFINITIONS:
            raise InvalidInput(f"IFD definition: one of {', '.join(DEFINITIONS)}", field="scorer")
        if batch_size < 1:
            raise InvalidInput("batch_size is at least 1", field="batch_size")
        folder = check_model_path(path)  # a folder or a .gguf file
        self.definition = definition
        self.max_length = max_length or DEFINITIONS[definition]
        self.batch_size = batch_size
        self.tokenizer, self.model, self.device = load_causal_lm(folder, padding_side="right")

    def plan(self, instruction: str, input: str, output: str) -> Plan:
        """The sequences this definition scores for one answer."""
        make = plan_cherry if self.definition == "cherry" else plan_superfiltering
        return make(self.tokenizer, instruction, input, output, self.max_length)

    def score(self, triplets: Sequence[tuple[str, str, str]]) -> list[TurnScore]:
        """The IFD of each (instruction, input, answer), in the order given."""
        plans = [self.plan(*triplet) for triplet in triplets]
        pieces = [p for plan in plans if plan.reason is None for p in (plan.condition, plan.alone)]
        losses = iter(self.mean_losses([p for p in pieces if p is not None]))
        scores = []
        for plan in plans:
            if plan.reason is not None:
                scores.append(TurnScore(None, reason=plan.reason))
                continue
            condition, alone = next(losses), next(losses)
            scores.append(TurnScore(self._ratio(condition, alone), condition, alone))
        return scores

    def _ratio(self, condition: float, alone: float) -> float | None:
        if self.definition == "superfiltering":
            return math.exp(condition) / math.exp(alone)  # perplexity over perplexity
        return condition / alone if alone else None

    def mean_losses(self, pieces: Sequence[Piece]) -> list[float]:
        """Each piece's mean token loss over its positions, batched by similar lengths."""
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i].ids))
        losses: dict[int, float] = {}
        batch: list[int] = []
        for i in order:
            width = len(pieces[i].ids)
            if batch and (
                len(batch) == self.batch_size or width * (len(batch) + 1) > MAX_BATCH_TOKENS
            ):
                losses.update(zip(batch, self._batch([pieces[j] for j in batch]), strict=True))
                batch = []
            batch.append(i)
        if batch:
            losses.update(zip(batch, self._batch([pieces[j] for j in batch]), strict=True))
        return [losses[i] for i in range(len(pieces))]

    def _batch(self, pieces: list[Piece]) -> list[float]:
        import torch

        width = max(len(p.ids) for p in pieces)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(pieces), width), pad, dtype=torch.long)
        mask = torch.zeros((len(pieces), width), dtype=torch.long)
        weight = torch.zeros((len(pieces), width - 1), dtype=torch.float64)
        for row, piece in enumerate(pieces):
            ids[row, : len(piece.ids)] = torch.tensor(piece.ids)
            mask[row, : len(piece.ids)] = 1
            # Position t of the shifted targets predicts token t + 1.
            weight[row, max(piece.start, 1) - 1 : len(piece.ids) - 1] = 1
        with torch.no_grad():
            logits = self.model(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
        token_loss = token_losses(logits[:, :-1], ids[:, 1:].to(self.device)).double().cpu()
        return [float(v) for v in (token_loss * weight).sum(-1) / weight.sum(-1)]
