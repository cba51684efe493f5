"""The collection dashboard as rendered: what it shows (quotas, pool, review, recipe forms,
snapshots, items, jobs), for the page itself, its fragments and the writes that show it again."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.collections import dashboard, review_stats, service
from app.collections.service import CONSENSUS_RULES
from app.datasets import service as datasets
from app.datasets.service import any_active, dataset_url
from app.models import Collection, User
from app.platform.web import render
from app.review import service as review
from app.scoring.service import list_scorers
from app.selection.service import DEDUP_METHODS, METHODS

DOWNLOAD_FORMATS = ("alpaca", "sharegpt", "openai", "jsonl", "parquet", "dpo")
ITEMS_PAGE = 25


def collection_url(name: str) -> str:
    """The dashboard of a collection (names may hold any printable character but '/')."""
    return "/collections/" + quote(name, safe="")


def render_dashboard(
    request: Request,
    session: Session,
    user: User,
    collection: Collection,
    *,
    error: str | None = None,
    status: int = 200,
    items_after: int | None = None,
) -> HTMLResponse:
    """The collection's dashboard (an error beside the forms after a failed write)."""
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
        "reviewers": review_stats.review_progress(session, collection),
        "actions": review_stats.REVIEW_ACTIONS,
        "agreement": review_stats.agreement(session, collection),
        **overlap_context(session, collection),
        **review.questions_panel(session, collection),
        "review_url": "/review/queue?" + urlencode({"collection": collection.name}),
        "dataset_names": [d.name for d in datasets.all_datasets(session)],
        "pool_names": [d.name for d in pool],
        # The pick list's filters after a bulk action on it (bulk_page.py), to show it again.
        "pick_query": urlencode(
            {k[5:]: v for k, v in request.query_params.items() if k.startswith("pick_")}
        ),
        "scorers": sorted({s.name for s in list_scorers(session)}),
        "methods": METHODS,
        "cluster_methods": DEDUP_METHODS,
        "snapshots": service.list_snapshots(session, collection),
        "formats": DOWNLOAD_FORMATS,
        **items_context(session, collection, base, items_after),
        **jobs_context(session, collection, base),
    }
    return render(request, "collections/dashboard.html", context, status_code=status)


def overlap_context(session: Session, collection: Collection) -> dict[str, Any]:
    """With several annotators per example: the disputed count, its queue and the agreement
    figures; nothing more with one."""
    if collection.overlap <= 1:
        return {"consensus_rules": CONSENSUS_RULES}
    disputed_url = "/review/queue?" + urlencode(
        {"collection": collection.name, "status": "disputed"}
    )
    return {
        "consensus_rules": CONSENSUS_RULES,
        "disputed": review.count_disputed(session, collection),
        "disputed_url": disputed_url,
        "annotator_agreement": review.collection_agreement(session, collection),
    }


def items_context(
    session: Session, collection: Collection, base: str, after: int | None
) -> dict[str, Any]:
    """One page of the collection's items, for the dashboard and its items fragment."""
    items, next_after = dashboard.item_page(session, collection, after, ITEMS_PAGE)
    return {"items": items, "items_after": after, "items_next_after": next_after, "base": base}


def jobs_context(session: Session, collection: Collection, base: str) -> dict[str, Any]:
    """The collection's selection jobs, for the dashboard and its jobs fragment."""
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
