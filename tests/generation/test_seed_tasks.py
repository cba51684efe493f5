"""Self-Instruct's 175 seed tasks ship inside the package: `sift generate self-instruct` with no
`--from` finds them wherever Sift is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

import app
from app.datasets.service import get_dataset
from app.entrypoints.cli import cli
from app.generation.inputs import SEED_DATASET, SEED_TASKS
from app.models import Example
from app.platform.db import transaction
from tests.generation.conftest import point_default_at
from tests.llm_server import LLMServer


def test_the_seed_tasks_are_package_data_and_the_original_bytes(data_dir: Path) -> None:
    assert SEED_TASKS.is_relative_to(Path(app.__file__).parent)
    assert SEED_TASKS.read_bytes() == (data_dir / "alpaca" / "seed_tasks.jsonl").read_bytes()
    assert "Apache License 2.0" in (SEED_TASKS.parent / "NOTICE.md").read_text()


def test_generate_with_no_from_starts_from_the_shipped_seed_tasks(
    embedded: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing beside the working directory is read
    with LLMServer() as llm:
        point_default_at(llm, monkeypatch)
        shown = CliRunner().invoke(
            cli, ["generate", "self-instruct", "--into", "grown", "--n", "20", "--estimate"]
        )
        assert shown.exit_code == 0, shown.output
        assert "calls, up to $" in shown.output and llm.stats()["total"] == 0
    with transaction() as session:
        seeds = get_dataset(session, SEED_DATASET)
        count = session.scalar(select(func.count()).where(Example.dataset_id == seeds.id))
    assert count == 175
