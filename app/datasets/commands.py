"""`sift import`, `sift export` and `sift dataset rename|dependents|delete`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from app.platform.cli.console import err, fail, out, progress_bar, user_errors
from app.platform.cli.jobs import hold_jobs_here, launch, run_job
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.errors import SiftError

commands = typer.Typer()


def _parse_mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target or not source:
            fail(f"--map takes FIELD=COLUMN, got {pair!r}")
        mapping[target.strip()] = source.strip()
    return mapping


@commands.command("import")
def import_(
    path: Path,
    dataset: Annotated[str, typer.Option("--dataset", help="created if new")],
    format: Annotated[
        str,
        typer.Option(
            help="auto|alpaca|sharegpt|openai|dolly|lima|self-instruct|csv|parquet|jsonl|hf"
        ),
    ] = "auto",
    source: Annotated[str | None, typer.Option(help="source of records that name none")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the valid records even if some are bad")
    ] = False,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. output=answer")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="hf: the split of a DatasetDict folder (default train)"),
    ] = None,
    background: Annotated[bool, typer.Option("--background", help="run as a job")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="with --background: follow the job")] = False,
) -> None:
    """Import a file (or a Hugging Face save_to_disk folder) into a dataset: every record is
    validated; re-importing adds nothing."""
    from app.datasets import service
    from app.datasets.hf import is_saved_dataset
    from app.datasets.importer import ImportRejected, import_file

    mapping = _parse_mapping(map_ or [])
    path = path.resolve()
    if not (path.is_file() or is_saved_dataset(path)):
        fail(f"no such file: {path}" + (" (nor a saved dataset folder)" if path.is_dir() else ""))
    if background:
        launch(
            lambda session: service.start_import_job(
                session,
                service.get_or_create_dataset(session, dataset),
                path,
                fmt=format,
                source=source,
                skip_invalid=skip_invalid,
                mapping=mapping,
                split=split,
            ),
            f"import {path.name}",
            wait,
        )
        return
    with progress_bar("bytes") as bar:
        task = bar.add_task(f"import {path.name}", total=None, counts="")
        try:
            with transaction() as session:
                hold_jobs_here(session)  # no worker to index them for search: done below
                target = service.get_or_create_dataset(session, dataset)
                summary = import_file(
                    session,
                    target,
                    path,
                    fmt=format,
                    source=source,
                    skip_invalid=skip_invalid,
                    mapping=mapping,
                    max_record_chars=get_settings().import_max_record_chars,
                    split=split,
                    progress=lambda _n, done, total: bar.update(task, completed=done, total=total),
                )
        except ImportRejected as exc:
            bar.stop()
            err.print(exc.message, highlight=False, markup=False)
            raise typer.Exit(1) from exc
        except SiftError as exc:
            bar.stop()
            fail(exc.message)
    out.print(summary.line())
    if summary.invalid:
        for line in summary.errors[:20]:
            err.print(f"  skipped {line}", highlight=False, markup=False)
    if summary.search_job:
        run_job(summary.search_job, "index for text search", wait=False)


@commands.command("export")
def export(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="output file (hf: a folder)")
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            help="alpaca|sharegpt|openai|dolly|lima|jsonl|parquet, dpo (preference pairs), "
            "or hf (a Hugging Face DatasetDict folder)"
        ),
    ] = "jsonl",
    dataset: Annotated[str | None, typer.Option("--dataset")] = None,
    collection: Annotated[str | None, typer.Option("--collection")] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="a snapshot's number or digest")
    ] = None,
    with_scores: Annotated[bool, typer.Option("--with-scores")] = False,
    with_embeddings: Annotated[bool, typer.Option("--with-embeddings")] = False,
    embedding_model: Annotated[str | None, typer.Option("--embedding-model")] = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            help="also upload it (as hf) to the Hugging Face Hub as NAMESPACE/NAME; "
            "the token comes from HF_TOKEN",
        ),
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="--push-to-hub: private")] = False,
) -> None:
    """Export a dataset, collection or snapshot; the file appears only when complete."""
    from app.datasets.exporter import ExportOptions, export_to_file, resolve_source
    from app.datasets.hf import hub_target, push_folder

    hub: tuple[str, str] | None = None
    with user_errors():
        if push_to_hub is not None:
            if format not in ("hf", "jsonl"):  # jsonl: the default, left as it is
                fail("--push-to-hub uploads a Hugging Face dataset: use --format hf")
            format, hub = "hf", hub_target(push_to_hub)
    if out_path is None and hub is None:
        fail("--out: name the file (or folder) to write")
    staging = None if out_path is not None else tempfile.TemporaryDirectory(prefix="sift-hub-")
    if out_path is None:
        assert staging is not None
        out_path = Path(staging.name) / "dataset"
    options = ExportOptions(format, with_scores, with_embeddings, embedding_model)
    with user_errors(), transaction() as session, progress_bar() as bar:
        source, total = resolve_source(
            session, dataset=dataset, collection=collection, snapshot=snapshot
        )
        task = bar.add_task(f"export {out_path.name}", total=total, counts="")
        count = export_to_file(
            session, source, options, out_path, lambda n: bar.update(task, completed=n)
        )
    if hub is None:
        out.print(f"exported {count:,} records as {format} to {out_path}")
        return
    with user_errors():
        url = push_folder(out_path, *hub, private=private)
    if staging is not None:
        staging.cleanup()
    out.print(f"exported {count:,} records as hf and pushed them to {url}")


dataset = typer.Typer(help="Rename or delete a dataset, and see what depends on it.")
commands.add_typer(dataset, name="dataset")


@dataset.command("rename")
def rename(
    name: Annotated[str, typer.Argument(help="the dataset")],
    new_name: Annotated[str, typer.Argument(help="its new name")],
) -> None:
    """Rename a dataset (collections' recipes that name it follow)."""
    from app.datasets.removal import rename_dataset
    from app.datasets.service import get_dataset

    with user_errors(), transaction() as session:
        rename_dataset(session, get_dataset(session, name), new_name)
    out.print(f"renamed dataset {name} to {new_name}")


@dataset.command("dependents")
def dependents(
    name: Annotated[str, typer.Argument(help="the dataset")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """What deleting the dataset would touch, and what stops it."""
    import json

    from app.datasets.removal import dependents as find
    from app.datasets.service import get_dataset

    with user_errors(), transaction() as session:
        found = find(session, get_dataset(session, name)).as_json()
    if as_json:
        out.print_json(json.dumps(found))
        return
    out.print(f"{found['examples']:,} examples")
    for key in (
        "collections",
        "snapshots",
        "runs",
        "evaluations",
        "recipes",
        "experiments",
        "jobs",
    ):
        if found[key]:
            out.print(f"{key}: {found[key]}")
    for reason in found["blockers"]:
        err.print(f"cannot be deleted: {reason}")


@dataset.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="the dataset")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask to confirm")] = False,
    wait: Annotated[bool, typer.Option(help="wait for a deletion that runs as a job")] = True,
) -> None:
    """Delete a dataset and its examples (snapshots keep their copies)."""
    from app.datasets.removal import delete_dataset, dependents
    from app.datasets.service import get_dataset

    with user_errors(), transaction() as session:
        found = dependents(session, get_dataset(session, name))
    if not yes and not typer.confirm(
        f"delete dataset {name} and its {found.examples:,} examples "
        f"(collections holding them: {len(found.collections)})?"
    ):
        raise typer.Exit(1)
    with user_errors(), transaction() as session:
        job = delete_dataset(session, get_dataset(session, name), None)
        job_id = job.id if job else None
    if job_id is None:
        out.print(f"deleted dataset {name} ({found.examples:,} examples)")
    else:
        run_job(job_id, f"deleting {name}", wait)
