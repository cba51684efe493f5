"""JSON API for datasets and examples."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from app.datasets import removal, service
from app.datasets.downloads import export_stream
from app.datasets.exporter import (
    EXPORT_FORMATS,
    ExportOptions,
    ExportSource,
)
from app.datasets.importer import FORMATS
from app.datasets.schemas import (
    DatasetCreate,
    DatasetOut,
    DatasetUpdate,
    ExampleOut,
    ExamplePage,
    ExamplePatch,
    example_out,
)
from app.platform.db import DB, StreamDB
from app.platform.errors import InvalidInput
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import BigInt, Id
from app.review.service import check_edit, check_read
from app.scoring.service import score_condition
from app.selection.service import representative_only

router = APIRouter(prefix="/api/v1", tags=["datasets"])


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(session: DB, _: ApiAnnotator) -> list[DatasetOut]:
    """Every dataset with its size."""
    return [
        DatasetOut(name=d.name, description=d.description, example_count=n, created_at=d.created_at)
        for d, n in service.list_datasets(session)
    ]


@router.post("/datasets", response_model=DatasetOut, status_code=201)
def create_dataset(body: DatasetCreate, session: DB, user: ApiLead) -> DatasetOut:
    """Create an empty dataset."""
    dataset = service.create_dataset(session, body.name, body.description, user)
    return DatasetOut(
        name=dataset.name,
        description=dataset.description,
        example_count=0,
        created_at=dataset.created_at,
    )


@router.get("/datasets/{name}", response_model=DatasetOut)
def get_dataset(name: str, session: DB, _: ApiAnnotator) -> DatasetOut:
    """One dataset with its size."""
    dataset = service.get_dataset(session, name)
    return DatasetOut(
        name=dataset.name,
        description=dataset.description,
        example_count=service.count_examples(session, dataset),
        created_at=dataset.created_at,
    )


@router.patch("/datasets/{name}", response_model=DatasetOut)
def update_dataset(name: str, body: DatasetUpdate, session: DB, _: ApiLead) -> DatasetOut:
    """Rename the dataset or change its description (collections' recipes follow a rename)."""
    dataset = service.get_dataset(session, name)
    if body.name is not None:
        removal.rename_dataset(session, dataset, body.name)
    if body.description is not None:
        dataset.description = body.description
    return get_dataset(dataset.name, session, _)


@router.get("/datasets/{name}/dependents")
def dataset_dependents(name: str, session: DB, _: ApiLead) -> dict[str, object]:
    """What a deletion would touch (collections, snapshots, runs, evaluations, recipes) and
    what stops it (experiments, unfinished jobs)."""
    return removal.dependents(session, service.get_dataset(session, name)).as_json()


@router.delete("/datasets/{name}")
def delete_dataset(name: str, session: DB, user: ApiLead, response: Response) -> dict[str, object]:
    """Delete the dataset and its examples (snapshots keep their copies): 200 when done at
    once, 202 with the job for a large one; 409 naming what stops it."""
    dataset = service.get_dataset(session, name)
    examples = service.count_examples(session, dataset)
    job = removal.delete_dataset(session, dataset, user)
    if job is not None:
        response.status_code = 202
    return {
        "deleted": name,
        "examples": examples,
        "job": JobOut.model_validate(job).model_dump(mode="json") if job else None,
    }


@router.post("/datasets/{name}/imports", response_model=JobOut, status_code=202)
def start_import(
    name: str,
    session: DB,
    user: ApiLead,
    file: Annotated[UploadFile, File()],
    format: Annotated[str, Form()] = "auto",
    skip_invalid: Annotated[bool, Form()] = False,
    source: Annotated[str | None, Form()] = None,
) -> JobOut:
    """Upload a file and import it as a background job (the dataset is created if new)."""
    if format not in FORMATS:
        raise InvalidInput(f"unknown format {format!r}", field="format")
    dataset = service.get_or_create_dataset(session, name, user)
    path = service.save_upload(file.file, file.filename)
    job = service.start_import_job(
        session, dataset, path, fmt=format, skip_invalid=skip_invalid, source=source, user=user
    )
    return JobOut.model_validate(job)


@router.get("/datasets/{name}/examples", response_model=ExamplePage)
def list_examples(
    name: str,
    session: DB,
    _: ApiLead,
    after: BigInt | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    source: str | None = None,
    status: str | None = None,
    q: str | None = None,
    score: Annotated[list[str] | None, Query(description="e.g. alpagasus>=4.5")] = None,
    one_per_cluster: Annotated[
        str | None,
        Query(description="exact|minhash|embedding: near-duplicate representatives only"),
    ] = None,
    similar_to: Annotated[
        str | None,
        Query(description="a sentence: the `limit` nearest examples by embedding, best first"),
    ] = None,
    model: Annotated[
        str | None,
        Query(description="the embedding model for similar_to (default: all-MiniLM-L6-v2)"),
    ] = None,
) -> ExamplePage:
    """A page of examples by id; follow `next_after` for the next page. `score` filters
    (repeatable, all must hold): `SCORER OP NUMBER` or `SCORER:STATE`. `q` finds every word
    (the last may be a prefix). `similar_to` orders by meaning instead: one page, no
    `next_after`."""
    dataset = service.get_dataset(session, name)
    conditions = [score_condition(session, expression) for expression in score or []]
    if one_per_cluster:
        conditions.append(representative_only(session, dataset.id, one_per_cluster))
    filters = service.ExampleFilter(
        source=source,
        status=status,
        q=q,
        conditions=conditions,
        similar_to=similar_to,
        model=model,
    )
    rows, next_after = service.list_examples(session, dataset, filters, after, limit)
    return ExamplePage(items=[example_out(e) for e in rows], next_after=next_after)


@router.get("/datasets/{name}/export")
def export_dataset(
    name: str,
    session: StreamDB,
    _: ApiLead,
    format: str = "jsonl",
    with_scores: bool = False,
) -> StreamingResponse:
    """Stream a dataset in an export format (JSON list, or JSONL for jsonl)."""
    if format not in EXPORT_FORMATS or format == "parquet":
        raise InvalidInput(f"format {format!r} cannot be streamed over HTTP", field="format")
    dataset = service.get_dataset(session, name)
    source = ExportSource("dataset", dataset.id)
    return export_stream(session, source, ExportOptions(format, with_scores), "export")


@router.get("/examples/{example_id}", response_model=ExampleOut)
def get_example(example_id: Id, session: DB, user: ApiAnnotator) -> ExampleOut:
    """One example with its current version (send it back as If-Match to edit); an annotator
    reads only the examples their queue handed them or they worked on."""
    check_read(session, user, example_id)
    return example_out(service.get_example(session, example_id))


@router.patch("/examples/{example_id}", response_model=ExampleOut)
def patch_example(
    example_id: Id,
    body: ExamplePatch,
    request: Request,
    session: DB,
    user: ApiAnnotator,
    if_match: Annotated[str | None, Header()] = None,
) -> ExampleOut:
    """Edit an example; `If-Match: <version>` is required and a stale version answers 409, as
    does an example another person holds. Only a lead sets `status` this way."""
    version = None
    if if_match is not None:
        try:
            version = int(if_match.strip().strip('"').removeprefix("W/").strip('"'))
        except ValueError as exc:
            raise InvalidInput("If-Match must be the example's version number") from exc
    changes = body.model_dump(exclude_unset=True, exclude={"reason"})
    check_edit(session, user, example_id, changes)
    check_read(session, user, example_id)
    example = service.update_example(session, example_id, version, changes, user, body.reason)
    return example_out(example)
