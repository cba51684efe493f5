"""Selection recipes over a scored pool: what each method picks, previews, saved recipes, and
running one into a collection as a job."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.collections.service import create_collection, item_ids
from app.entrypoints.domains import load_every_job_kind
from app.models import Collection, Dataset, Embedding, Example, Job
from app.platform.db import transaction
from app.platform.errors import Conflict, InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from app.selection import service
from app.selection.service import SelectionSpec
from tests.factories import make_dataset, make_example

load_every_job_kind()


def _pool(session: Session, values: list[float], sources: list[str] | None = None) -> Dataset:
    """A dataset whose examples have these `length` scores (the scorer is only a label here)."""
    dataset = make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    rows = []
    for i, value in enumerate(values):
        source = sources[i] if sources else "alpaca"
        example = make_example(session, dataset, i, source=source)
        rows.append(
            {"content_hash": example.content_hash, "scorer_id": scorer.id, "value": value,
             "state": "ok", "raw": None, "details": {}}
        )  # fmt: skip
    upsert_scores(session, rows)
    return dataset


def _ids(session: Session, dataset: Dataset) -> list[int]:
    query = select(Example.id).where(Example.dataset_id == dataset.id).order_by(Example.id)
    return list(session.scalars(query))


def test_threshold_keeps_what_passes_best_first(session: Session) -> None:
    dataset = _pool(session, [4.0, 5.0, 3.0, 4.5, 4.5])
    ids = _ids(session, dataset)
    spec = SelectionSpec(dataset.name, "threshold", filters=["length>=4.5"], scorer="length")
    assert service.select_ids(session, spec) == [ids[1], ids[3], ids[4]]  # ties keep pool order
    capped = SelectionSpec(dataset.name, "threshold", budget=2, filters=["length>=4"])
    assert service.select_ids(session, capped) == [ids[0], ids[1]]


def test_random_is_seeded(session: Session) -> None:
    dataset = _pool(session, [1.0] * 20)
    spec = SelectionSpec(dataset.name, "random", budget=5, seed=7)
    first = service.select_ids(session, spec)
    assert first == service.select_ids(session, spec) and len(set(first)) == 5
    other = service.select_ids(session, SelectionSpec(dataset.name, "random", budget=5, seed=8))
    assert other != first


def test_lima_quota_spreads_across_sources(session: Session) -> None:
    sources = ["big"] * 27 + ["small"] * 1 + ["mid"] * 8
    dataset = _pool(session, [float(i) for i in range(36)], sources)
    spec = SelectionSpec(dataset.name, "lima-quota", budget=9, scorer="length", tau=3.0)
    picked = service.select_ids(session, spec)
    by_source = {}
    for example in session.scalars(select(Example).where(Example.id.in_(picked))):
        by_source[example.source] = by_source.get(example.source, 0) + 1
    # n^(1/3): 27 -> 3, 8 -> 2, 1 -> 1: a 9-budget split 4.5 / 3 / 1.5 rounds to these.
    assert sum(by_source.values()) == 9 and by_source["small"] == 1
    assert by_source["big"] > by_source["mid"] > 1
    assert picked == service.select_ids(session, spec)


def test_deita_picks_best_first_and_skips_near_duplicates(session: Session) -> None:
    from app.platform.vectors.models import DEFAULT_MODEL

    dataset = _pool(session, [5.0, 4.0, 3.0, 2.0])
    ids = _ids(session, dataset)
    near = np.array([1.0, 0.05, 0.0], dtype=np.float32)
    vectors = [[1, 0, 0], near / np.linalg.norm(near), [0, 1, 0], [0, 0, 1]]
    for example_id, vector in zip(ids, vectors, strict=True):
        example = session.get(Example, example_id)
        assert example is not None
        session.add(
            Embedding(
                content_hash=example.content_hash,
                model=DEFAULT_MODEL,
                dim=3,
                vector=np.asarray(vector, dtype=np.float32).tobytes(),
            )
        )
    session.flush()
    spec = SelectionSpec(dataset.name, "deita", budget=3, scorer="length", threshold=0.9)
    assert service.select_ids(session, spec) == [ids[0], ids[2], ids[3]]
    with pytest.raises(InvalidInput, match="sift embed"):
        service.select_ids(
            session,
            SelectionSpec(
                dataset.name, "deita", budget=3, scorer="length", embedding_model="other"
            ),
        )


def test_preview_writes_nothing_and_describes_before_and_after(session: Session) -> None:
    dataset = _pool(session, [1.0, 2.0, 3.0, 4.0], ["a", "a", "b", "b"])
    spec = SelectionSpec(dataset.name, "threshold", filters=["length>=3"])
    shown = service.preview(session, spec)
    assert (shown["pool"], shown["selected"]) == (2, 2)
    assert shown["groups_after"] == {"b": 2}
    assert shown["scorer"] == "length" and shown["scores_after"]["mean"] == 3.5
    everything = service.preview(session, SelectionSpec(dataset.name, "random", budget=3))
    assert everything["pool"] == 4 and everything["selected"] == 3


def test_specs_are_checked_and_saved_recipes_do_not_change(session: Session) -> None:
    dataset = _pool(session, [1.0])
    with pytest.raises(InvalidInput, match="method"):
        SelectionSpec(dataset.name, "best").check()
    with pytest.raises(InvalidInput, match="budget"):
        SelectionSpec(dataset.name, "random").check()
    spec = SelectionSpec(dataset.name, "random", budget=1)
    saved = service.save_selection(session, "baseline", spec)
    assert service.save_selection(session, "baseline", spec).id == saved.id
    assert service.get_selection(session, "baseline") == spec
    with pytest.raises(Conflict, match="other settings"):
        service.save_selection(session, "baseline", SelectionSpec(dataset.name, "random", budget=2))


def test_a_select_job_fills_the_collection_up_to_its_target(committed: Engine) -> None:
    with transaction() as session:
        dataset = _pool(session, [float(i) for i in range(10)])
        name = dataset.name
        collection = create_collection(session, "lima-5", target_size=5)
        spec = SelectionSpec(name, "threshold", filters=["length>=2"], scorer="length")
        run_jobs_here(session)
        job_id = service.start_select_job(session, collection, spec, name="best").id
    assert execute_job(job_id) == "succeeded"
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.counts == {"selected": 8, "added": 5, "already_in": 0, "over_target": 3}
        collection = session.scalar(select(Collection).where(Collection.name == "lima-5"))
        assert collection is not None and len(item_ids(session, collection)) == 5
        assert collection.recipes[0]["name"] == "best"
        run_jobs_here(session)
        again = service.start_select_job(session, collection, spec).id
    assert execute_job(again) == "succeeded"  # running it twice adds nothing
    with transaction() as session:
        job = session.get(Job, again)
        assert job is not None and job.counts["added"] == 0
