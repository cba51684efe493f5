"""`sift review agreement`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.platform.cli.console import out, user_errors
from app.platform.db import transaction

commands = typer.Typer()
review = typer.Typer(help="Review: how the annotators agree.")
commands.add_typer(review, name="review")


def _figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


@review.command("agreement")
def agreement(
    collection: Annotated[str, typer.Option("--collection")],
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
) -> None:
    """Agreement between a collection's annotators (Krippendorff, Fleiss, Cohen per pair)."""
    from app.collections.service import get_collection
    from app.review.service import collection_agreement

    with user_errors(), transaction() as session:
        figures = collection_agreement(session, get_collection(session, collection))
    if as_json:
        print(json.dumps(figures.as_json(), indent=2))
        return
    out.print(f"{figures.items:,} examples decided in {collection}")
    out.print(f"Krippendorff's alpha (nominal): {_figure(figures.krippendorff_alpha)}")
    out.print(f"Fleiss' kappa: {_figure(figures.fleiss_kappa)}")
    for pair in figures.cohen_kappa:
        out.print(f"Cohen's kappa {pair.a} / {pair.b}: {_figure(pair.kappa)} on {pair.n:,}")
    for person in figures.annotators:
        rate = person.agree_with_consensus
        against = "no settled example yet" if rate is None else f"{rate:.0%} agree"
        out.print(f"{person.annotator}: {person.decisions:,} decisions, {against}")
    for note in figures.notes:
        out.print(f"[dim]{note}[/]")
