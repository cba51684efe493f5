"""Agreement figures equal the libraries' own on the same decision matrix, missing decisions and
a single annotator included; where a measure is undefined Sift says so (issue 13)."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from typer.testing import CliRunner

from app.collections.service import add_items, create_collection
from app.entrypoints.cli import cli
from app.models import ReviewAction
from app.platform.db import transaction
from app.review import queue as queues
from app.review import service
from app.review.agreement import measure
from tests.factories import make_dataset, make_example, make_token, make_user, unique

A, R = "accepted", "rejected"
# Three annotators, six examples, some decisions missing.
MATRIX = {
    "ann": {1: A, 2: R, 3: A, 4: A, 5: R},
    "bob": {1: A, 2: A, 3: A, 5: R, 6: A},
    "cat": {2: R, 3: R, 4: A, 5: R, 6: A},
}


def test_the_figures_are_the_libraries_own() -> None:
    figures = measure(MATRIX)
    names, items = sorted(MATRIX), range(1, 7)
    code = {A: 1, R: 0}
    data = np.array(
        [[code[MATRIX[n][i]] if i in MATRIX[n] else np.nan for i in items] for n in names]
    )
    expected_alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert figures.krippendorff_alpha == pytest.approx(expected_alpha, abs=1e-6)
    # Fleiss over the examples that all three decided (2, 3 and 5: the most common count).
    full = [[code[MATRIX[n][i]] for n in names] for i in (2, 3, 5)]
    assert figures.fleiss_kappa == pytest.approx(
        fleiss_kappa(aggregate_raters(full, n_cat=2)[0]), abs=1e-6
    )
    pairs = {(p.a, p.b): p for p in figures.cohen_kappa}
    assert set(pairs) == {("ann", "bob"), ("ann", "cat"), ("bob", "cat")}
    for (a, b), pair in pairs.items():
        shared = sorted(MATRIX[a].keys() & MATRIX[b].keys())
        assert pair.n == len(shared)
        expected = cohen_kappa_score([code[MATRIX[a][i]] for i in shared],
                                     [code[MATRIX[b][i]] for i in shared], labels=[0, 1])  # fmt: skip
        assert pair.kappa == (None if np.isnan(expected) else pytest.approx(expected, abs=1e-6))
    assert figures.items == 6


def test_one_annotator_or_one_category_gives_no_number_but_a_reason() -> None:
    alone = measure({"ann": {1: A, 2: R}})
    assert (alone.krippendorff_alpha, alone.fleiss_kappa, alone.cohen_kappa) == (None, None, [])
    assert any("two annotators" in note for note in alone.notes)
    same = measure({"ann": {1: A, 2: A}, "bob": {1: A, 2: A}})
    assert same.krippendorff_alpha is None and same.fleiss_kappa is None
    assert same.cohen_kappa[0].kappa is None and same.cohen_kappa[0].n == 2
    assert any("every decision is the same" in note for note in same.notes)
    apart = measure({"ann": {1: A}, "bob": {2: R}})
    assert apart.krippendorff_alpha is None and apart.cohen_kappa[0].n == 0


def _voted_collection(session: Session) -> str:
    """A collection of six examples with overlap 2, voted on by two annotators who disagree
    on the odd ones."""
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(6)]
    collection = create_collection(session, unique("set"), overlap=2)
    add_items(session, collection, [e.id for e in examples])
    for person, disagree in ((make_user(session), False), (make_user(session), True)):
        queue = queues.open_queue(session, collection=collection.name, user=person)
        while (example := queues.next_example(session, queue, person)) is not None:
            odd = examples.index(example) % 2 == 1
            action = ReviewAction.REJECT if disagree and odd else ReviewAction.ACCEPT
            service.decide(session, person, example.id, action, version=example.version,
                           reason="no", queue=queue)  # fmt: skip
    return collection.name


def test_the_api_gives_a_collections_figures(client: TestClient, session: Session) -> None:
    name = _voted_collection(session)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    url = f"/api/v1/collections/{name}/agreement"
    assert client.get(url, headers=annotator).status_code == 403
    body = client.get(url, headers=lead).json()
    assert body["items"] == 6 and len(body["cohen_kappa"]) == 1
    assert body["cohen_kappa"][0]["n"] == 6 and body["cohen_kappa"][0]["kappa"] == 0.0
    assert body["krippendorff_alpha"] is not None
    # Majority of two needs both: the three they agreed on are accepted, the rest disputed.
    rates = sorted(p["agree_with_consensus"] for p in body["annotators"])
    assert rates == [1.0, 1.0] and all(p["settled"] == 3 for p in body["annotators"])


def test_sift_review_agreement_prints_json(committed: Engine) -> None:
    with transaction() as session:
        name = _voted_collection(session)
    result = CliRunner().invoke(cli, ["review", "agreement", "--collection", name, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert {"krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "items"} <= figures.keys()
    assert {"a", "b", "kappa", "n"} == figures["cohen_kappa"][0].keys()
    text = CliRunner().invoke(cli, ["review", "agreement", "--collection", name])
    assert "Krippendorff's alpha (nominal)" in text.output
