"""`sift train`: a run from the command line, once, however often it is launched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from app.entrypoints.cli import cli
from app.models import TrainingRun
from app.platform.db import transaction
from tests.training.conftest import make_snapshot


def test_sift_train_runs_once_and_reports(
    embedded: Engine, records: list[dict[str, Any]], base_model: Path, tmp_path: Path
) -> None:
    with transaction() as session:
        snapshot_id = make_snapshot(session, records, tmp_path).id
    args = ["train", "--snapshot", str(snapshot_id), "--base-model", str(base_model),
            "--template", "alpaca", "--max-steps", "2", "--set", "micro_batch_size=4",
            "--set", "batch_size=4", "--wait"]  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "succeeded" in first.output and "steps 2" in first.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "exists already (succeeded)" in again.output
    with transaction() as session:
        assert session.query(TrainingRun).count() == 1
    bad = runner.invoke(cli, [*args, "--set", "learning_rate"])
    assert bad.exit_code == 1 and "NAME=VALUE" in bad.output
    missing = runner.invoke(cli, ["train", "--snapshot", "999", "--base-model", str(base_model)])
    assert missing.exit_code == 1 and "no snapshot 999" in missing.output
