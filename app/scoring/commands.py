"""`sift score`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.platform.cli.jobs import launch
from app.platform.cli.models import prepare_local_model

commands = typer.Typer()


@commands.command("score")
def score(
    dataset: Annotated[str, typer.Option("--dataset")],
    scorer: Annotated[
        str,
        typer.Option(
            "--scorer", help="lima, length, alpagasus, deita-…, reward, ifd, ifd-ppl or yours"
        ),
    ],
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="LLM endpoint name (default: default); for reward, one that serves a reward "
            "model the NVIDIA NIM way",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="a local model folder or .gguf file: Deita scorers, ifd and ifd-ppl (causal "
            "LM); a folder for reward (sequence classification)",
        ),
    ] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="stop at this many USD")] = None,
    batch: Annotated[
        bool,
        typer.Option("--batch", help="through the OpenAI Batch API: half the price, within 24 h"),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Score every example of a dataset that has no score from this scorer yet."""
    from app.datasets.service import get_dataset
    from app.scoring.service import start_score_job

    prepare_local_model(model)
    launch(
        lambda session: start_score_job(
            session,
            get_dataset(session, dataset),
            scorer,
            endpoint=endpoint,
            model_path=model,
            budget_usd=budget,
            batch=batch,
        ),
        lambda job: f"score {dataset} with {job.params['scorer']}",
        wait,
    )
