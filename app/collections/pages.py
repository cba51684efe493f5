"""The lead's collection pages: the list, and a dashboard per collection to watch quotas, score
distributions and review, run recipes with a preview, add and remove by hand, freeze, compare
and download snapshots. Every route needs the lead role."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.collections import dashboard, service
from app.collections.embedding_map import embedding_map
from app.datasets import service as datasets
from app.datasets.service import ExportSource, any_active, dataset_url, export_download
from app.models import Collection, User
from app.platform import forms
from app.platform.db import DB, StreamDB
from app.platform.errors import InvalidInput, SiftError
from app.platform.web import PageLead, check_csrf, is_htmx, render
from app.scoring.service import list_scorers
from app.selection import service as selection
from app.selection.service import DEDUP_METHODS, METHODS, SelectionSpec

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
DOWNLOAD_FORMATS = ("alpaca", "sharegpt", "openai", "jsonl", "parquet")
ITEMS_PAGE = 25
PICK_PAGE = 20
GUIDELINES_LIMIT = 100_000


def collection_url(name: str) -> str:
    """The dashboard of a collection (names may hold any printable character but '/')."""
    return "/collections/" + quote(name, safe="")


# ---------------------------------------------------------------- form parsing


class RecipeForm(BaseModel):
    """The dashboard's recipe form as typed; `spec_from_form` reads it (naming a bad field)."""

    dataset: str = ""
    method: str = ""
    budget: str = ""
    filters: str = ""
    source: str = ""
    scorer: str = ""
    threshold: str = ""
    embedding_model: str = ""
    group_by: str = "source"
    tau: str = ""
    quotas: str = ""
    one_per_cluster: str = ""
    seed: str = ""
    name: str = ""


def spec_from_form(form: RecipeForm) -> SelectionSpec:
    """A selection recipe from the dashboard's form; a field that cannot be read, or a rule of
    the spec that it breaks, is named."""
    filters = form.filters.replace("\n", ",").split(",")
    return SelectionSpec.of(
        {
            "dataset": form.dataset.strip(),
            "method": form.method.strip(),
            "budget": forms.integer(form.budget, "budget"),
            "filters": [f.strip() for f in filters if f.strip()],
            "source": forms.optional(form.source),
            "scorer": forms.optional(form.scorer),
            "threshold": forms.number(form.threshold, "threshold", default=0.9),
            "embedding_model": forms.optional(form.embedding_model),
            "group_by": form.group_by.strip() or "source",
            "tau": forms.number(form.tau, "tau", default=3.0),
            "quotas": forms.quotas(form.quotas, "group") or None,
            "one_per_cluster": forms.optional(form.one_per_cluster),
            "seed": forms.integer(form.seed, "seed", default=0),
        }
    )


Recipe = Annotated[RecipeForm, Form()]
ExampleIds = Annotated[list[str] | None, Form(alias="example_id")]


# ---------------------------------------------------------------- the list


def _list_page(
    request: Request, session: Session, user: User, error: str | None = None, status: int = 200
) -> HTMLResponse:
    snapshots = dashboard.snapshot_counts(session)
    rows = [
        (c, n, snapshots.get(c.id, 0), collection_url(c.name))
        for c, n in service.list_collections(session)
    ]
    context = {"user": user, "section": "collections", "collections": rows, "error": error}
    return render(request, "collections/list.html", context, status_code=status)


@router.get("/collections")
def list_collections(request: Request, session: DB, user: PageLead) -> HTMLResponse:
    """Every collection with its size against its target, and a form to start one."""
    return _list_page(request, session, user)


