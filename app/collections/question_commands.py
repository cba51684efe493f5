"""`sift collection question add|list|remove`: the questions annotators answer about a
collection's examples (kept by the review domain)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.platform.cli.console import out, user_errors
from app.platform.db import transaction

question_cli = typer.Typer(help="Questions annotators answer beside accept and reject.")
KINDS_HELP = "rating (1-5) | label (one option) | labels (several) | text | ranking"


@question_cli.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the collection")],
    key: Annotated[str, typer.Option(help="names the question in exports and filters")],
    kind: Annotated[str, typer.Option(help=KINDS_HELP)],
    options: Annotated[str, typer.Option(help="label and labels: a,b,c")] = "",
    prompt: Annotated[str, typer.Option(help="the question as annotators read it")] = "",
    required: Annotated[
        bool, typer.Option("--required", help="annotators answer it before deciding")
    ] = False,
) -> None:
    """Ask annotators a question about each example of a collection."""
    from app.collections.service import get_collection
    from app.review.service import QuestionSpec, add_question

    spec = QuestionSpec(key, kind, prompt, [o for o in options.split(",") if o], required)
    with user_errors(), transaction() as session:
        question = add_question(session, get_collection(session, name), spec)
        line = f"{name}: question {question.key} ({question.kind}) added"
        if question.options:
            line += ": " + ", ".join(f"{i} {o}" for i, o in enumerate(question.options, 1))
    out.print(escape(line))


@question_cli.command("list")
def list_(name: Annotated[str, typer.Argument(help="the collection")]) -> None:
    """A collection's questions with how many answers each has."""
    from app.collections.service import get_collection
    from app.review.service import answer_counts, list_questions

    with user_errors(), transaction() as session:
        collection = get_collection(session, name)
        rows = [
            (q.key, q.kind, ", ".join(q.options), "yes" if q.required else "", q.prompt)
            for q in list_questions(session, collection)
        ]
        counts = answer_counts(session, collection)
    if not rows:
        out.print(f"{escape(name)} asks no questions yet")
        return
    table = Table("key", "kind", "options", "required", "answers", "question", box=None)
    for key, kind, options, required, prompt in rows:
        table.add_row(
            key, kind, escape(options), required, f"{counts.get(key, 0):,}", escape(prompt)
        )
    out.print(table)


@question_cli.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="the collection")],
    key: Annotated[str, typer.Option(help="the question's key")],
) -> None:
    """Stop asking a question; its answers are deleted with it."""
    from app.collections.service import get_collection
    from app.review.service import remove_question

    with user_errors(), transaction() as session:
        removed = remove_question(session, get_collection(session, name), key)
    out.print(f"{escape(name)}: question {key} removed with its {removed:,} answers")
