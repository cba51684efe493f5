"""Each signal of issue 15 as an experiment arm: saved as a recipe (`sift select --name`), read
back unchanged, and frozen by an experiment's `recipe:NAME` arm into exactly what the recipe
picks at the experiment's budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.experiments.service import arms_of, build_snapshot, create_experiment
from app.models import Embedding, SnapshotItem
from app.platform.vectors.models import DEFAULT_MODEL
from app.scoring.chunks import upsert_scores
from app.scoring.recipes import ENDPOINT_REWARD
from app.scoring.service import BUILTIN_RECIPES, ScorerChoice, get_or_create_scorer
from app.selection.service import SelectionSpec, get_selection, save_selection, select_ids
from app.training.presets import TrainingParams
from tests.factories import make_dataset, make_example
from tests.training.tiny_model import build_tiny_base

BUDGET = 6
RECIPES = {
    "longest-chars": {"method": "longest"},
    "k-center": {"method": "k-center", "scorer": "ifd-ppl"},
    "facility": {"method": "facility-location"},
    "facility-sparse": {"method": "facility-location", "neighbours": 5},
    "qdit": {"method": "facility-location", "alpha": 0.5, "scorer": "reward"},
    "superfiltering": {"method": "threshold", "filters": ["ifd-ppl<1"], "scorer": "ifd-ppl"},
    "cherry": {"method": "threshold", "filters": ["ifd<=1"], "scorer": "ifd"},
    "mods-reward": {"method": "threshold", "filters": ["reward>0"], "scorer": "reward"},
    "magpie-reward": {"method": "threshold", "filters": ["reward>-10"], "scorer": "reward"},
}


def _pool(session: Session) -> None:
    """40 examples with answers of several lengths, vectors, and ifd, ifd-ppl and reward
    scores (the reward from an endpoint, as `reward --endpoint` stores it)."""
    rng = np.random.default_rng(0)
    dataset = make_dataset(session, "pool")
    x = rng.normal(size=(40, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    choices = {
        "ifd": ScorerChoice(BUILTIN_RECIPES["ifd"], "smollm2", "transformers"),
        "ifd-ppl": ScorerChoice(BUILTIN_RECIPES["ifd-ppl"], "smollm2", "transformers"),
        "reward": ScorerChoice(ENDPOINT_REWARD, "nemotron-reward", "rm", "rm"),
    }
    scorers = {name: get_or_create_scorer(session, choice) for name, choice in choices.items()}
    rows = []
    for i in range(40):
        example = make_example(session, dataset, i, {"output": "word " * (1 + (i * 7) % 23)})
        session.add(
            Embedding(content_hash=example.content_hash, model=DEFAULT_MODEL, dim=384,
                      vector=x[i].tobytes())
        )  # fmt: skip
        values = {"ifd": 0.5 + (i % 9) / 10, "ifd-ppl": 0.4 + (i % 11) / 10, "reward": i - 25.0}
        rows += [
            {"content_hash": example.content_hash, "scorer_id": scorers[name].id, "value": v,
             "state": "ok", "raw": None, "details": {}}
            for name, v in values.items()
        ]  # fmt: skip
    upsert_scores(session, rows)
    session.flush()


def test_every_signal_is_a_recipe_and_an_experiment_arm(session: Session, tmp_path: Path) -> None:
    _pool(session)
    base = build_tiny_base(tmp_path / "base", ["word answer"])
    recipes = RECIPES | {"longest-tokens": {"method": "longest", "tokenizer": str(base)}}
    for name, values in recipes.items():
        spec = SelectionSpec.of({"dataset": "pool", "budget": 100, **values})
        save_selection(session, name, spec)
        assert get_selection(session, name) == spec  # read back unchanged
    experiment = create_experiment(
        session, "signals", "pool", BUDGET, [f"recipe:{name}" for name in recipes], str(base),
        TrainingParams(template="alpaca"),
    )  # fmt: skip
    for arm in arms_of(session, experiment):
        name = arm.name.removeprefix("recipe:")
        snapshot = build_snapshot(session, experiment, arm)
        frozen = set(
            session.scalars(
                select(SnapshotItem.example_id).where(SnapshotItem.snapshot_id == snapshot.id)
            )
        )
        spec = SelectionSpec.of({"dataset": "pool", "budget": BUDGET, **recipes[name]})
        expected = select_ids(session, spec)
        assert frozen == set(expected) and 0 < len(frozen) <= BUDGET, name
