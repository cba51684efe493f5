"""The collection dashboard's writes (guidelines, recipes previewed and run, items added and
removed by hand, snapshots frozen) and its snapshot pages (compare, download). Every route needs
the lead role; a failed write shows the dashboard again with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.collections import dashboard, service
from app.collections.dashboard_view import DOWNLOAD_FORMATS, collection_url, render_dashboard
from app.collections.recipe_form import Recipe, spec_from_form
from app.datasets.service import ExportSource, export_download
from app.models import Collection, Snapshot, User
from app.platform.db import DB, StreamDB
from app.platform.errors import InvalidInput, SiftError
from app.platform.forms import whole_number
from app.platform.web import PageLead, check_csrf, render
from app.selection import service as selection

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
GUIDELINES_LIMIT = 100_000
ExampleIds = Annotated[list[str] | None, Form(alias="example_id")]


def _back(collection: Collection, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"{collection_url(collection.name)}#{anchor}", status_code=303)


def _change(
    request: Request,
    session: Session,
    user: User,
    collection: Collection,
    change: Callable[[], object],
    done: Callable[[], Response],
) -> Response:
    """Make a change to the collection and answer `done()` (made after it, so a rename's
    address has the new name), or the dashboard with the error beside the forms."""
    try:
        change()
    except SiftError as exc:
        return render_dashboard(
            request, session, user, collection, error=exc.message, status=exc.status_code
        )
    return done()


@router.post("/collections/{name}/guidelines", response_model=None)
def save_guidelines(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    guidelines: Annotated[str, Form()] = "",
) -> Response:
    """Store the collection's Markdown guidelines, which the review page shows."""
    collection = service.get_collection(session, name)
    if len(guidelines) > GUIDELINES_LIMIT:
        message = f"guidelines: at most {GUIDELINES_LIMIT:,} characters"
        return render_dashboard(request, session, user, collection, error=message, status=422)
    collection.guidelines = guidelines.replace("\r\n", "\n")
    return _back(collection, "guidelines")


@router.post("/collections/{name}/review-settings", response_model=None)
def review_settings(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    overlap: Annotated[str, Form()] = "1",
    consensus: Annotated[str, Form()] = "majority",
) -> Response:
    """Set how many annotators decide each example and the rule that settles it."""
    collection = service.get_collection(session, name)

    def change() -> object:
        annotators = whole_number(overlap, "overlap", default=1)
        return service.update_review_settings(collection, overlap=annotators, consensus=consensus)

    return _change(request, session, user, collection, change, lambda: _back(collection, "review"))


@router.post("/collections/{name}/rename", response_model=None)
def rename(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    new_name: Annotated[str, Form()] = "",
) -> Response:
    """Give the collection another name, then show it under that name."""
    collection = service.get_collection(session, name)

    def change() -> object:
        return service.rename_collection(session, collection, new_name)

    return _change(request, session, user, collection, change, lambda: _back(collection, "manage"))


