"""Deita selection on a dataset scored with deita-complexity and deita-quality but never with
deita-evol: the evol score is derived (sum over turns of complexity x quality) and said so."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.collections.service import create_collection, item_ids
from app.models import Embedding
from app.platform.errors import NotFound
from app.platform.vectors.models import DEFAULT_MODEL
from app.scoring.chunks import upsert_scores
from app.scoring.service import BUILTIN_RECIPES, ScorerChoice, get_or_create_scorer
from app.selection import service
from app.selection.service import SelectionSpec
from tests.factories import make_dataset, make_example


def _score(session: Session, name: str, values: dict[str, tuple[float, list[float]]]) -> None:
    choice = ScorerChoice(BUILTIN_RECIPES[name], "deita-scorer", "test")
    scorer = get_or_create_scorer(session, choice)
    rows = [
        {"content_hash": h, "scorer_id": scorer.id, "value": v, "state": "ok", "raw": None,
         "details": {"turns": turns}}
        for h, (v, turns) in values.items()
    ]  # fmt: skip
    upsert_scores(session, rows)


def test_deita_derives_the_evol_score_from_complexity_and_quality(session: Session) -> None:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(4)]
    hashes = [e.content_hash for e in examples]
    spec = SelectionSpec(dataset.name, "deita", budget=4, threshold=0.9)
    with pytest.raises(NotFound, match="deita-complexity and deita-quality"):
        service.select_ids(session, spec)
    # Example 2 has two turns: its evol score is 2*3 + 1*1 = 7, not 3 * 4 = 12.
    _score(session, "deita-complexity", {hashes[0]: (2.0, [2.0]), hashes[1]: (1.5, [1.5]),
                                         hashes[2]: (3.0, [2.0, 1.0]), hashes[3]: (5.0, [5.0])})  # fmt: skip
    _score(session, "deita-quality", {hashes[0]: (2.0, [2.0]), hashes[1]: (4.0, [4.0]),
                                      hashes[2]: (4.0, [3.0, 1.0])})  # fmt: skip
    for i, example in enumerate(examples):
        vector = np.zeros(4, dtype=np.float32)
        vector[i] = 1.0
        session.add(Embedding(content_hash=example.content_hash, model=DEFAULT_MODEL, dim=4,
                              vector=vector.tobytes()))  # fmt: skip
    session.flush()
    # Evol: 4, 6, 7; example 3 has no quality score and is not a candidate.
    assert service.select_ids(session, spec) == [examples[2].id, examples[1].id, examples[0].id]
    shown = service.preview(session, spec)
    assert (
        shown["evol_score"]
        == "evol score derived from deita-complexity x deita-quality (no deita-evol scores)"
    )
    collection = create_collection(session, "evol-derived", target_size=10)
    counts = service.select_into(session, collection, spec)
    assert counts["added"] == 3 and "derived" in counts["evol_score"]
    assert item_ids(session, collection) == [examples[2].id, examples[1].id, examples[0].id]
    # A dataset scored with deita-evol itself uses those scores, and says nothing.
    _score(session, "deita-evol", {hashes[0]: (9.0, [9.0]), hashes[3]: (1.0, [1.0])})
    assert service.select_ids(session, spec) == [examples[0].id, examples[3].id]
    assert "evol_score" not in service.preview(session, spec)
