"""`sift train`: a run from the command line, once, however often it is launched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import PeftModel
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.entrypoints.cli import cli
from app.models import TrainingRun
from app.platform.db import transaction
from app.training.service import load_trained_model
from tests.real_models import RealModel, reuse_conversion
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


def test_sift_train_takes_a_gguf_base_model(
    embedded: Engine, records: list[dict[str, Any]], smollm2: RealModel, tmp_path: Path
) -> None:
    reuse_conversion(smollm2)  # this test's data folder finds the session's conversion
    with transaction() as session:
        snapshot_id = make_snapshot(session, records, tmp_path).id
    args = ["train", "--snapshot", str(snapshot_id), "--base-model", str(smollm2.gguf),
            "--method", "lora", "--max-steps", "2", "--set", "micro_batch_size=4",
            "--set", "batch_size=4", "--set", "max_seq_length=128", "--wait"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"{smollm2.gguf.name}: using its converted model folder" in result.output
    assert "succeeded" in result.output
    with transaction() as session:
        run = session.query(TrainingRun).one()
        # The run names the file the user gave; the template is SmolLM2's own.
        assert run.base_model == str(smollm2.gguf) and run.params["template"] == "auto"
        model, tokenizer = load_trained_model(run)
    assert isinstance(model, PeftModel)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi."}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"nothing")
    bad = CliRunner().invoke(cli, [*args[:3], "--base-model", str(broken)])
    assert bad.exit_code == 1 and f"{broken} is not a GGUF file" in bad.output
