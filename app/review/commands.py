"""`sift review agreement`: over decisions, and per question."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

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
    from app.review.answer_agreement import question_agreement
    from app.review.service import collection_agreement

    with user_errors(), transaction() as session:
        found = get_collection(session, collection)
        figures = collection_agreement(session, found)
        per_question = question_agreement(session, found)
    if as_json:
        print(
            json.dumps(
                {**figures.as_json(), "questions": [q.as_json() for q in per_question]}, indent=2
            )
        )
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
    for question in per_question:
        _print_question(question)


def _print_question(question: Any) -> None:
    """One question's alpha at its level (labels: per label; text: not measured)."""
    head = f"question {question.key} ({question.kind}"
    if question.level is None:
        out.print(f"{head}): not measured")
        return
    line = f"{head}, {question.level}): alpha {_figure(question.krippendorff_alpha)}"
    if question.interval_alpha is not None:
        line += f", interval {_figure(question.interval_alpha)}"
    out.print(f"{line}; {question.paired:,} of {question.items:,} examples answered twice or more")
    for label in question.by_label:
        out.print(f"  {escape(label.label)}: alpha {_figure(label.krippendorff_alpha)}")
    for note in question.notes:
        out.print(f"[dim]  {escape(note)}[/]")
