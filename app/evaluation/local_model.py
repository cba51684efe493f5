"""Answers from a training run's model (or a local model folder or GGUF file), generated
locally with transformers, in batches.

The artifact is the training contract's: `{data_dir}/training/runs/{id}/final/` holds a PEFT
LoRA adapter (on `run.base_model`) or a full model, and a tokenizer whose chat template is
set; `app.training.service.load_trained_model` loads it. torch and transformers are imported
when a model is loaded, so that importing this module costs nothing without the `ml` extra.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from app.evaluation.answers import Answer, GenerationSettings, run_final_dir
from app.models import TrainingRun
from app.platform.errors import InvalidInput
from app.platform.local_models import load_causal_lm, model_folder
from app.training.service import load_trained_model

BATCH_SIZE = 8


def load_run_model(run: TrainingRun) -> tuple[Any, Any, Any]:
    """(tokenizer, model in eval mode, device) of a succeeded run's final artifact, loaded by
    the training domain, which knows its layout."""
    model, tokenizer = load_trained_model(run)
    if not tokenizer.chat_template:
        raise InvalidInput(f"the tokenizer of training run {run.id} has no chat template")
    # Generation pads on the left, so that every prompt's next token comes right after it.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, model, next(model.parameters()).device


# A worker keeps the last models it used (loading takes seconds), by artifact folder: a run's
# final artifact never changes once it has succeeded.
_LOADED: OrderedDict[str, LocalGenerator] = OrderedDict()
KEEP_LOADED = 2


def generator_for(run: TrainingRun) -> LocalGenerator:
    """The generator of a succeeded training run's model."""
    return _kept(str(run_final_dir(run.id).resolve()), lambda: load_run_model(run))


def generator_for_model(path: str) -> LocalGenerator:
    """The generator of a local model (a folder or a GGUF file), with its own chat template."""

    def load() -> tuple[Any, Any, Any]:
        tokenizer, model, device = load_causal_lm(path, padding_side="left")
        if not tokenizer.chat_template:
            raise InvalidInput(f"model: {path} has no chat template to ask it with", field="model")
        return tokenizer, model, device

    return _kept(str(model_folder(path)), load)


def _kept(key: str, load: Callable[[], tuple[Any, Any, Any]]) -> LocalGenerator:
    if key not in _LOADED:
        while len(_LOADED) >= KEEP_LOADED:
            _LOADED.popitem(last=False)
        _LOADED[key] = LocalGenerator(*load())
    _LOADED.move_to_end(key)
    return _LOADED[key]


class LocalGenerator:
    """Batched chat generation from a causal LM and its chat template."""

    def __init__(self, tokenizer: Any, model: Any, device: Any) -> None:
        self.tokenizer, self.model, self.device = tokenizer, model, device

    def answer(
        self, prompts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> list[Answer]:
        """Each prompt's answers, turn by turn (a later turn sees the earlier answers)."""
        conversations: list[list[dict[str, str]]] = [[] for _ in prompts]
        answers = [Answer([]) for _ in prompts]
        for turn in range(max((len(p) for p in prompts), default=0)):
            active = [i for i, p in enumerate(prompts) if turn < len(p)]
            for i in active:
                conversations[i].append({"role": "user", "content": prompts[i][turn]})
            replies = self.generate([conversations[i] for i in active], settings)
            for i, (text, prompt_tokens, completion_tokens) in zip(active, replies, strict=True):
                conversations[i].append({"role": "assistant", "content": text})
                answer = answers[i]
                assert answer.turns is not None
                answer.turns.append(text)
                answer.prompt_tokens += prompt_tokens
                answer.completion_tokens += completion_tokens
        return answers

    def generate(
        self, conversations: Sequence[list[dict[str, str]]], settings: GenerationSettings
    ) -> list[tuple[str, int, int]]:
        """(reply, prompt tokens, reply tokens) per conversation, in the order given."""
        import torch

        texts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
            for c in conversations
        ]
        # Prompts of similar length batch together: less padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        replies: dict[int, tuple[str, int, int]] = {}
        # Seeded once per call, so that sampled answers repeat for the same prompts.
        torch.manual_seed(settings.seed)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            replies.update(
                zip(batch, self._batch([texts[i] for i in batch], settings), strict=True)
            )
        return [replies[i] for i in range(len(texts))]

    def _batch(self, texts: list[str], settings: GenerationSettings) -> list[tuple[str, int, int]]:
        import torch

        # The chat template already writes the special tokens it wants.
        encoded = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        sampling: dict[str, Any] = {"do_sample": settings.temperature > 0}
        if settings.temperature > 0:
            sampling.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            # Greedy: no sampling knobs, so that transformers warns about none.
            sampling.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            output = self.model.generate(
                **encoded,
                max_new_tokens=settings.max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        width = encoded["input_ids"].shape[1]
        lengths = encoded["attention_mask"].sum(-1).tolist()
        results = []
        for row, prompt_tokens in zip(output, lengths, strict=True):
            new = row[width:]
            eos = self.tokenizer.eos_token_id
            # Tokens after the end of sequence are padding of a finished row.
            if eos is not None and (new == eos).any():
                new = new[: int((new == eos).nonzero()[0, 0])]
            text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            results.append((text, int(prompt_tokens), len(new)))
        return results
