"""The lead's collection pages: list and create, the dashboard and its lazy fragments, recipes
with a preview, adding and removing by hand, snapshots; roles, CSRF and escaping."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.collections import service
from app.collections.tasks import run_select
from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    Example,
    Job,
    ReviewDecision,
    Selection,
    Snapshot,
    User,
)
from app.models.base import utcnow
from app.platform.jobs.progress import Progress
from app.platform.vectors.store import store_embeddings
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from tests.factories import make_dataset, make_example, make_user, unique
from tests.web.test_pages import HOSTILE, csrf_from, sign_in


@pytest.fixture
def lead(session: Session) -> User:
    return make_user(session, "lead")


@pytest.fixture
def annotator(session: Session) -> User:
    return make_user(session, "annotator")


def make_pool(session: Session, n: int = 8) -> tuple[Dataset, list[Example]]:
    """A dataset whose examples alternate between two sources."""
    dataset = make_dataset(session)
    examples = [
        make_example(
            session,
            dataset,
            i,
            source="wikihow" if i % 2 else "stackexchange",
            category="howto" if i % 2 else "science",
        )
        for i in range(n)
    ]
    return dataset, examples


def make_collection(session: Session, lead: User, **options: Any) -> Collection:
    """An empty collection started by the lead."""
    return service.create_collection(session, unique("set"), user=lead, **options)


def score(session: Session, examples: list[Example], values: list[float]) -> None:
    """Store `lima` scores (range 0-1) for the examples."""
    scorer = get_or_create_scorer(session, choose_scorer(session, "lima"))
    upsert_scores(
        session,
        [
            {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": v,
             "state": "ok", "raw": None, "details": {}}
            for e, v in zip(examples, values, strict=True)
        ],
    )  # fmt: skip


def decide(session: Session, example: Example, user: User, collection: Collection, action: str,
           undone: bool = False) -> None:  # fmt: skip
    """A review decision in the collection's queue, with the status it set."""
    session.add(
        ReviewDecision(
            example_id=example.id,
            user_id=user.id,
            collection_id=collection.id,
            action=action,
            status_before=example.status,
            undone_at=utcnow() if undone else None,
        )
    )
    if not undone and action in ("accept", "reject"):
        example.status = "accepted" if action == "accept" else "rejected"
    session.flush()


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# ---------------------------------------------------------------- the list


