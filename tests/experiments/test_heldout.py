"""The held-out split: drawn once (seeded) from what no fixed arm holds, never selected by any
arm, and each model's loss on it equal to a plain per-example computation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.experiments.heldout import draw_heldout, example_losses, heldout_size
from app.experiments.leaderboard import heldout_bootstrap
from app.experiments.service import arms_of, build_snapshot, create_experiment, snapshot_example_ids
from app.platform.errors import Conflict, InvalidInput
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from app.training.service import IGNORE, build_params, encode
from tests.factories import make_dataset, make_example
from tests.training.tiny_model import build_tiny_base

CONVERSATIONS = [
    [{"role": "user", "content": "name a colour"}, {"role": "assistant", "content": "red"}],
    [
        {"role": "user", "content": "count to five please"},
        {"role": "assistant", "content": "one two three four five"},
    ],
    [
        {"role": "user", "content": "say hello"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and again"},
        {"role": "assistant", "content": "hello hello again"},
    ],
    # Its prompt fills the whole length: no answer token is left to measure.
    [{"role": "user", "content": "one " * 80}, {"role": "assistant", "content": "two"}],
]


def test_the_loss_of_each_example_is_the_models_own_loss_of_it_alone(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from app.training.trainer import load_tokenizer

    texts = [m["content"] for c in CONVERSATIONS for m in c]
    base = build_tiny_base(tmp_path / "tiny", texts)
    tokenizer, _ = load_tokenizer(str(base), "alpaca")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    # Batched (rows padded to the longest) against one example at a time, as the model's own
    # loss averages its shifted labels: the same numbers.
    measured = example_losses(model, tokenizer, CONVERSATIONS, max_length=48)
    for messages, loss, tokens in zip(CONVERSATIONS, measured.losses, measured.tokens, strict=True):
        row = encode(tokenizer, messages, 48)
        counted = sum(1 for label in row["labels"][1:] if label != IGNORE)
        assert tokens == counted
        if not counted:
            assert loss is None
            continue
        with torch.no_grad():
            plain = model(
                input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]])
            ).loss.item()
        assert loss == pytest.approx(plain, rel=1e-5)
    assert measured.losses[3] is None and all(v is not None for v in measured.losses[:3])
    assert measured.as_json(7)["skipped"] == 1

    # The metric: loss per token over the split, examples weighted by their tokens; the
    # interval resamples the examples, seeded.
    board = heldout_bootstrap(measured.losses, measured.tokens)
    kept = [(v, n) for v, n in zip(measured.losses, measured.tokens, strict=True) if v is not None]
    weighted = sum(v * n for v, n in kept) / sum(n for _, n in kept)
    assert board["value"] == pytest.approx(weighted)
    assert board["low"] <= board["value"] <= board["high"]
    assert heldout_bootstrap(measured.losses, measured.tokens) == board
    assert heldout_bootstrap([None], [0]) == {"value": None, "low": None, "high": None}


def test_the_split_is_seeded_and_sized_as_asked() -> None:
    ids = list(range(100, 200))
    assert draw_heldout(ids, 0.1, seed=3) == draw_heldout(list(reversed(ids)), 0.1, seed=3)
    assert draw_heldout(ids, 0.1, seed=3) != draw_heldout(ids, 0.1, seed=4)
    assert len(draw_heldout(ids, 0.1, seed=3)) == 10 and len(draw_heldout(ids, 25, seed=0)) == 25
    assert heldout_size(0.001, 100) == 1
    for asked, message in (
        (0, "a fraction in (0, 1) or a count"),
        (2.5, "neither a fraction below 1 nor a whole count"),
        (100, "leaves none to select"),
    ):
        with pytest.raises(InvalidInput, match=re.escape(message)) as raised:
            heldout_size(asked, 100)
        assert raised.value.detail["field"] == "heldout"


def test_no_arm_selects_a_held_out_example(session: Session, tmp_path: Path) -> None:
    pool = make_dataset(session, "heldout-pool")
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    examples = [
        make_example(session, pool, i, {"output": "word " * (i % 17 + 1)}) for i in range(40)
    ]
    upsert_scores(session, [
        {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": float(len(e.output)),
         "state": "ok", "raw": None, "details": {}}
        for e in examples
    ])  # fmt: skip
    ids = [e.id for e in examples]
    hand = create_collection(session, "hand-picked", target_size=5)
    add_items(session, hand, ids[:5])
    base = build_tiny_base(tmp_path / "tiny", ["x"])
    params = build_params("alpaca", template="alpaca", max_steps=1)
    arms = ["random", "longest", "pool", "threshold:length>=0", "collection:hand-picked"]
    experiment = create_experiment(
        session, "held", "heldout-pool", 10, arms, str(base), params, heldout=0.25
    )
    held = set(experiment.heldout_ids)
    # A quarter of what the collection arm leaves, never what it holds.
    assert len(held) == round(0.25 * 35) and not held & set(ids[:5]) and held <= set(ids)
    chosen = {}
    for arm in arms_of(session, experiment):
        snapshot = build_snapshot(session, experiment, arm)
        chosen[arm.name] = set(snapshot_example_ids(session, snapshot.id))
        assert not chosen[arm.name] & held, arm.name
    assert chosen["pool"] == set(ids) - held
    assert len(chosen["random"]) == len(chosen["longest"]) == 10
    # The same pool, arms and seed draw the same split.
    again = create_experiment(
        session, "held-again", "heldout-pool", 10, arms, str(base), params, heldout=0.25
    )
    assert again.heldout_ids == experiment.heldout_ids

    # A collection that gains a held-out example afterwards is refused, naming the arm.
    late = create_collection(session, "late", target_size=20)
    add_items(session, late, ids[:5])
    third = create_experiment(
        session, "held-late", "heldout-pool", 5, ["collection:late"], str(base), params,
        heldout=3,
    )  # fmt: skip
    add_items(session, late, third.heldout_ids[:1])
    with pytest.raises(Conflict, match="holds 1 held-out examples"):
        build_snapshot(session, third, arms_of(session, third)[0])
    with pytest.raises(InvalidInput, match="leaves none to select") as raised:
        create_experiment(
            session, "held-all", "heldout-pool", 5, ["random"], str(base), params, heldout=40
        )
    assert raised.value.detail["field"] == "heldout"