@router.post("/collections", response_model=None)
def create_collection(
    request: Request,
    session: DB,
    user: PageLead,
    name: Annotated[str, Form()] = "",
    target_size: Annotated[str, Form()] = "1000",
    description: Annotated[str, Form()] = "",
    source_quotas: Annotated[str, Form()] = "",
    category_quotas: Annotated[str, Form()] = "",
) -> Response:
    """Start a collection; its dashboard comes next."""
    try:
        if not target_size.strip().isdigit():
            raise InvalidInput(f"target size: {target_size!r} is not a whole number")
        quotas = {
            field: parsed
            for field, text in (("source", source_quotas), ("category", category_quotas))
            if (parsed := forms.quotas(text, field))
        }
        collection = service.create_collection(
            session,
            name,
            target_size=int(target_size),
            quotas=quotas,
            description=description.strip(),
            user=user,
        )
    except SiftError as exc:
        return _list_page(request, session, user, exc.message, status=exc.status_code)
    return RedirectResponse(collection_url(collection.name), status_code=303)


# ---------------------------------------------------------------- the dashboard


def _dashboard(
    request: Request,
    session: Session,
    user: User,
    collection: Collection,
    *,
    error: str | None = None,
    status: int = 200,
    items_after: int | None = None,
) -> HTMLResponse:
    base = collection_url(collection.name)
    held_by = dashboard.composition(session, collection)
    size = sum(held_by.values())
    pool = dashboard.pool_datasets(session, collection, held_by)
    context = {
        "user": user,
        "section": "collections",
        "collection": collection,
        "base": base,
        "size": size,
        "error": error,
        "quotas": dashboard.quota_bars(collection, held_by),
        "pool": [(d, dataset_url(d.name)) for d in pool],
        "statuses": dashboard.status_counts(held_by),
        "reviewers": dashboard.review_progress(session, collection),
        "actions": dashboard.REVIEW_ACTIONS,
        "agreement": dashboard.agreement(session, collection),
        "review_url": "/review/queue?" + urlencode({"collection": collection.name}),
        "dataset_names": [d.name for d in datasets.all_datasets(session)],
        "pool_names": [d.name for d in pool],
        "scorers": sorted({s.name for s in list_scorers(session)}),
        "methods": METHODS,
        "cluster_methods": DEDUP_METHODS,
        "snapshots": service.list_snapshots(session, collection),
        "formats": DOWNLOAD_FORMATS,
        **_items_context(session, collection, base, items_after),
        **_jobs_context(session, collection, base),
    }
    return render(request, "collections/dashboard.html", context, status_code=status)


def _items_context(
    session: Session, collection: Collection, base: str, after: int | None
) -> dict[str, Any]:
    items, next_after = dashboard.item_page(session, collection, after, ITEMS_PAGE)
    return {"items": items, "items_after": after, "items_next_after": next_after, "base": base}


def _jobs_context(session: Session, collection: Collection, base: str) -> dict[str, Any]:
    jobs = dashboard.collection_jobs(session, collection)
    return {
        "jobs": jobs,
        # The jobs page's table (reused here) polls /jobs; this fragment polls itself instead,
        # and cancelling happens on the jobs page, whose table the buttons would swap in.
        "polling": False,
        "can_cancel": False,
        "jobs_polling": any_active(jobs),
        "datasets": dashboard.dataset_names(session, {j.dataset_id for j in jobs}),
        "base": base,
    }


@router.get("/collections/{name}")
def collection_page(
    request: Request, name: str, session: DB, user: PageLead, items_after: int | None = None
) -> HTMLResponse:
    """The dashboard; the heavy parts (pool distributions, the map, the pick list) load as
    fragments of their own."""
    collection = service.get_collection(session, name)
    return _dashboard(request, session, user, collection, items_after=items_after)


