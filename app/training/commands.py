"""`sift train`: start a fine-tune run on a snapshot, and follow it with --wait."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.platform.cli.console import fail, out, user_errors
from app.platform.cli.jobs import job_transaction, run_job
from app.platform.cli.models import prepare_local_model

commands = typer.Typer()


def _overrides(values: list[str]) -> dict[str, Any]:
    """--set NAME=VALUE pairs (VALUE as typed; the presets' schema converts it)."""
    pairs: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--set {item!r}: write NAME=VALUE, e.g. --set learning_rate=2e-5")
        pairs[name.strip().replace("-", "_")] = value.strip()
    return pairs


@commands.command("train")
def train(
    snapshot: Annotated[int, typer.Option("--snapshot", help="the snapshot id to train on")],
    base_model: Annotated[
        Path, typer.Option("--base-model", help="a local model folder or .gguf file")
    ],
    preset: Annotated[str, typer.Option(help="lima, alpaca or custom")] = "alpaca",
    method: Annotated[str | None, typer.Option(help="lora or full")] = None,
    template: Annotated[
        str | None, typer.Option(help="auto (the model's own), alpaca, vicuna")
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps")] = None,
    packing: Annotated[bool | None, typer.Option("--packing/--no-packing")] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="any hyper-parameter: NAME=VALUE")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the run until it ends")] = False,
) -> None:
    """Fine-tune a base model on a snapshot. The same snapshot, model and config launched again
    gives the same run back."""
    from app.training import service
    from app.training.presets import build_params

    overrides = _overrides(settings or []) | {
        "method": method, "template": template, "max_steps": max_steps, "packing": packing,
    }  # fmt: skip
    with user_errors():
        params = build_params(preset, **overrides)
    prepare_local_model(base_model)
    with job_transaction() as session:
        run, created = service.create_run(session, snapshot, str(base_model), params)
        run_id, job_id, state = run.id, run.job_id, service.run_state(session, run)
    assert job_id is not None
    if not created:
        out.print(f"training run {run_id} exists already ({state})")
        if state != "queued":
            return  # done, running elsewhere, or waiting for `resume`: nothing to start
    else:
        out.print(
            f"training run {run_id} (job {job_id}); the studio shows it at /training/{run_id}"
        )
    run_job(job_id, f"training run {run_id}", wait)
