"""The bulk forms of the pages: one action on the ticked examples (or the ones a lasso on the
map enclosed), or on every example that matches the table's filter: on the dataset page, the
review queue and a collection's pick list and map."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from app.collections.service import get_collection
from app.datasets.service import get_dataset
from app.models import Dataset, ExampleStatus, Job
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.web import PageLead, check_csrf
from app.review.bulk import BulkAction, matching, start_bulk

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
# "All N matching": counted exactly up to this many, then "more than".
COUNT_CAP = 1_000_000
# The session key of a refusal, shown once beside the form on the next page.
FLASH = "bulk_error"


def _scores(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class BulkForm:
    """What every bulk form posts: the action and its inputs, and the ticked ids."""

    def __init__(
        self,
        action: Annotated[str, Form()],
        ids: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI reads the default, never changes it)
        reason: Annotated[str, Form()] = "",
        collection: Annotated[str, Form()] = "",
        value: Annotated[str, Form()] = "",
        annotators: Annotated[str, Form()] = "",
        scorer: Annotated[str, Form()] = "",
        endpoint: Annotated[str, Form()] = "",
        source: Annotated[str, Form()] = "",
        status: Annotated[str, Form()] = "",
        q: Annotated[str, Form()] = "",
        score: Annotated[str, Form()] = "",
        sort: Annotated[str, Form()] = "",
    ) -> None:
        self.action, self.ids, self.reason, self.collection = action, ids, reason, collection
        self.value = {"assign": annotators, "score": scorer}.get(action, value)
        self.endpoint, self.source, self.status, self.q = endpoint, source, status, q
        self.score, self.sort = score, sort

    def bulk(self, **scope: Any) -> BulkAction:
        """The action on the ticked ids, or on everything the filter matches when none is."""
        fields: dict[str, Any] = {
            "action": self.action,
            "reason": self.reason,
            "collection": self.collection.strip() or None,
            "value": self.value,
            "endpoint": self.endpoint.strip() or None,
            "source": self.source.strip() or None,
            "status": self.status or None,
            "q": self.q.strip() or None,
            "score": _scores(self.score),
            "ids": self.ids or None,
        }
        return BulkAction(**(fields | scope))

    def filters(self) -> dict[str, str]:
        """The table's filter and order, to go back to it."""
        pairs = (("source", self.source), ("status", self.status), ("q", self.q),
                 ("score", self.score), ("sort", self.sort))  # fmt: skip
        return {k: v for k, v in pairs if v}


Bulk = Annotated[BulkForm, Depends()]


def _outcome(matched: int, counts: dict[str, int] | None, job: Job | None) -> dict[str, int]:
    """What the page says afterwards (numbers only: the page writes the sentence)."""
    said = {"bulk_matched": matched}
    if counts is not None and "changed" in counts:
        said["bulk_changed"] = counts["changed"]
    if job is not None:
        said["bulk_job"] = job.id
    return said


def _back(path: str, query: dict[str, Any], anchor: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}#{anchor}", status_code=303)


def _run(
    request: Request,
    start: Callable[[], tuple[int, dict[str, int] | None, Job | None]],
    path: str,
    query: dict[str, Any],
    anchor: str,
) -> RedirectResponse:
    """Start the action and go back to the table saying what it did; a refusal (no reason, an
    unknown annotator or scorer) is said there too, beside the form (kept in the session for
    the next page, so that no link can put words on the page)."""
    try:
        done = start()
    except SiftError as exc:
        request.session[FLASH] = exc.message
        return _back(path, query, anchor)
    return _back(path, query | _outcome(*done), anchor)


@router.post("/datasets/{name}/bulk")
def dataset_bulk(
    request: Request, name: str, session: DB, user: PageLead, form: Bulk
) -> RedirectResponse:
    """One action on the ticked examples, or on every example matching the table's filter;
    back to the table (a large one runs as a job, shown in the dataset's jobs)."""
    dataset = get_dataset(session, name)
    path = f"/datasets/{quote(name, safe='')}"
    return _run(
        request,
        lambda: start_bulk(session, user, dataset, form.bulk()),
        path,
        form.filters(),
        "examples",
    )


@router.post("/review/queue/bulk")
def queue_bulk(
    request: Request,
    session: DB,
    user: PageLead,
    form: Bulk,
    queue_collection: Annotated[str, Form()] = "",
    queue_dataset: Annotated[str, Form()] = "",
    similar_to: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The same on a review queue: a collection's members or a dataset's examples with the
    queue's filters (its status "any" is every status; disputed examples only by ticking)."""
    status = form.status or ExampleStatus.CANDIDATE.value
    form.status = "" if status in ("any", "disputed") else status
    where = {"collection": queue_collection} if queue_collection else {"dataset": queue_dataset}
    back = where | form.filters() | {"status": status, "similar_to": similar_to}
    found = None if queue_collection else get_dataset(session, queue_dataset)
    if queue_collection:
        get_collection(session, queue_collection)

    def start() -> tuple[int, dict[str, int] | None, Job | None]:
        if status == "disputed" and not form.ids:
            raise InvalidInput("tick the disputed examples to act on", field="ids")
        scope = {"in_collection": queue_collection} if queue_collection else {}
        return start_bulk(session, user, found, form.bulk(**scope))

    query = {k: v for k, v in back.items() if v}
    return _run(request, start, "/review/queue", query, "table")


@router.post("/collections/{name}/bulk")
def collection_bulk(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    form: Bulk,
    dataset: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The same from a collection's page: the pick list (a pool dataset's examples not in the
    collection, by its filter, which the page then shows again) or the examples a lasso
    enclosed on the map (their ids)."""
    collection = get_collection(session, name)
    found = get_dataset(session, dataset) if dataset else None

    def start() -> tuple[int, dict[str, int] | None, Job | None]:
        if found is not None:
            return start_bulk(session, user, found, form.bulk(not_in_collection=collection.name))
        if not form.ids:
            raise InvalidInput("draw round some points on the map first", field="ids")
        return start_bulk(session, user, None, form.bulk())

    pick = {f"pick_{k}": v for k, v in ({"dataset": dataset} | form.filters()).items() if v}
    path = f"/collections/{quote(name, safe='')}"
    return _run(request, start, path, pick if found else {}, "pick" if found else "map")


@router.get("/bulk/count")
def count_fragment(
    session: DB,
    user: PageLead,
    dataset: str = "",
    collection: str = "",
    not_in: str = "",
    source: str = "",
    status: str = "",
    q: str = "",
    score: str = "",
) -> HTMLResponse:
    """How many examples "all matching" means for a table's filter (loaded after the page)."""
    found: Dataset | None = get_dataset(session, dataset) if dataset else None
    if status in ("any", "disputed"):
        status = ""
    bulk = BulkAction(
        action="accept",
        source=source or None,
        status=status or None,
        q=q or None,
        score=_scores(score),
        in_collection=collection or None,
        not_in_collection=not_in or None,
    )
    ids = matching(session, found, bulk).limit(COUNT_CAP + 1).subquery()
    count = session.scalar(select(func.count()).select_from(ids)) or 0
    text = f"more than {COUNT_CAP:,}" if count > COUNT_CAP else f"{count:,}"
    return HTMLResponse(f'<b data-bulk-count="{min(count, COUNT_CAP)}">{text}</b>')