@router.post("/collections/{name}/delete", response_model=None)
def delete(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Delete the collection once its name is typed to confirm; back to the list."""
    collection = service.get_collection(session, name)

    def change() -> object:
        if confirm.strip() != collection.name:
            raise InvalidInput("type the collection's name to delete it", field="confirm")
        return service.delete_collection(session, collection)

    def done() -> Response:
        return RedirectResponse("/collections", status_code=303)

    return _change(request, session, user, collection, change, done)


@router.post("/collections/{name}/preview")
def preview_fragment(
    request: Request, name: str, session: DB, user: PageLead, form: Recipe
) -> HTMLResponse:
    """What the recipe in the form would pick, before and after; writes nothing."""
    collection = service.get_collection(session, name)
    context: dict[str, Any] = {"collection": collection}
    try:
        held = service.item_ids(session, collection)
        context["preview"] = selection.preview(session, spec_from_form(form), held=held)
    except SiftError as exc:
        context["error"] = exc.message  # htmx swaps only 2xx answers: the error is the fragment
    return render(request, "collections/_preview.html", context)


@router.post("/collections/{name}/select", response_model=None)
def run_selection(
    request: Request, name: str, session: DB, user: PageLead, form: Recipe
) -> Response:
    """Run the recipe in the form into the collection as a job (saved by name if given)."""
    collection = service.get_collection(session, name)
    recipe_name = form.name.strip() or None
    try:
        spec = spec_from_form(form)
        if recipe_name:
            selection.save_selection(session, recipe_name, spec, user)
        selection.start_select_job(session, collection, spec, name=recipe_name, user=user)
    except SiftError as exc:
        return render_dashboard(
            request, session, user, collection, error=exc.message, status=exc.status_code
        )
    return _back(collection, "jobs")


def _ids(raw: list[str] | None) -> list[int]:
    ids = []
    for value in raw or []:
        if not value.strip().isdigit():
            raise InvalidInput(f"example id {value!r} is not a number", field="example_id")
        ids.append(int(value))
    if not ids:
        raise InvalidInput("choose at least one example", field="example_id")
    return ids


@router.post("/collections/{name}/items/add", response_model=None)
def add_items(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    example_ids: ExampleIds = None,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Add examples by hand, with why; the target size and quotas still hold."""
    collection = service.get_collection(session, name)
    try:
        ids = _ids(example_ids)
        service.add_items(session, collection, ids, user=user, reason=reason.strip())
    except SiftError as exc:
        return render_dashboard(
            request, session, user, collection, error=exc.message, status=exc.status_code
        )
    return _back(collection, "items")


@router.post("/collections/{name}/items/remove", response_model=None)
def remove_items(
    request: Request, name: str, session: DB, user: PageLead, example_ids: ExampleIds = None
) -> Response:
    """Take examples out of the collection."""
    collection = service.get_collection(session, name)
    try:
        service.remove_items(session, collection, _ids(example_ids))
    except SiftError as exc:
        return render_dashboard(
            request, session, user, collection, error=exc.message, status=exc.status_code
        )
    return _back(collection, "items")


@router.post("/collections/{name}/snapshots", response_model=None)
def freeze(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    note: Annotated[str, Form()] = "",
    only_accepted: Annotated[bool, Form()] = False,
) -> Response:
    """Freeze the collection as a snapshot (never its rejected examples); the same content
    gives the same snapshot back."""
    collection = service.get_collection(session, name)
    try:
        service.create_snapshot(
            session, collection, note=note.strip(), user=user, only_accepted=only_accepted
        )
    except SiftError as exc:
        return render_dashboard(
            request, session, user, collection, error=exc.message, status=exc.status_code
        )
    return _back(collection, "snapshots")


# ---------------------------------------------------------------- snapshots


@router.get("/collections/{name}/compare")
def compare(
    request: Request, name: str, session: DB, user: PageLead, old: int, new: int
) -> HTMLResponse:
    """Examples added, removed and edited from one snapshot of the collection to another."""
    collection = service.get_collection(session, name)
    before = dashboard.collection_snapshot(session, collection, old)
    after = dashboard.collection_snapshot(session, collection, new)
    diff = service.compare_snapshots(session, before, after)
    context = {
        "user": user,
        "section": "collections",
        "collection": collection,
        "base": collection_url(collection.name),
        "old": before,
        "new": after,
        "diff": diff,
        "prompts": _diff_prompts(session, before, after, diff),
    }
    return render(request, "collections/compare.html", context, fragment="collections/_diff.html")


def _diff_prompts(
    session: Session, before: Snapshot, after: Snapshot, diff: dict[str, list[int]]
) -> dict[int, str]:
    """The prompt of each example the diff lists (the first 500 of each kind), as frozen in
    the snapshot that holds it (the old one for removed examples)."""
    shown = {kind: ids[:500] for kind, ids in diff.items()}
    prompts = service.snapshot_prompts(session, after, shown["added"] + shown["edited"])
    return prompts | service.snapshot_prompts(session, before, shown["removed"])


@router.get("/collections/{name}/snapshots/{snapshot_id}/export", response_model=None)
def download(
    name: str, snapshot_id: int, session: StreamDB, user: PageLead, format: str = "jsonl"
) -> Response:
    """Download a snapshot in an export format, as a file."""
    collection = service.get_collection(session, name)
    snapshot = dashboard.collection_snapshot(session, collection, snapshot_id)
    source = ExportSource("snapshot", snapshot.id)
    stem = f"{collection.name}-snapshot-{snapshot.id}-{format}"
    return export_download(session, source, format, stem, DOWNLOAD_FORMATS)
