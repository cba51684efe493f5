"""The import job deletes its uploaded file once the import is over, and never a file named on
the server's own disk (finding 5 of the hardening issue: uploads were never deleted)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from app.datasets.service import create_dataset, save_upload, start_import_job
from app.entrypoints.domains import load_every_job_kind
from app.models import Job
from app.platform.db import transaction
from app.platform.jobs.runner import execute_job
from tests.factories import alpaca_record, unique, write_json

load_every_job_kind()


def _import(path: Path) -> tuple[str, Job]:
    with transaction() as session:
        dataset = create_dataset(session, unique("uploads"))
        job_id = start_import_job(session, dataset, path).id
    state = execute_job(job_id)
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
    return state, job


def _upload(records: list[Any]) -> Path:
    return save_upload(io.BytesIO(json.dumps(records).encode()), "data.json")


def test_an_upload_is_deleted_once_imported(committed: Engine) -> None:
    path = _upload([alpaca_record(i) for i in range(3)])
    assert path.is_file()
    state, job = _import(path)
    assert state == "succeeded" and job.counts["new"] == 3
    assert not path.exists()


def test_a_failed_upload_is_deleted_once_its_failure_is_written(committed: Engine) -> None:
    path = _upload([alpaca_record(1), {"instruction": "no answer"}])
    state, job = _import(path)
    assert state == "failed" and "field 'output' is missing" in (job.error or "")
    assert not path.exists()


def test_a_file_on_the_servers_disk_is_kept(committed: Engine, tmp_path: Path) -> None:
    path = write_json(tmp_path / "mine.json", [alpaca_record(1)])
    state, _ = _import(path)
    assert state == "succeeded" and path.is_file()
