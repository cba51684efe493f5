"""`sift snapshot`, `sift collection update` and `sift collection delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.collections.question_commands import question_cli
from app.platform.cli.console import out, user_errors
from app.platform.db import transaction

commands = typer.Typer()


@commands.command("snapshot")
def snapshot(
    collection: Annotated[str, typer.Option("--collection")],
    note: Annotated[str, typer.Option(help="what this snapshot is for")] = "",
    only_accepted: Annotated[
        bool, typer.Option("--only-accepted", help="freeze the accepted examples only")
    ] = False,
) -> None:
    """Freeze a collection as an immutable snapshot, each example with its review status
    (never a rejected one); the same content gives the same snapshot."""
    from app.collections.service import create_snapshot, get_collection

    with user_errors(), transaction() as session:
        frozen, created = create_snapshot(
            session, get_collection(session, collection), note=note, only_accepted=only_accepted
        )
        line = f"snapshot {frozen.id} of {collection}: {frozen.example_count:,} examples, digest {frozen.digest[:16]}"
        left_out = ", ".join(f"{n:,} {status}" for status, n in sorted(frozen.left_out.items()))
    out.print(line if created else f"{line} (unchanged: the existing snapshot)")
    if left_out:
        out.print(f"left out: {left_out}")


collection = typer.Typer(help="Collections' settings.")
commands.add_typer(collection, name="collection")
collection.add_typer(question_cli, name="question")


@collection.command("update")
def update(
    name: Annotated[str, typer.Argument(help="the collection")],
    overlap: Annotated[
        int | None, typer.Option(help="different annotators who decide each example")
    ] = None,
    consensus: Annotated[
        str | None, typer.Option(help="majority or unanimous: how their decisions settle it")
    ] = None,
    rename: Annotated[str | None, typer.Option(help="a new name")] = None,
) -> None:
    """Change a collection: its name, annotators per example and the consensus rule."""
    from app.collections.service import get_collection, rename_collection, update_review_settings

    with user_errors(), transaction() as session:
        changed = update_review_settings(
            get_collection(session, name), overlap=overlap, consensus=consensus
        )
        if rename is not None:
            rename_collection(session, changed, rename)
        line = (
            f"{changed.name}: {changed.overlap} annotator(s) per example, {changed.consensus} rule"
        )
    out.print(line)


@collection.command("delete")
def delete(name: Annotated[str, typer.Argument(help="the collection")]) -> None:
    """Delete a collection without snapshots (its examples stay in their datasets)."""
    from app.collections.service import delete_collection, get_collection

    with user_errors(), transaction() as session:
        held = delete_collection(session, get_collection(session, name))
    out.print(f"deleted collection {name} ({held:,} items; the examples stay)")
