"""Reward models as scorers: a local sequence-classification model folder (never a hub) reads
the prompt and the final answer, and the score is its logit.

The text goes through the tokenizer's chat template when it has one (the whole conversation,
the final answer last), else as a text pair (the prompt, the answer), as OpenAssistant's
DeBERTa reward models are used. Thresholds as papers use them: MoDS keeps reward > 0
(`--filter "reward>0"`), Magpie keeps > -10.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.platform.errors import InvalidInput
from app.scoring.example_text import ExampleText


def conversation(example: ExampleText) -> list[dict[str, str]]:
    """The example as chat messages, ending with its final answer."""
    if len(example.turns) <= 1:
        user = example.instruction + (f"\n\n{example.input}" if example.input else "")
        return [{"role": "user", "content": user}, {"role": "assistant", "content": example.output}]
    messages = []
    for turn in example.turns:
        messages.append({"role": "user", "content": turn.user})
        if turn.assistant:
            messages.append({"role": "assistant", "content": turn.assistant})
    return messages


class RewardModel:
    """A local sequence-classification model with one output: the reward of an answer."""

    def __init__(self, path: str | Path, batch_size: int = 8) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise InvalidInput(f"{folder} is not a model folder with a config.json", field="model")
        if batch_size < 1:
            raise InvalidInput("batch_size is at least 1", field="batch_size")
        self.batch_size = batch_size
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        dtype = "auto" if self.device.type == "cuda" else torch.float32
        model: Any = AutoModelForSequenceClassification.from_pretrained(
            folder, local_files_only=True, dtype=dtype
        )
        if model.config.num_labels != 1:
            raise InvalidInput(
                f"{folder} has {model.config.num_labels} outputs; a reward model has one",
                field="model",
            )
        # The model finds each text's last token by the pad id: it must be the tokenizer's.
        model.config.pad_token_id = tokenizer.pad_token_id
        self.tokenizer, self.model = tokenizer, model.to(self.device).eval()
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def encode(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """The token ids the model reads for one conversation."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        limit = limit if isinstance(limit, int) and limit < 1_000_000 else None
        if self.chat:
            text = self.tokenizer.apply_chat_template(list(messages), tokenize=False)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return list(ids[-limit:] if limit else ids)  # the answer is at the end
        prompt = "\n\n".join(m["content"] for m in messages[:-1])
        encoded = self.tokenizer(
            prompt, messages[-1]["content"], truncation="only_first" if limit else False
        )
        return list(encoded["input_ids"])

    def score(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[float]:
        """The reward of each conversation's final answer, in the order given."""
        encoded = [self.encode(messages) for messages in conversations]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        rewards: dict[int, float] = {}
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            rewards.update(zip(batch, self._batch([encoded[i] for i in batch]), strict=True))
        return [rewards[i] for i in range(len(encoded))]

    def _batch(self, sequences: list[list[int]]) -> list[float]:
        import torch

        width = max(len(ids) for ids in sequences)
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return [float(v) for v in out.logits[:, 0].float().cpu()]