def test_a_lead_lists_and_creates_collections(
    client: TestClient, session: Session, lead: User
) -> None:
    token = sign_in(client, lead)
    assert client.get("/collections").status_code == 200
    name = unique("lima")
    response = client.post(
        "/collections",
        data={
            "csrf_token": token,
            "name": name,
            "target_size": "3",
            "source_quotas": "wikihow=2\n\nstackexchange = 1",
            "category_quotas": "",
            "description": "the first thousand",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/collections/{name}"
    collection = service.get_collection(session, name)
    assert collection.quotas == {"source": {"wikihow": 2, "stackexchange": 1}}
    assert collection.created_by_id == lead.id
    listing = client.get("/collections").text
    assert name in listing and "the first thousand" in listing
    assert 'value="0" max="3"' in listing  # the size against the target, as a bar

    bad_line = client.post(
        "/collections",
        data={"csrf_token": token, "name": unique("x"), "source_quotas": "wikihow: 2"},
    )
    assert bad_line.status_code == 422
    assert "source quotas, line 1: &#39;wikihow: 2&#39; is not GROUP=NUMBER" in bad_line.text
    taken = client.post("/collections", data={"csrf_token": token, "name": name})
    assert taken.status_code == 409 and "exists already" in taken.text
    too_big = client.post(
        "/collections",
        data={"csrf_token": token, "name": unique("x"), "target_size": "1",
              "source_quotas": "a=2"},
    )  # fmt: skip
    assert too_big.status_code == 422 and "more than the target size" in too_big.text


# ---------------------------------------------------------------- the dashboard


def test_the_dashboard_shows_quotas_review_and_agreement(
    client: TestClient, session: Session, lead: User, annotator: User
) -> None:
    dataset, examples = make_pool(session)
    collection = make_collection(
        session, lead, target_size=6, quotas={"source": {"wikihow": 3, "stackexchange": 2}}
    )
    service.add_items(session, collection, [e.id for e in examples[:3]], user=lead, reason="ok")
    # Quotas cannot be passed by adding; a lead lowering one afterwards can leave it over.
    collection.quotas = {"source": {"wikihow": 3, "stackexchange": 1}}
    score(session, examples[:3], [0.05, 0.95, 1.0])
    decide(session, examples[0], annotator, collection, "reject")
    decide(session, examples[1], annotator, collection, "accept")
    decide(session, examples[2], annotator, collection, "accept")
    decide(session, examples[2], lead, collection, "skip")
    decide(session, examples[0], lead, collection, "accept", undone=True)
    sign_in(client, lead)

    page = client.get(f"/collections/{collection.name}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "3 of 6 examples" in html
    assert 'value="3" max="6"' in html
    assert re.search(r'<tr class="over">\s*<td class="group">stackexchange</td>', html)
    assert "over quota" in html
    assert 'value="1" max="3"' in html  # wikihow holds 1 of 3
    assert f"/review/queue?collection={collection.name}" in html
    assert f'href="/datasets/{dataset.name}"' in html  # the pool, from the items
    # Review: per annotator by action, the undone decision not counted.
    row = re.search(rf"<td>{annotator.name}</td>(.*?)</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">(?:<b>)?(\d+)', row.group(1))
    assert cells == ["2", "1", "0", "0", "0", "3"]  # accept reject edit write skip total
    lead_row = re.search(rf"<td>{lead.name}</td>(.*?)</tr>", html, re.S)
    assert lead_row is not None
    assert re.findall(r'<td class="num">(?:<b>)?(\d+)', lead_row.group(1))[-1] == "1"
    # Agreement: lima bands of 0.1; 0.05 was rejected, 0.95 and 1.0 (top edge) accepted.
    assert re.search(r"0 to 0\.1</td>\s*<td class=\"num\">0</td>\s*<td class=\"num\">1</td>", html)
    assert re.search(r"0\.9 to 1</td>\s*<td class=\"num\">2</td>\s*<td class=\"num\">0</td>", html)
    assert "100%" in html and "0%" in html
    # The heavy parts load lazily.
    for part in ("scores", "map", "pool"):
        assert f'hx-get="/collections/{collection.name}/{part}" hx-trigger="load"' in html


def test_score_fragment_draws_pool_against_collection(
    client: TestClient, session: Session, lead: User
) -> None:
    _, examples = make_pool(session, 8)
    score(session, examples, [0.0, 0.1, 0.2, 0.3, 0.5, 0.5, 1.0, 1.0])
    collection = make_collection(session, lead, target_size=8)
    service.add_items(session, collection, [examples[6].id, examples[7].id], user=lead)
    sign_in(client, lead)
    fragment = client.get(f"/collections/{collection.name}/scores", headers={"hx-request": "true"})
    assert fragment.status_code == 200
    html = fragment.text
    assert "<html" not in html and "<b>lima</b>" in html
    assert html.count('<rect class="pool"') == html.count('<rect class="selected"') == 20
    assert "pool 8, mean 0.45" in html and "collection 2, mean 1" in html
    # The top bin holds 2 of 8 in the pool (25%) and both of the collection (100%).
    assert "0.95 to 1: pool 2 (25.0%), collection 2 (100.0%)" in html
    assert "0 to 0.05: pool 1 (12.5%), collection 0 (0.0%)" in html


def test_an_empty_collection_and_an_empty_pool_render(
    client: TestClient, session: Session, lead: User
) -> None:
    collection = make_collection(session, lead)
    sign_in(client, lead)
    base = f"/collections/{collection.name}"
    assert "The collection is empty." in client.get(base).text
    assert "No scores yet" in client.get(f"{base}/scores").text
    assert "No embeddings yet" in client.get(f"{base}/map").text
    assert client.get(f"{base}/jobs").status_code == 200
    assert client.get(f"{base}/pool").status_code == 200


def test_the_map_places_pool_and_collection_on_two_components(
    client: TestClient, session: Session, lead: User
) -> None:
    _, examples = make_pool(session, 12)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((12, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store_embeddings(session, [e.content_hash for e in examples], "test-model", vectors)
    collection = make_collection(session, lead, target_size=12)
    service.add_items(session, collection, [e.id for e in examples[:4]], user=lead)
    sign_in(client, lead)
    html = client.get(f"/collections/{collection.name}/map").text
    assert html.count('<circle class="pool"') == 8
    assert html.count('<circle class="selected"') == 4
    assert f'href="/examples/{examples[0].id}"' in html
    assert "test-model" in html


# ---------------------------------------------------------------- recipes


def recipe_form(token: str, dataset: Dataset, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "dataset": dataset.name,
        "method": "random",
        "budget": "3",
        "seed": "7",
        "threshold": "0.9",
        "tau": "3",
        "group_by": "source",
        **fields,
    }


def test_a_preview_writes_nothing(client: TestClient, session: Session, lead: User) -> None:
    dataset, examples = make_pool(session, 8)
    score(session, examples, [i / 8 for i in range(8)])
    collection = make_collection(session, lead, target_size=5)
    token = sign_in(client, lead)
    before = [count(session, m) for m in (CollectionItem, Job, Selection)]
    form = recipe_form(token, dataset, method="threshold", budget="", filters="lima>=0.5",
                       scorer="lima", name="saved-by-preview")  # fmt: skip
    response = client.post(
        f"/collections/{collection.name}/preview", data=form, headers={"hx-request": "true"}
    )
    assert response.status_code == 200, response.text
    html = response.text
    assert "<html" not in html
    assert "<b>4</b> of 4 in the filtered pool" in html
    assert "Nothing has been written." in html
    assert re.search(r"<td>wikihow</td><td class=\"num\">2</td><td class=\"num\">2</td>", html)
    assert "lima before and after" in html and html.count("<svg") == 2
    assert [count(session, m) for m in (CollectionItem, Job, Selection)] == before
    wrong = client.post(
        f"/collections/{collection.name}/preview",
        data=recipe_form(token, dataset, budget="many"),
        headers={"hx-request": "true"},
    )
    assert wrong.status_code == 200  # htmx swaps only 2xx: the error is the fragment
    assert "budget: &#39;many&#39; is not a number" in wrong.text
    no_budget = client.post(
        f"/collections/{collection.name}/preview", data=recipe_form(token, dataset, budget="")
    )
    assert "budget: random needs a budget" in no_budget.text


def test_running_a_recipe_starts_a_job_that_fills_the_collection(
    client: TestClient, session: Session, lead: User
) -> None:
    dataset, _ = make_pool(session, 8)
    collection = make_collection(session, lead, target_size=5)
    token = sign_in(client, lead)
    response = client.post(
        f"/collections/{collection.name}/select",
        data=recipe_form(token, dataset, name="random-three"),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/collections/{collection.name}#jobs"
    job = session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert job is not None and job.kind == "select"
    assert job.params["collection_id"] == collection.id and job.params["name"] == "random-three"
    assert job.params["spec"]["seed"] == 7 and job.created_by_id == lead.id
    jobs = client.get(f"/collections/{collection.name}/jobs", headers={"hx-request": "true"}).text
    assert f'<td class="num">{job.id}</td>' in jobs
    assert 'hx-trigger="every 2s"' in jobs  # polls while the job can move
    assert dataset.name in jobs

    run_select(session, job, Progress(job.id, durable=False))
    assert service.collection_size(session, collection) == 3
    job.state = "succeeded"
    session.flush()
    jobs = client.get(f"/collections/{collection.name}/jobs").text
    assert "every 2s" not in jobs
    items = client.get(f"/collections/{collection.name}").text
    assert items.count("random-three") >= 3  # the recipe that added each item

    bad = client.post(
        f"/collections/{collection.name}/select",
        data=recipe_form(token, dataset, method="best"),
    )
    assert bad.status_code == 422 and "method: one of" in bad.text


# ---------------------------------------------------------------- by hand


def test_adding_and_removing_by_hand(client: TestClient, session: Session, lead: User) -> None:
    dataset, examples = make_pool(session, 4)
    collection = make_collection(session, lead, target_size=2, quotas={"source": {"wikihow": 1}})
    token = sign_in(client, lead)
    base = f"/collections/{collection.name}"
    pick = client.get(f"{base}/pool", params={"dataset": dataset.name}).text
    assert pick.count(f'action="{base}/items/add"') == 4
    found = client.get(f"{base}/pool", params={"dataset": dataset.name, "q": "number 3."}).text
    assert found.count(f'action="{base}/items/add"') == 1
    chat = make_example(
        session, dataset, 99, instruction=None, input=None, output=None,
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "50%_off"}],
    )  # fmt: skip
    # Words: "%" and "_" separate them, and the last one may be half typed.
    for text, hits in (("50%_off", 1), ("50 of", 1), ("50%xoff", 0), ("numb", 4)):
        shown = client.get(f"{base}/pool", params={"dataset": dataset.name, "q": text}).text
        assert shown.count(f'action="{base}/items/add"') == hits, text
    session.delete(chat)

    added = client.post(
        f"{base}/items/add",
        data={"csrf_token": token, "example_id": str(examples[1].id), "reason": "clear and kind"},
        follow_redirects=False,
    )
    assert added.status_code == 303 and added.headers["location"] == f"{base}#items"
    page = client.get(base).text
    assert "clear and kind" in page and lead.name in page
    pick = client.get(f"{base}/pool", params={"dataset": dataset.name}).text
    assert pick.count(f'action="{base}/items/add"') == 3  # what is in is not offered again

    over_quota = client.post(
        f"{base}/items/add", data={"csrf_token": token, "example_id": str(examples[3].id)}
    )
    assert over_quota.status_code == 409 and "quota of &#39;wikihow&#39;" in over_quota.text
    client.post(f"{base}/items/add", data={"csrf_token": token, "example_id": str(examples[0].id)})
    full = client.post(
        f"{base}/items/add", data={"csrf_token": token, "example_id": str(examples[2].id)}
    )
    assert full.status_code == 409 and "room for 0" in full.text
    missing = client.post(f"{base}/items/add", data={"csrf_token": token, "example_id": "999999"})
    assert missing.status_code == 404 and "no example 999999" in missing.text

    removed = client.post(
        f"{base}/items/remove",
        data={"csrf_token": token, "example_id": str(examples[1].id)},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert service.item_ids(session, collection) == [examples[0].id]


def test_items_page_by_keyset(client: TestClient, session: Session, lead: User) -> None:
    _, examples = make_pool(session, 30)
    collection = make_collection(session, lead, target_size=30)
    service.add_items(session, collection, [e.id for e in examples], user=lead)
    sign_in(client, lead)
    base = f"/collections/{collection.name}"
    first = client.get(base).text
    link = re.search(r'hx-get="(/collections/[^"]+/items\?after=(\d+))"', first)
    assert link is not None
    second = client.get(link.group(1), headers={"hx-request": "true"})
    assert second.text.lstrip().startswith('<div id="collection-items">')
    shown = re.findall(r'<td class="num"><a href="/examples/(\d+)">', second.text)
    assert [int(i) for i in shown] == [e.id for e in examples[25:]]
    assert "Next page" not in second.text and "First page" in second.text
    plain = client.get(link.group(1), follow_redirects=False)  # no htmx: the whole dashboard
    assert plain.status_code == 303
    assert plain.headers["location"] == f"{base}?items_after={link.group(2)}#items"
    assert str(examples[29].id) in client.get(plain.headers["location"]).text


# ---------------------------------------------------------------- snapshots and guidelines


def test_freeze_compare_and_download(client: TestClient, session: Session, lead: User) -> None:
    _, examples = make_pool(session, 4)
    collection = make_collection(session, lead, target_size=4)
    service.add_items(session, collection, [e.id for e in examples[:2]], user=lead)
    token = sign_in(client, lead)
    base = f"/collections/{collection.name}"
    frozen = client.post(
        f"{base}/snapshots", data={"csrf_token": token, "note": "v1"}, follow_redirects=False
    )
    assert frozen.status_code == 303 and frozen.headers["location"] == f"{base}#snapshots"
    service.remove_items(session, collection, [examples[0].id])
    service.add_items(session, collection, [examples[2].id], user=lead)
    client.post(f"{base}/snapshots", data={"csrf_token": token, "note": "v2"})
    first, second = service.list_snapshots(session, collection)[::-1]
    page = client.get(base).text
    assert "v1" in page and "v2" in page
    assert f"{base}/snapshots/{second.id}/export?format=parquet" in page

    diff = client.get(
        f"{base}/compare", params={"old": first.id, "new": second.id},
        headers={"hx-request": "true"},
    ).text  # fmt: skip
    assert "<b>1</b> added, <b>1</b> removed, <b>0</b> edited" in diff
    assert f'<a href="/examples/{examples[2].id}">' in diff
    # Each listed example with its prompt, as the snapshot holding it froze it.
    assert "Say the number 2." in diff and "Say the number 0." in diff
    assert "<html" in client.get(f"{base}/compare?old={first.id}&new={second.id}").text

    jsonl = client.get(f"{base}/snapshots/{second.id}/export", params={"format": "jsonl"})
    assert jsonl.status_code == 200
    assert "attachment" in jsonl.headers["content-disposition"]
    hashes = [json.loads(line)["content_hash"] for line in jsonl.text.splitlines()]
    assert hashes == [examples[1].content_hash, examples[2].content_hash]
    alpaca = client.get(f"{base}/snapshots/{second.id}/export", params={"format": "alpaca"})
    assert [r["instruction"] for r in alpaca.json()] == ["Say the number 1.", "Say the number 2."]
    parquet = client.get(f"{base}/snapshots/{second.id}/export", params={"format": "parquet"})
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("content_hash").to_pylist() == hashes
    assert client.get(f"{base}/snapshots/{second.id}/export?format=yaml").status_code == 422

    other = make_collection(session, lead)
    elsewhere = f"/collections/{other.name}"
    assert client.get(f"{elsewhere}/snapshots/{second.id}/export").status_code == 404
    assert client.get(f"{elsewhere}/compare?old={first.id}&new={second.id}").status_code == 404
    assert client.get(f"{base}/snapshots/999999/export").status_code == 404
    empty = client.post(f"{elsewhere}/snapshots", data={"csrf_token": token})
    assert empty.status_code == 409 and "nothing to freeze" in empty.text
    assert count(session, Snapshot) == 2


def test_the_freeze_form_says_what_ships_and_can_take_accepted_only(
    client: TestClient, session: Session, lead: User
) -> None:
    _, examples = make_pool(session, 3)
    examples[0].status, examples[2].status = "accepted", "rejected"
    collection = make_collection(session, lead, target_size=3)
    service.add_items(session, collection, [e.id for e in examples], user=lead)
    token = sign_in(client, lead)
    base = f"/collections/{collection.name}"
    page = client.get(base).text
    preview = re.search(r'<p class="muted small freeze-preview">(.*?)</p>', page, re.S)
    assert preview is not None
    words = " ".join(re.sub(r"<[^>]+>", "", preview.group(1)).split())
    assert "takes the 1 accepted examples" in words and "the 1 unreviewed ones" in words
    assert "the 1 rejected ones are never frozen" in words
    client.post(f"{base}/snapshots", data={"csrf_token": token, "only_accepted": "true"})
    [snapshot] = service.list_snapshots(session, collection)
    assert snapshot.example_count == 1 and snapshot.only_accepted
    assert "accepted only; left out 1 rejected, 1 unreviewed" in client.get(base).text


def test_review_settings_disputes_and_agreement_on_the_dashboard(
    client: TestClient, session: Session, lead: User
) -> None:
    from app.models import ReviewAction
    from app.review import queue as queues
    from app.review import service as review

    _, examples = make_pool(session, 2)
    collection = make_collection(session, lead, target_size=2)
    service.add_items(session, collection, [e.id for e in examples], user=lead)
    token = sign_in(client, lead)
    base = f"/collections/{collection.name}"
    refused = client.post(f"{base}/review-settings", data={"csrf_token": token, "overlap": "0"})
    assert refused.status_code == 422 and "overlap" in refused.text
    saved = client.post(
        f"{base}/review-settings",
        data={"csrf_token": token, "overlap": "2", "consensus": "unanimous"},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and (collection.overlap, collection.consensus) == (
        2,
        "unanimous",
    )
    for person, action in ((make_user(session), "accept"), (make_user(session), "reject")):
        queue = queues.open_queue(session, collection=collection.name, user=person)
        while (example := queues.next_example(session, queue, person)) is not None:
            review.decide(session, person, example.id, ReviewAction(action),
                          version=example.version, reason="no", queue=queue)  # fmt: skip
    page = client.get(base).text
    assert "disputed <b>2</b>" in page and "status=disputed" in page
    assert "Krippendorff&#39;s alpha" in page or "Krippendorff's alpha" in page
    assert "Cohen&#39;s kappa" in page or "Cohen's kappa" in page
    disputed = client.get(f"/review/queue?collection={collection.name}&status=disputed")
    assert disputed.status_code == 200


def test_rename_and_delete_from_the_dashboard(
    client: TestClient, session: Session, lead: User
) -> None:
    collection = make_collection(session, lead)
    token = sign_in(client, lead)
    base = f"/collections/{collection.name}"
    new_name = unique("renamed")
    moved = client.post(
        f"{base}/rename", data={"csrf_token": token, "new_name": new_name}, follow_redirects=False
    )
    assert moved.status_code == 303 and moved.headers["location"].startswith(
        f"/collections/{new_name}"
    )
    base = f"/collections/{new_name}"
    wrong = client.post(f"{base}/delete", data={"csrf_token": token, "confirm": "nope"})
    assert wrong.status_code == 422 and "type the collection" in wrong.text
    gone = client.post(
        f"{base}/delete", data={"csrf_token": token, "confirm": new_name}, follow_redirects=False
    )
    assert gone.status_code == 303 and gone.headers["location"] == "/collections"
    assert client.get(base).status_code == 404


def test_guidelines_are_saved(client: TestClient, session: Session, lead: User) -> None:
    collection = make_collection(session, lead)
    token = sign_in(client, lead)
    text = "# Be kind\r\n\r\n- answer the question"
    response = client.post(
        f"/collections/{collection.name}/guidelines",
        data={"csrf_token": token, "guidelines": text},
        follow_redirects=False,
    )
    assert response.status_code == 303
    session.refresh(collection)
    assert collection.guidelines == "# Be kind\n\n- answer the question"
    page = client.get(f"/collections/{collection.name}").text
    assert "# Be kind" in page  # in the form as written
    assert "<h1>Be kind</h1>" in page and "<li>answer the question</li>" in page  # rendered


# ---------------------------------------------------------------- roles, CSRF, escaping


WRITES = ["", "/guidelines", "/preview", "/select", "/items/add", "/items/remove", "/snapshots"]


def test_annotators_are_refused_everything(
    client: TestClient, session: Session, annotator: User, lead: User
) -> None:
    collection = make_collection(session, lead)
    token = sign_in(client, annotator)
    base = f"/collections/{collection.name}"
    assert 'href="/collections"' not in client.get("/datasets").text
    for path in ("/collections", base, *(base + p for p in ("/scores", "/map", "/jobs", "/pool"))):
        assert client.get(path).status_code == 403, path
    assert client.get(f"{base}/snapshots/1/export").status_code == 403
    assert client.post("/collections", data={"csrf_token": token, "name": "x"}).status_code == 403
    for path in WRITES[1:]:
        assert client.post(base + path, data={"csrf_token": token}).status_code == 403, path


def test_every_write_needs_the_csrf_token(client: TestClient, session: Session, lead: User) -> None:
    dataset, examples = make_pool(session, 2)
    collection = make_collection(session, lead)
    service.add_items(session, collection, [examples[0].id], user=lead)
    sign_in(client, lead)
    base = f"/collections/{collection.name}"
    form = {"name": "x", "guidelines": "changed", "example_id": str(examples[1].id),
            "dataset": dataset.name, "method": "random", "budget": "1", "note": "n"}  # fmt: skip
    assert client.post("/collections", data=form).status_code == 403
    for path in WRITES[1:]:
        assert client.post(base + path, data=form).status_code == 403, path
    session.refresh(collection)
    assert collection.guidelines == "" and service.item_ids(session, collection) == [examples[0].id]
    assert count(session, Snapshot) == 0


def test_unknown_collections_answer_404(client: TestClient, lead: User) -> None:
    sign_in(client, lead)
    for path in ("", "/scores", "/map", "/jobs", "/pool", "/items"):
        assert client.get(f"/collections/nope-{unique('x')}{path}").status_code == 404


def test_user_text_is_escaped(
    client: TestClient, session: Session, lead: User, annotator: User
) -> None:
    hostile_name = '<img src=x onerror="window.__pwned=1"> {{7*7}}'  # names cannot hold "/"
    dataset = make_dataset(session, f"pool {hostile_name}")
    examples = [
        make_example(session, dataset, i, source=HOSTILE, category=HOSTILE,
                     instruction=HOSTILE if i == 0 else f"Say {i}")
        for i in range(3)
    ]  # fmt: skip
    collection = service.create_collection(
        session, f"set {hostile_name}", description=HOSTILE, guidelines=HOSTILE,
        quotas={"source": {HOSTILE: 2}}, target_size=3, user=lead,
    )  # fmt: skip
    service.add_items(session, collection, [examples[0].id], user=lead, reason=HOSTILE)
    score(session, examples, [0.2, 0.4, 0.6])
    decide(session, examples[0], annotator, collection, "accept")
    annotator.name = HOSTILE[:60]
    service.create_snapshot(session, collection, note=HOSTILE, user=lead)
    session.flush()
    sign_in(client, lead)
    base = "/collections/" + collection.name
    pages = [
        client.get("/collections"),
        client.get(base),
        client.get(f"{base}/scores"),
        client.get(f"{base}/pool", params={"dataset": dataset.name}),
    ]
    for page in pages:
        assert page.status_code == 200, page.text
        assert "<script>" not in page.text and "<img src=x" not in page.text
        assert " style=" not in page.text
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    dashboard = pages[1].text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt; {{7*7}}" in dashboard
    assert "&lt;img src=x onerror=" in dashboard
    assert "&lt;/script&gt; 49" not in dashboard  # the template expression is never evaluated
    assert "&lt;script&gt;" in pages[3].text
    token = csrf_from(dashboard)
    preview = client.post(
        f"{base}/preview",
        data={"csrf_token": token, "dataset": dataset.name, "method": "random", "budget": "2"},
    )
    assert "&lt;script&gt;" in preview.text and "<script>" not in preview.text
