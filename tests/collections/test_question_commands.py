"""`sift collection question add|list|remove` (issue 13)."""

from __future__ import annotations

from sqlalchemy import Engine
from typer.testing import CliRunner

from app.collections.service import create_collection
from app.entrypoints.cli import cli
from app.platform.db import transaction
from tests.factories import unique


def test_a_lead_adds_lists_and_removes_questions_from_the_command_line(
    committed: Engine,
) -> None:
    with transaction() as session:
        name = create_collection(session, unique("set")).name
    runner = CliRunner()
    added = runner.invoke(cli, ["collection", "question", "add", name, "--key", "topic",
                                "--kind", "label", "--options", "code,math,[b]writing"])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "question topic (label) added: 1 code, 2 math, 3 [b]writing" in added.output
    rating = runner.invoke(cli, ["collection", "question", "add", name, "--key", "quality",
                                 "--kind", "rating", "--prompt", "How good?", "--required"])  # fmt: skip
    assert rating.exit_code == 0, rating.output
    listed = runner.invoke(cli, ["collection", "question", "list", name])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[1].split()[:2] == ["topic", "label"] and "[b]writing" in lines[1]
    assert lines[2].split()[:3] == ["quality", "rating", "yes"] and "How good?" in lines[2]
    # A user's mistake is one line on stderr and a non-zero exit, never a traceback.
    clash = runner.invoke(cli, ["collection", "question", "add", name, "--key", "topic",
                                "--kind", "text"])  # fmt: skip
    assert clash.exit_code == 1 and "already has a question 'topic'" in clash.output
    bad = runner.invoke(cli, ["collection", "question", "add", name, "--key", "x",
                              "--kind", "stars"])  # fmt: skip
    assert bad.exit_code == 1 and "choose one of rating, label, labels, text, ranking" in bad.output
    assert "Traceback" not in bad.output
    removed = runner.invoke(cli, ["collection", "question", "remove", name, "--key", "topic"])
    assert removed.exit_code == 0 and "removed with its 0 answers" in removed.output
    assert "topic" not in runner.invoke(cli, ["collection", "question", "list", name]).output
    missing = runner.invoke(cli, ["collection", "question", "list", "nope"])
    assert missing.exit_code == 1 and "no collection called 'nope'" in missing.output
