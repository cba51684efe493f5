"""`sift generate`: the estimate first, then the job run here (embedded), its summary line."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from app.datasets.service import create_dataset, get_dataset
from app.entrypoints.cli import cli
from app.models import Example
from app.platform.db import transaction
from tests.factories import make_example
from tests.generation.conftest import point_default_at
from tests.llm_server import LLMServer


def test_evol_quality_from_the_command_line(
    embedded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    with LLMServer() as llm:
        point_default_at(llm, monkeypatch)
        llm.script(r"#Given Response#:\n(.*)\n#Rewritten Response#:\n\Z", r"\1 Indeed.")
        with transaction() as session:
            source = create_dataset(session, "answers")
            make_example(session, source, 1, {"instruction": "Why is the sky blue?"})
        args = ["generate", "evol-quality", "--from", "answers", "--into", "better"]
        shown = runner.invoke(cli, [*args, "--rounds", "2", "--estimate"])
        assert shown.exit_code == 0, shown.output
        assert "about 2 calls, up to $" in shown.output and llm.stats()["total"] == 0
        done = runner.invoke(cli, [*args, "--rounds", "2", "--budget", "1", "--wait"])
        assert done.exit_code == 0, done.output
        assert "succeeded: generated 2" in done.output
        missing = runner.invoke(cli, ["generate", "evol-instruct", "--from", "nope", "--into", "x"])
        assert missing.exit_code == 1 and "no dataset called 'nope'" in missing.output
    with transaction() as session:
        target = get_dataset(session, "better")
        outputs = session.scalars(
            select(Example.output).where(Example.dataset_id == target.id).order_by(Example.id)
        ).all()
    assert outputs == ["The number is 1. Indeed.", "The number is 1. Indeed. Indeed."]
