"""Bulk work in the pages (issue 13): score columns sorted by their header, histogram bars that
filter the table by their range, the bulk forms of the review queue, the pick list and the map
(a lasso's ids), and the "all N matching" count."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, item_ids
from app.models import Dataset, Example, ReviewAssignment
from app.platform.vectors.store import store_embeddings
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from tests.factories import make_dataset, make_example, make_user, unique
from tests.web.test_pages import sign_in

VALUES = [1.0, 50.0, 2.0, 80.0, 30.0, 3.0]


def _scored(session: Session, values: list[float]) -> tuple[Dataset, list[Example]]:
    dataset = make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    examples = [make_example(session, dataset, i) for i in range(len(values))]
    upsert_scores(session, [
        {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": v, "state": "ok",
         "raw": None, "details": {}}
        for e, v in zip(examples, values, strict=True)
    ])  # fmt: skip
    return dataset, examples


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]


def _statuses(session: Session, examples: list[Example]) -> list[str]:
    session.expire_all()
    return [session.get_one(Example, e.id).status for e in examples]


def test_the_dataset_table_sorts_by_a_score_column(client: TestClient, session: Session) -> None:
    dataset, examples = _scored(session, VALUES)
    sign_in(client, make_user(session, "lead"))
    page = client.get(f"/datasets/{dataset.name}").text
    assert 'title="sort by length"' in page
    assert "sort=length" in page  # the header's link: highest first
    by_length = client.get(f"/datasets/{dataset.name}", params={"sort": "length"}).text
    ranked = sorted(zip(VALUES, [e.id for e in examples], strict=True), reverse=True)
    assert _row_ids(by_length) == [i for _, i in ranked]
    assert 'aria-sort="descending"' in by_length and "sort=length%3Aasc" in by_length
    lowest = client.get(f"/datasets/{dataset.name}", params={"sort": "length:asc"}).text
    assert _row_ids(lowest) == [i for _, i in sorted(ranked)]
    unknown = client.get(f"/datasets/{dataset.name}", params={"sort": "nothing-here"})
    assert unknown.status_code == 200 and "no scorer" in unknown.text


def test_a_histogram_bar_links_the_table_filtered_by_its_range(
    client: TestClient, session: Session
) -> None:
    dataset, examples = _scored(session, VALUES)
    sign_in(client, make_user(session, "lead"))
    fragment = client.get(f"/datasets/{dataset.name}/scores").text
    links = re.findall(r'<a href="([^"]+)" class="bar-link" data-score-range="([^"]+)"', fragment)
    assert len(links) == 24  # one per bar
    href, first = links[0]
    assert first.startswith("length:0..") and links[-1][1].endswith("..")  # the top bar is open
    query = parse_qs(urlparse(href.replace("&amp;", "&")).query)
    assert query["score"] == [unquote(first)]
    # The first bar holds 1, 2 and 3 (0 to 80 in 24 bars); its link lists exactly those.
    listed = client.get(f"/datasets/{dataset.name}", params={"score": first}).text
    assert sorted(_row_ids(listed)) == [examples[i].id for i in (0, 2, 5)]
    top = client.get(f"/datasets/{dataset.name}", params={"score": links[-1][1]}).text
    assert _row_ids(top) == [examples[3].id]


def test_the_queue_page_bulk_rejects_all_matching_its_filter(
    client: TestClient, session: Session
) -> None:
    dataset, examples = _scored(session, VALUES)
    lead = make_user(session, "lead")
    token = sign_in(client, lead)
    page = client.get("/review/queue", params={"dataset": dataset.name, "score": "length<10"})
    assert 'action="/review/queue/bulk"' in page.text and "data-tick-all" in page.text
    assert 'name="score" value="length&lt;10"' in page.text
    done = client.post(
        "/review/queue/bulk",
        data={"csrf_token": token, "queue_dataset": dataset.name, "status": "candidate",
              "score": "length<10", "action": "reject", "reason": "too short"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith("/review/queue?") and "bulk_matched=3" in location
    assert "bulk_changed=3" in location and "score=length" in location
    assert _statuses(session, examples) == ["rejected", "candidate", "rejected", "candidate",
                                            "candidate", "rejected"]  # fmt: skip
    shown = client.get(location).text
    assert "3 examples matched; 3 changed" in shown
    client.cookies.clear()
    sign_in(client, make_user(session, "annotator"))
    mine = client.get("/review/queue", params={"dataset": dataset.name}).text
    assert 'action="/review/queue/bulk"' not in mine


def test_the_queue_page_assigns_the_ticked_rows(client: TestClient, session: Session) -> None:
    dataset, examples = _scored(session, VALUES)
    alice = make_user(session)
    token = sign_in(client, make_user(session, "lead"))
    ticked = [examples[1].id, examples[4].id]
    done = client.post(
        "/review/queue/bulk",
        data={"csrf_token": token, "queue_dataset": dataset.name, "action": "assign",
              "annotators": alice.name, "ids": [str(i) for i in ticked]},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303, done.text
    assigned = session.scalars(
        select(ReviewAssignment.example_id).where(ReviewAssignment.user_id == alice.id)
    ).all()
    assert sorted(assigned) == ticked
    # Alice sees them first, marked as hers; the lead's own queue no longer offers them.
    lead_view = client.get("/review/queue", params={"dataset": dataset.name}).text
    assert alice.name not in lead_view
    client.cookies.clear()
    sign_in(client, alice)
    page = client.get("/review/queue", params={"dataset": dataset.name}).text
    listed = [int(i) for i in re.findall(r'<td class="mono"><a href="/review/examples/(\d+)', page)]
    assert listed[:2] == ticked and len(listed) == len(examples)
    assert page.count(f'<td class="muted">{alice.name}</td>') == 2


def test_the_pick_list_filters_by_score_and_adds_all_matching(
    client: TestClient, session: Session
) -> None:
    dataset, examples = _scored(session, VALUES)
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [examples[1].id])  # already in: not in the pick list
    token = sign_in(client, make_user(session, "lead"))
    pick = client.get(
        f"/collections/{collection.name}/pool",
        params={"dataset": dataset.name, "score": "length:20..", "sort": "length"},
    ).text
    assert _row_ids(pick) == [examples[3].id, examples[4].id]
    assert 'action="/collections/' in pick and 'id="pick-bulk-form"' in pick
    count = client.get(
        "/bulk/count",
        params={"dataset": dataset.name, "not_in": collection.name, "score": "length:20.."},
    )
    assert count.text == '<b data-bulk-count="2">2</b>'
    done = client.post(
        f"/collections/{collection.name}/bulk",
        data={"csrf_token": token, "dataset": dataset.name, "score": "length:20..",
              "action": "add", "collection": collection.name},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"].endswith("#pick")
    assert sorted(item_ids(session, collection)) == sorted(
        e.id for e in (examples[1], examples[3], examples[4])
    )


def test_the_map_colours_by_status_and_its_lasso_ids_feed_the_bulk_form(
    client: TestClient, session: Session
) -> None:
    dataset, examples = _scored(session, VALUES)
    examples[0].status = "accepted"
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((len(examples), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store_embeddings(session, [e.content_hash for e in examples], "test-model", vectors)
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [examples[0].id])
    token = sign_in(client, make_user(session, "lead"))
    base = f"/collections/{collection.name}"
    plain = client.get(f"{base}/map").text
    assert 'data-lasso="map-bulk-form"' in plain and plain.count("data-id=") >= 1
    by_status = client.get(f"{base}/map", params={"colour": "status"}).text
    assert 'fill="#2f9e44"' in by_status  # the accepted example, green
    by_score = client.get(f"{base}/map", params={"colour": "score", "scorer": "length"}).text
    assert "#fde725" in by_score  # the highest values, the ramp's top
    lassoed = [examples[2].id, examples[3].id]
    done = client.post(
        f"{base}/bulk",
        data={"csrf_token": token, "action": "reject", "reason": "off topic",
              "ids": [str(i) for i in lassoed]},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"].endswith("#map")
    assert _statuses(session, [examples[2], examples[3], examples[4]]) == [
        "rejected", "rejected", "candidate",
    ]  # fmt: skip
    del dataset


def test_a_refused_bulk_form_says_why_beside_the_form_once(
    client: TestClient, session: Session
) -> None:
    dataset, examples = _scored(session, VALUES)
    token = sign_in(client, make_user(session, "lead"))
    refused = client.post(
        f"/datasets/{dataset.name}/bulk",
        data={"csrf_token": token, "action": "reject", "score": "length<10"},
        follow_redirects=False,
    )
    assert refused.status_code == 303 and "bulk_matched" not in refused.headers["location"]
    page = client.get(refused.headers["location"]).text
    assert "Nothing was changed: reason: say why these examples are rejected" in page
    assert "Nothing was changed" not in client.get(refused.headers["location"]).text
    unknown = client.post(
        "/review/queue/bulk",
        data={"csrf_token": token, "queue_dataset": dataset.name, "action": "assign",
              "annotators": "nobody-by-that-name"},
        follow_redirects=False,
    )  # fmt: skip
    assert "nobody-by-that-name" in client.get(unknown.headers["location"]).text
    assert _statuses(session, examples) == ["candidate"] * len(examples)


def test_the_pick_list_comes_back_with_its_filter_after_a_bulk_action(
    client: TestClient, session: Session
) -> None:
    dataset, _ = _scored(session, VALUES)
    collection = create_collection(session, unique("set"))
    token = sign_in(client, make_user(session, "lead"))
    done = client.post(
        f"/collections/{collection.name}/bulk",
        data={"csrf_token": token, "dataset": dataset.name, "score": "length:20..",
              "action": "set-category", "value": "long"},
        follow_redirects=False,
    )  # fmt: skip
    location = done.headers["location"]
    assert "pick_score=length%3A20.." in location and "bulk_matched=3" in location
    page = client.get(location).text
    assert f"/pool?dataset={dataset.name}&amp;score=length%3A20.." in page
