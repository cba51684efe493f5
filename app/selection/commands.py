"""`sift embed`, `sift dedup` and `sift select`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.platform.cli.console import fail, out, user_errors
from app.platform.cli.jobs import launch
from app.platform.cli.models import prepare_local_model
from app.platform.db import transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.models import Job

commands = typer.Typer()


@commands.command("embed")
def embed(
    dataset: Annotated[str, typer.Option("--dataset")],
    model: Annotated[
        str | None,
        typer.Option(
            help="a local sentence-transformers or causal LM folder, or a causal LM .gguf file "
            "(default: MiniLM)"
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Embed every example of a dataset that has no embedding from this model yet."""
    from app.datasets.service import get_dataset
    from app.selection.embed_job import start_embed_job

    prepare_local_model(model)
    launch(
        lambda session: start_embed_job(session, get_dataset(session, dataset), model),
        f"embed {dataset}",
        wait,
    )


@commands.command("dedup")
def dedup(
    dataset: Annotated[str, typer.Option("--dataset")],
    method: Annotated[str, typer.Option(help="exact|minhash|embedding")] = "minhash",
    threshold: Annotated[
        float | None, typer.Option(help="minhash: Jaccard; embedding: cosine")
    ] = None,
    model: Annotated[str | None, typer.Option(help="embedding: the embedding model")] = None,
    prefer: Annotated[
        str | None, typer.Option(help="keep the member best on this scorer as representative")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Find near-duplicate clusters in a dataset (they replace that method's earlier ones)."""
    from app.datasets.service import get_dataset
    from app.selection.dedup import start_dedup_job

    launch(
        lambda session: start_dedup_job(
            session,
            get_dataset(session, dataset),
            method,
            threshold=threshold,
            model=model,
            prefer=prefer,
        ),
        f"dedup {dataset} ({method})",
        wait,
    )


def _quotas(pairs: list[str]) -> dict[str, int] | None:
    quotas = {}
    for pair in pairs:
        group, sep, count = pair.rpartition("=")
        if not sep or not group or not count.isdigit():
            fail(f"--quota takes GROUP=N, got {pair!r}")
        quotas[group] = int(count)
    return quotas or None


@commands.command("select")
def select_(
    dataset: Annotated[str, typer.Option("--dataset")],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="threshold|deita|lima-quota|random|longest|k-center|facility-location",
        ),
    ],
    into: Annotated[str, typer.Option("--into", help="the collection (created if new)")],
    budget: Annotated[int | None, typer.Option("--budget", help="how many to pick")] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="e.g. alpagasus>=4.5 (repeatable)")
    ] = None,
    scorer: Annotated[
        str | None,
        typer.Option(
            help="sort by (deita: default deita-evol; lima-quota: best first); k-center: the "
            "first pick when the collection is empty; facility-location: the quality term"
        ),
    ] = None,
    threshold: Annotated[float, typer.Option(help="deita: largest cosine to anything kept")] = 0.9,
    embedding_model: Annotated[str | None, typer.Option("--embedding-model")] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="lima-quota: source|category")
    ] = "source",
    tau: Annotated[float, typer.Option(help="lima-quota: temperature across groups")] = 3.0,
    quota: Annotated[
        list[str] | None, typer.Option("--quota", help="lima-quota: GROUP=N (repeatable)")
    ] = None,
    one_per_cluster: Annotated[
        str | None, typer.Option("--one-per-cluster", help="exact|minhash|embedding")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    tokenizer: Annotated[
        str | None,
        typer.Option(help="longest: count tokens of this local tokenizer folder, not characters"),
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="facility-location: weight of the scorer's quality, in [0, 1]")
    ] = 0.0,
    neighbours: Annotated[
        int | None,
        typer.Option(
            help="facility-location: each candidate's N nearest by the vector index, an "
            "approximation (default: exact up to 5,000 candidates, 32 nearest above)"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="save the recipe by this name")] = None,
    target_size: Annotated[int, typer.Option("--target-size", help="for a new collection")] = 1000,
    preview: Annotated[
        bool, typer.Option("--preview", help="show what it picks; write nothing")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Pick examples of a dataset with a recipe and add them to a collection."""
    from app.collections.service import create_collection, get_collection, item_ids
    from app.platform.errors import NotFound
    from app.selection.service import SelectionSpec, save_selection, start_select_job
    from app.selection.service import preview as preview_selection

    with user_errors():  # the spec's rules, as the API and the collection page apply them
        spec = SelectionSpec.of(
            {
                "dataset": dataset,
                "method": method,
                "budget": budget,
                "filters": filters or [],
                "scorer": scorer,
                "threshold": threshold,
                "embedding_model": embedding_model,
                "group_by": group_by,
                "tau": tau,
                "quotas": _quotas(quota or []),
                "one_per_cluster": one_per_cluster,
                "seed": seed,
                "tokenizer": tokenizer,
                "alpha": alpha,
                "neighbours": neighbours,
            }
        )
    if preview:
        with user_errors(), transaction() as session:
            try:  # the diversity methods start from what the collection already holds
                held = item_ids(session, get_collection(session, into))
            except NotFound:
                held = []
            shown = preview_selection(session, spec, held=held)
        groups = ", ".join(
            f"{g or '(none)'} {n:,}" for g, n in list(shown["groups_after"].items())[:8]
        )
        out.print(
            f"{method}: {shown['selected']:,} of {shown['pool']:,} candidates; by {group_by}: {groups}"
        )
        if shown.get("evol_score"):
            out.print(shown["evol_score"])
        if shown.get("scores_after"):
            before, after = shown["scores_before"], shown["scores_after"]
            out.print(
                f"{shown['scorer']}: mean {before['mean']:.3f} in the pool, {after['mean']:.3f} selected"
            )
        if shown.get("note"):
            out.print(shown["note"])
        return

    def start(session: Session) -> Job:
        try:
            collection = get_collection(session, into)
        except NotFound:
            collection = create_collection(session, into, target_size=target_size)
        if name:
            save_selection(session, name, spec)
        return start_select_job(session, collection, spec, name=name)

    launch(start, f"select {method} into {into}", wait)
