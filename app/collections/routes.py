"""JSON API for collections, snapshots and selection recipes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.collections import service
from app.collections.schemas import (
    CollectionCreate,
    CollectionOut,
    CollectionPatch,
    ItemsIn,
    ItemsOut,
    PreviewOut,
    SelectionIn,
    SnapshotCreate,
    SnapshotDiff,
    SnapshotOut,
)
from app.datasets.service import EXPORT_FORMATS, ExportOptions, ExportSource, export_stream
from app.models import Collection
from app.platform.db import DB, StreamDB
from app.platform.errors import InvalidInput
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.snapshots import SnapshotRef
from app.platform.validation import IdempotencyKey
from app.selection import service as selection

router = APIRouter(prefix="/api/v1", tags=["collections"])


def collection_out(
    session: Session, collection: Collection, size: int | None = None
) -> CollectionOut:
    """The API shape of a collection, with how full its quota groups are."""
    quotas = collection.quotas or {}
    return CollectionOut(
        name=collection.name,
        description=collection.description,
        overlap=collection.overlap,
        consensus=collection.consensus,
        target_size=collection.target_size,
        size=size if size is not None else service.collection_size(session, collection),
        quotas=quotas,
        filled={field: service.group_counts(session, collection, field) for field in quotas},
        recipes=collection.recipes or [],
        created_at=collection.created_at,
    )


@router.get("/collections", response_model=list[CollectionOut])
def list_collections(session: DB, _: ApiAnnotator) -> list[CollectionOut]:
    """Every collection with its size."""
    return [collection_out(session, c, n) for c, n in service.list_collections(session)]


@router.post("/collections", response_model=CollectionOut, status_code=201)
def create_collection(body: CollectionCreate, session: DB, user: ApiLead) -> CollectionOut:
    """Start a collection with a target size and quotas per source or category."""
    collection = service.create_collection(
        session,
        body.name,
        target_size=body.target_size,
        quotas=body.quotas,
        description=body.description,
        guidelines=body.guidelines,
        user=user,
        overlap=body.overlap,
        consensus=body.consensus,
    )
    return collection_out(session, collection, 0)


@router.get("/collections/{name}", response_model=CollectionOut)
def get_collection(name: str, session: DB, _: ApiAnnotator) -> CollectionOut:
    """One collection, how full it is, and the recipes that fed it."""
    return collection_out(session, service.get_collection(session, name))


@router.patch("/collections/{name}", response_model=CollectionOut)
def update_collection(name: str, body: CollectionPatch, session: DB, _: ApiLead) -> CollectionOut:
    """Rename the collection, or change how many annotators decide each example (`overlap`)
    and the `consensus` rule."""
    collection = service.get_collection(session, name)
    service.update_review_settings(collection, overlap=body.overlap, consensus=body.consensus)
    if body.name is not None:
        service.rename_collection(session, collection, body.name)
    return collection_out(session, collection)


@router.delete("/collections/{name}")
def delete_collection(name: str, session: DB, _: ApiLead) -> dict[str, object]:
    """Delete a collection that has no snapshot (409 naming them otherwise); its examples stay
    in their datasets."""
    collection = service.get_collection(session, name)
    return {"deleted": collection.name, "items": service.delete_collection(session, collection)}


@router.post("/collections/{name}/items", response_model=ItemsOut)
def add_items(name: str, body: ItemsIn, session: DB, user: ApiLead) -> ItemsOut:
    """Add examples by hand (with why), within the target size and quotas."""
    collection = service.get_collection(session, name)
    added = service.add_items(session, collection, body.example_ids, user=user, reason=body.reason)
    return ItemsOut(changed=added, size=service.collection_size(session, collection))


@router.post("/collections/{name}/items/remove", response_model=ItemsOut)
def remove_items(name: str, body: ItemsIn, session: DB, _: ApiLead) -> ItemsOut:
    """Take examples out of a collection."""
    collection = service.get_collection(session, name)
    removed = service.remove_items(session, collection, body.example_ids)
    return ItemsOut(changed=removed, size=service.collection_size(session, collection))


@router.post("/selections/preview", response_model=PreviewOut)
def preview_selection(body: SelectionIn, session: DB, _: ApiLead) -> PreviewOut:
    """What a recipe would pick, before anything is written (k-center and facility-location
    start from what `collection` holds)."""
    held: list[int] = []
    if body.collection:
        held = service.item_ids(session, service.get_collection(session, body.collection))
    return PreviewOut.model_validate(selection.preview(session, body.spec(), held=held))


@router.post("/collections/{name}/select", response_model=JobOut, status_code=202)
def select_into(
    name: str,
    body: SelectionIn,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Run a recipe into the collection as a job; `name` saves the recipe too."""
    collection = service.get_collection(session, name)
    spec = body.spec()
    if body.name:
        selection.save_selection(session, body.name, spec, user)
    job = selection.start_select_job(
        session, collection, spec, name=body.name, user=user, idempotency_key=idempotency_key
    )
    return JobOut.model_validate(job)


@router.post("/collections/{name}/snapshots", response_model=SnapshotOut)
def create_snapshot(
    name: str, session: DB, user: ApiLead, body: SnapshotCreate | None = None
) -> SnapshotOut:
    """Freeze the collection (never its rejected examples; with `only_accepted`, its accepted
    ones only); the same content frozen again answers the existing snapshot."""
    collection = service.get_collection(session, name)
    body = body or SnapshotCreate()
    snapshot, _ = service.create_snapshot(
        session, collection, note=body.note, user=user, only_accepted=body.only_accepted
    )
    return SnapshotOut.model_validate(snapshot)


@router.get("/collections/{name}/snapshots", response_model=list[SnapshotOut])
def list_snapshots(name: str, session: DB, _: ApiAnnotator) -> list[SnapshotOut]:
    """A collection's snapshots, newest first."""
    collection = service.get_collection(session, name)
    return [SnapshotOut.model_validate(s) for s in service.list_snapshots(session, collection)]


@router.get("/snapshots/{snapshot_id}", response_model=SnapshotOut)
def get_snapshot(snapshot_id: SnapshotRef, session: DB, _: ApiAnnotator) -> SnapshotOut:
    """One snapshot, by its number or its digest."""
    return SnapshotOut.model_validate(service.get_snapshot(session, snapshot_id))


@router.get("/snapshots/{snapshot_id}/compare/{other_id}", response_model=SnapshotDiff)
def compare_snapshots(
    snapshot_id: SnapshotRef, other_id: SnapshotRef, session: DB, _: ApiAnnotator
) -> SnapshotDiff:
    """Examples added, removed and edited from one snapshot to another."""
    old, new = service.get_snapshot(session, snapshot_id), service.get_snapshot(session, other_id)
    return SnapshotDiff.model_validate(service.compare_snapshots(session, old, new))


@router.get("/snapshots/{snapshot_id}/export")
def export_snapshot(
    snapshot_id: SnapshotRef,
    session: StreamDB,
    _: ApiLead,
    format: str = "jsonl",
    with_scores: bool = False,
) -> StreamingResponse:
    """Stream a snapshot in an export format."""
    if format not in EXPORT_FORMATS or format == "parquet":
        raise InvalidInput(f"format {format!r} cannot be streamed over HTTP", field="format")
    snapshot = service.get_snapshot(session, snapshot_id)
    source = ExportSource("snapshot", snapshot.id)
    return export_stream(
        session, source, ExportOptions(format, with_scores), f"snapshot-{snapshot.id}"
    )
