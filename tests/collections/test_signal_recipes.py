"""The collection page's recipe form runs the issue-15 methods: longest by its preview, the
diversity methods starting from what the collection holds, and alpha checked like the API."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections import service
from app.models import User
from app.platform.vectors.models import DEFAULT_MODEL
from app.platform.vectors.store import store_embeddings
from tests.collections.test_pages import make_collection, make_pool, recipe_form
from tests.factories import make_user
from tests.web.test_pages import sign_in


@pytest.fixture
def lead(session: Session) -> User:
    return make_user(session, "lead")


def test_the_form_previews_longest_and_the_diversity_methods(
    client: TestClient, session: Session, lead: User
) -> None:
    dataset, examples = make_pool(session, 8)
    vectors = np.eye(8, dtype=np.float32)
    store_embeddings(session, [e.content_hash for e in examples], DEFAULT_MODEL, vectors)
    collection = make_collection(session, lead, target_size=5)
    service.add_items(session, collection, [examples[0].id])
    token = sign_in(client, lead)
    url = f"/collections/{collection.name}/preview"
    for method in ("longest", "k-center", "facility-location"):
        form = recipe_form(token, dataset, method=method, budget="3", tokenizer="", alpha="0")
        response = client.post(url, data=form, headers={"hx-request": "true"})
        assert response.status_code == 200, response.text
        assert "<b>3</b> of 8 in the filtered pool" in response.text, method
    form = recipe_form(token, dataset, method="facility-location", budget="3", neighbours="2")
    sparse = client.post(url, data=form, headers={"hx-request": "true"})
    assert "<b>3</b> of 8 in the filtered pool" in sparse.text, sparse.text
    form = recipe_form(token, dataset, method="k-center", neighbours="2")
    assert "neighbours: only facility-location uses them" in client.post(url, data=form).text
    form = recipe_form(token, dataset, method="facility-location", alpha="1.5")
    bad = client.post(url, data=form, headers={"hx-request": "true"})
    assert "alpha: a weight in [0, 1]" in bad.text
    form = recipe_form(token, dataset, method="random", tokenizer="/some/folder")
    assert "tokenizer: only longest counts tokens" in client.post(url, data=form).text
