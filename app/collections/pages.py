"""The lead's collection pages: the list, and a dashboard per collection to watch quotas, score
distributions and review, run recipes with a preview, add and remove by hand, freeze, compare
and download snapshots (the writes and snapshot pages are in `page_actions`). Every route needs
the lead role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.collections import dashboard, distributions, page_actions, service
from app.collections.dashboard_view import (
    collection_url,
    items_context,
    jobs_context,
    render_dashboard,
)
from app.collections.embedding_map import embedding_map
from app.collections.map_colours import map_context
from app.collections.pick_table import pick_context
from app.models import User
from app.platform import forms
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.validation import BigInt
from app.platform.web import PageLead, check_csrf, is_htmx, render

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
router.include_router(page_actions.router)


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


@router.get("/collections/{name}")
def collection_page(
    request: Request, name: str, session: DB, user: PageLead, items_after: BigInt | None = None
) -> HTMLResponse:
    """The dashboard; the heavy parts (pool distributions, the map, the pick list) load as
    fragments of their own."""
    collection = service.get_collection(session, name)
    return render_dashboard(request, session, user, collection, items_after=items_after)


@router.get("/collections/{name}/scores")
def scores_fragment(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """Each score's distribution over the pool against the collection."""
    collection = service.get_collection(session, name)
    pool = dashboard.pool_datasets(session, collection)
    context = {
        "comparisons": distributions.score_comparison(session, collection, pool),
        "base": collection_url(collection.name),
    }
    return render(request, "collections/_scores.html", context)


@router.get("/collections/{name}/map")
def map_fragment(
    request: Request, name: str, session: DB, user: PageLead, colour: str = "", scorer: str = ""
) -> HTMLResponse:
    """The embedding map: a pool sample and the collection on two principal components,
    coloured by membership, status, source or a score; a lasso on it feeds the bulk form."""
    collection = service.get_collection(session, name)
    pool = dashboard.pool_datasets(session, collection)
    drawn = embedding_map(session, collection, pool)
    context = map_context(session, collection, drawn, colour, scorer)
    return render(request, "collections/_map.html", context)


@router.get("/collections/{name}/jobs")
def jobs_fragment(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """The collection's selection jobs with their progress; polls while one can move."""
    collection = service.get_collection(session, name)
    context = jobs_context(session, collection, collection_url(collection.name))
    return render(request, "collections/_jobs.html", context)


@router.get("/collections/{name}/items")
def items_fragment(
    request: Request, name: str, session: DB, user: PageLead, after: BigInt | None = None
) -> Response:
    """One page of the collection's items; a browser without htmx gets the dashboard."""
    collection = service.get_collection(session, name)
    if not is_htmx(request):
        target = collection_url(collection.name)
        if after is not None:
            target += f"?items_after={after}"
        return RedirectResponse(target + "#items", status_code=303)
    context = items_context(session, collection, collection_url(collection.name), after)
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
    score: str = "",
    sort: str = "",
    after: BigInt | None = None,
    cursor: str = "",
    similar_to: str = "",
) -> HTMLResponse:
    """Examples of a pool dataset not yet in the collection, searchable by words, source and
    score (keyset pages), sorted by a score, or by meaning (the nearest, one page)."""
    collection = service.get_collection(session, name)
    context = pick_context(
        session, collection, dataset=dataset, q=q, source=source, score=score, sort=sort,
        after=after, cursor=cursor, similar_to=similar_to,
    )  # fmt: skip
    return render(request, "collections/_pool.html", context)
