"""Long Is More: the k longest final answers, by characters or tokens, ties by id; through the
spec, the preview, the API and a collection recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections.service import create_collection, item_ids
from app.entrypoints.domains import load_every_job_kind
from app.models import Dataset
from app.platform.errors import InvalidInput
from app.selection import service
from app.selection.longest import final_answer, longest_order
from app.selection.service import SelectionSpec
from tests.factories import make_dataset, make_example, make_token

load_every_job_kind()


def _pool(session: Session, outputs: list[str]) -> tuple[Dataset, list[int]]:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i, {"output": o}) for i, o in enumerate(outputs)]
    return dataset, [e.id for e in examples]


def test_longest_characters_first_ties_by_id(session: Session) -> None:
    dataset, ids = _pool(session, ["abc", "abcdef", "xyz", "a", "uvwxyz", "abcdefgh"])
    spec = SelectionSpec(dataset.name, "longest", budget=4)
    # 8, then the two 6s by id, then the lower-id 3.
    assert service.select_ids(session, spec) == [ids[5], ids[1], ids[4], ids[0]]
    everything = SelectionSpec(dataset.name, "longest", budget=100)
    assert service.select_ids(session, everything) == [ids[i] for i in (5, 1, 4, 0, 2, 3)]
    assert longest_order({9: 3, 2: 3, 5: 4}) == [5, 2, 9]


def test_longest_reads_the_last_assistant_turn(session: Session) -> None:
    dataset = make_dataset(session)
    long_first = make_example(
        session,
        dataset,
        1,
        messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "x" * 50},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "short"},
        ],
        instruction=None,
        input=None,
        output=None,
    )
    other = make_example(session, dataset, 2, {"output": "y" * 10})
    spec = SelectionSpec(dataset.name, "longest", budget=2)
    assert service.select_ids(session, spec) == [other.id, long_first.id]
    assert final_answer([], "alone") == "alone"


def test_longest_by_tokens_of_a_local_tokenizer(session: Session, tmp_path: Path) -> None:
    from tests.tiny_models import word_tokenizer

    # Many characters but 2 tokens, against few characters but 5 tokens.
    dataset, ids = _pool(session, ["extraordinarily uncharacteristically", "a b c d e"])
    folder = tmp_path / "tokenizer"
    word_tokenizer(["extraordinarily uncharacteristically a b c d e"]).save_pretrained(folder)
    by_chars = SelectionSpec(dataset.name, "longest", budget=2)
    assert service.select_ids(session, by_chars) == ids
    by_tokens = SelectionSpec(dataset.name, "longest", budget=2, tokenizer=str(folder))
    assert service.select_ids(session, by_tokens) == [ids[1], ids[0]]
    missing = SelectionSpec(dataset.name, "longest", budget=2, tokenizer=str(tmp_path / "none"))
    with pytest.raises(InvalidInput) as refused:
        service.select_ids(session, missing)
    assert refused.value.message.startswith("tokenizer:")


def test_longest_in_preview_api_and_collection(client: TestClient, session: Session) -> None:
    dataset, ids = _pool(session, ["a" * n for n in (5, 9, 7, 1)])
    _, lead = make_token(session, "lead")
    body = {"dataset": dataset.name, "method": "longest", "budget": 2}
    response = client.post("/api/v1/selections/preview", json=body, headers=lead)
    assert response.status_code == 200, response.text
    assert response.json()["example_ids"] == [ids[1], ids[2]]
    refused = client.post(
        "/api/v1/selections/preview",
        json=body | {"tokenizer": "/x", "method": "random"},
        headers=lead,
    )
    assert refused.status_code == 422 and "tokenizer" in refused.text

    collection = create_collection(session, "longest-set", target_size=3)
    counts = service.select_into(
        session, collection, SelectionSpec(dataset.name, "longest", budget=3)
    )
    assert counts["added"] == 3 and "note" not in counts
    assert item_ids(session, collection) == [ids[1], ids[2], ids[0]]


def test_old_recipes_keep_their_stored_form(session: Session) -> None:
    spec = SelectionSpec("pool", "random", budget=5)
    assert "tokenizer" not in spec.canonical() and "alpha" not in spec.canonical()
    assert SelectionSpec(**spec.canonical()) == spec