@router.get("/collections/{name}/scores")
def scores_fragment(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """Each score's distribution over the pool against the collection."""
    collection = service.get_collection(session, name)
    pool = dashboard.pool_datasets(session, collection)
    context = {"comparisons": dashboard.score_comparison(session, collection, pool)}
    return render(request, "collections/_scores.html", context)


@router.get("/collections/{name}/map")
def map_fragment(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """The embedding map: a pool sample and the collection on two principal components."""
    collection = service.get_collection(session, name)
    pool = dashboard.pool_datasets(session, collection)
    return render(
        request, "collections/_map.html", {"map": embedding_map(session, collection, pool)}
    )


@router.get("/collections/{name}/jobs")
def jobs_fragment(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """The collection's selection jobs with their progress; polls while one can move."""
    collection = service.get_collection(session, name)
    context = _jobs_context(session, collection, collection_url(collection.name))
    return render(request, "collections/_jobs.html", context)


@router.get("/collections/{name}/items")
def items_fragment(
    request: Request, name: str, session: DB, user: PageLead, after: int | None = None
) -> Response:
    """One page of the collection's items; a browser without htmx gets the dashboard."""
    collection = service.get_collection(session, name)
    if not is_htmx(request):
        target = collection_url(collection.name)
        if after is not None:
            target += f"?items_after={after}"
        return RedirectResponse(target + "#items", status_code=303)
    context = _items_context(session, collection, collection_url(collection.name), after)
    return render(request, "collections/_items.html", context)


@router.get("/collections/{name}/pool")
def pool_fragment(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    dataset: str = "",
    q: str = "",
    source: str = "",
    after: int | None = None,
    similar_to: str = "",
) -> HTMLResponse:
    """Examples of a pool dataset not yet in the collection, searchable by words (keyset pages)
    or by meaning (the nearest, one page)."""
    collection = service.get_collection(session, name)
    pool = dashboard.pool_datasets(session, collection)
    names = [d.name for d in datasets.all_datasets(session)]
    chosen = dataset or (pool[0].name if pool else (names[0] if names else ""))
    examples: list[Any] = []
    similarity: dict[int, float] = {}
    next_url = notice = None
    if chosen and similar_to.strip():
        found = datasets.get_dataset(session, chosen)
        try:
            ranked = dashboard.pick_similar(
                session, collection, found, similar_to.strip(), q=q.strip(),
                source=source.strip(), limit=PICK_PAGE,
            )  # fmt: skip
        except SiftError as exc:  # no embeddings yet: say so in the pick list
            notice = exc.message
        else:
            examples = [e for e, _ in ranked]
            similarity = {e.id: cosine for e, cosine in ranked}
    elif chosen:
        found = datasets.get_dataset(session, chosen)
        examples, next_after = dashboard.pick_list(
            session,
            collection,
            found,
            q=q.strip(),
            source=source.strip(),
            after=after,
            limit=PICK_PAGE,
        )
        if next_after is not None:
            query = {"dataset": chosen, "q": q, "source": source, "after": next_after}
            next_url = f"{collection_url(collection.name)}/pool?{urlencode(query)}"
    context = {
        "base": collection_url(collection.name),
        "dataset_names": names,
        "chosen": chosen,
        "q": q,
        "source": source,
        "similar_to": similar_to,
        "similarity": similarity,
        "notice": notice,
        "examples": examples,
        "next_url": next_url,
        "after": after,
    }
    return render(request, "collections/_pool.html", context)


# ---------------------------------------------------------------- writes


def _back(collection: Collection, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"{collection_url(collection.name)}#{anchor}", status_code=303)


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
        return _dashboard(request, session, user, collection, error=message, status=422)
    collection.guidelines = guidelines.replace("\r\n", "\n")
    return _back(collection, "guidelines")


@router.post("/collections/{name}/preview")
def preview_fragment(
    request: Request, name: str, session: DB, user: PageLead, form: Recipe
) -> HTMLResponse:
    """What the recipe in the form would pick, before and after; writes nothing."""
    collection = service.get_collection(session, name)
    context: dict[str, Any] = {"collection": collection}
    try:
        context["preview"] = selection.preview(session, spec_from_form(form))
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
        return _dashboard(
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
        return _dashboard(
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
        return _dashboard(
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
) -> Response:
    """Freeze the collection as a snapshot; the same content gives the same snapshot back."""
    collection = service.get_collection(session, name)
    try:
        service.create_snapshot(session, collection, note=note.strip(), user=user)
    except SiftError as exc:
        return _dashboard(
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
    context = {
        "user": user,
        "section": "collections",
        "collection": collection,
        "base": collection_url(collection.name),
        "old": before,
        "new": after,
        "diff": service.compare_snapshots(session, before, after),
    }
    return render(request, "collections/compare.html", context, fragment="collections/_diff.html")


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
