"""Reward models and IFD as score jobs: a tiny sequence-classification model built here reads
prompt and answer (chat template or text pair) and its logit is the score, batched as one at a
time; the jobs store versioned, cached scores and score nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine, select
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForSequenceClassification,
)

from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.models import Dataset, Job, JobState, Score
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.scoring.example_text import ExampleText
from app.scoring.reward import RewardModel, conversation
from app.scoring.service import find_scorer, start_score_job
from tests.factories import make_example
from tests.scoring.tiny_llama import CORPUS, build_tiny_llama
from tests.tiny_models import word_tokenizer

load_every_job_kind()

TEMPLATE = "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
EXAMPLES = [
    ExampleText.of([], "How do I sort a list in Python?", "", "Use sorted(items)."),
    ExampleText.of([], "What is 12 + 34?", "Add them.", "It is 46."),
    ExampleText.of(
        [
            {"role": "user", "content": "Explain why the sky is blue."},
            {"role": "assistant", "content": "Sunlight scatters off small molecules."},
            {"role": "user", "content": "Write a haiku about the sea."},
            {"role": "assistant", "content": "Waves fold into foam, the gulls cry over the grey."},
        ]
    ),
]


def build_reward_model(folder: Path, *, chat: bool, seed: int = 0) -> Path:
    """A tiny random Llama with a one-logit classification head, and its tokenizer."""
    tokenizer = word_tokenizer([*CORPUS, TEMPLATE, "user assistant : <s> </s>"], bos_prefix=True)
    if chat:
        tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, num_labels=1, initializer_range=0.5,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    return folder


def one_at_a_time(
    folder: Path, conversations: list[list[dict[str, str]]], chat: bool
) -> list[float]:
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True).eval()
    rewards = []
    for messages in conversations:
        if chat:
            text = tokenizer.apply_chat_template(messages, tokenize=False)
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        else:
            prompt = "\n\n".join(m["content"] for m in messages[:-1])
            ids = tokenizer(prompt, messages[-1]["content"], return_tensors="pt")["input_ids"]
        with torch.no_grad():
            rewards.append(float(model(ids).logits[0, 0]))
    return rewards


@pytest.mark.parametrize("chat", [False, True], ids=["text-pair", "chat-template"])
def test_the_reward_is_the_logit_batched_as_one_at_a_time(tmp_path: Path, chat: bool) -> None:
    folder = build_reward_model(tmp_path / "reward", chat=chat)
    conversations = [conversation(e) for e in EXAMPLES]
    assert conversations[2][-1]["content"].startswith("Waves") and len(conversations[2]) == 4
    expected = one_at_a_time(folder, conversations, chat)
    batched = RewardModel(folder, batch_size=8).score(conversations)
    single = RewardModel(folder, batch_size=1).score(conversations)
    assert batched == pytest.approx(expected, abs=1e-5) and single == pytest.approx(
        expected, abs=1e-5
    )
    assert len({round(r, 5) for r in expected}) == len(expected)


def test_a_classifier_with_several_outputs_is_refused(tmp_path: Path) -> None:
    folder = build_reward_model(tmp_path / "two", chat=False)
    config = LlamaConfig.from_pretrained(folder)
    config.num_labels = 2
    LlamaForSequenceClassification(config).save_pretrained(folder)
    with pytest.raises(InvalidInput, match="2 outputs"):
        RewardModel(folder)


def _score(name: str, model: Path) -> Job:
    with transaction() as session:
        target = session.scalar(select(Dataset).where(Dataset.name == "signals"))
        assert target is not None
        run_jobs_here(session)
        job_id = start_score_job(session, target, name, model_path=str(model)).id
    execute_job(job_id, inline=True)
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_reward_and_ifd_score_jobs_are_cached_and_versioned(
    committed: Engine, tmp_path: Path
) -> None:
    reward = build_reward_model(tmp_path / "reward", chat=False)
    llama = build_tiny_llama(tmp_path / "llama")
    with transaction() as session:
        dataset = create_dataset(session, "signals")
        for i, output in enumerate(["Use sorted(items).", "It is 46.", "Sunlight scatters."]):
            make_example(session, dataset, i, {"instruction": CORPUS[i + 2], "output": output})
        with pytest.raises(InvalidInput, match="--model"):
            start_score_job(session, dataset, "reward")
    for name, model in (("reward", reward), ("ifd", llama), ("ifd-ppl", llama)):
        job = _score(name, model)
        assert job.state == JobState.SUCCEEDED.value, job.error
        assert job.counts["scored"] == 3, job.counts
        again = _score(name, model)
        assert again.state == JobState.SUCCEEDED.value and again.counts.get("scored", 0) == 0
    with transaction() as session:
        for name in ("reward", "ifd", "ifd-ppl"):
            scorer = find_scorer(session, name)
            assert scorer.kind == "local_logit_scorer" and scorer.model is not None
            values = session.scalars(select(Score.value).where(Score.scorer_id == scorer.id)).all()
            assert len(values) == 3 and all(v is not None for v in values)
        ifd = find_scorer(session, "ifd")
        assert ifd.params["extra"]["definition"] == "cherry"
        assert find_scorer(session, "ifd-ppl").key != ifd.key
        details = session.scalars(select(Score.details).where(Score.scorer_id == ifd.id)).first()
        assert details is not None and len(details["turns"]) == 1
