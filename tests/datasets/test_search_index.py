"""A large import leaves the full-text column to a job: the examples are there at once, and
findable by a text search once the job has run (twice is harmless); small imports and edits are
findable at once, through the trigger."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from app.datasets.importer import import_file
from app.datasets.search_index import (
    plan_search_chunks,
    start_search_index_job,
    unsearchable_count,
)
from app.datasets.service import ExampleFilter, list_examples, update_example
from app.entrypoints.domains import load_every_job_kind
from app.models import Dataset, Example, Job
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.jobs.runner import execute_job
from tests.factories import alpaca_record, make_dataset, write_json

load_every_job_kind()


def _found(dataset_id: int, words: str) -> int:
    with transaction() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        rows, _ = list_examples(session, dataset, ExampleFilter(q=words), None, 500)
        return len(rows)


def _import(tmp_path: Path, n: int) -> tuple[int, int | None]:
    path = write_json(tmp_path / "pool.json", [alpaca_record(i) for i in range(n)])
    with transaction() as session:
        dataset = make_dataset(session)
        summary = import_file(session, dataset, path)
        assert summary.new == n
        return dataset.id, summary.search_job


def test_a_large_import_is_findable_once_its_search_job_ran(
    committed: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIFT_IMPORT_DEFER_SEARCH_MB", "0")
    get_settings.cache_clear()
    dataset_id, job_id = _import(tmp_path, 12)
    assert job_id is not None
    assert _found(dataset_id, "number") == 0
    with transaction() as session:
        assert unsearchable_count(session, dataset_id) == 12
        ids = session.scalars(
            select(Example.id).where(Example.dataset_id == dataset_id).order_by(Example.id)
        ).all()
        assert plan_search_chunks(session, dataset_id, size=5) == (
            12,
            [
                {"lo": ids[0], "hi": ids[4], "size": 5},
                {"lo": ids[5], "hi": ids[9], "size": 5},
                {"lo": ids[10], "hi": ids[11], "size": 2},
            ],
        )
    assert execute_job(job_id, inline=True) == "succeeded"
    assert _found(dataset_id, "number") == 12
    assert _found(dataset_id, "number 7") == 1
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.counts["indexed"] == 12
        assert unsearchable_count(session, dataset_id) == 0
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        again = start_search_index_job(session, dataset).id
    assert execute_job(again, inline=True) == "succeeded"  # nothing left to fill
    assert _found(dataset_id, "number") == 12


def test_a_small_import_and_an_edit_are_findable_at_once(committed: Engine, tmp_path: Path) -> None:
    dataset_id, job_id = _import(tmp_path, 3)
    assert job_id is None
    assert _found(dataset_id, "number 2") == 1
    with transaction() as session:
        example = session.scalars(
            select(Example).where(Example.dataset_id == dataset_id).order_by(Example.id)
        ).first()
        assert example is not None
        update_example(session, example.id, example.version, {"output": "A zeppelin."}, None)
    assert _found(dataset_id, "zeppelin") == 1
    assert _found(dataset_id, "number 0") == 1  # the instruction still says it
    assert _found(dataset_id, "is 0") == 0  # the old answer's words are gone
