"""The bulk forms of the pages: one action on the ticked examples (or the ones a lasso on the
map enclosed), or on every example that matches the table's filter: on the dataset page, the
review queue and a collection's pick list and map."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from app.collections.service import get_collection
from app.datasets.service import get_dataset
from app.models import Dataset, ExampleStatus, Job
from app.platform.db import DB
from app.platform.errors import InvalidInput
from app.platform.web import PageLead, check_csrf
from app.review.bulk import BulkAction, matching, start_bulk

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
# "All N matching": counted exactly up to this many, then "more than".
COUNT_CAP = 1_000_000


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


@router.post("/datasets/{name}/bulk")
def dataset_bulk(name: str, session: DB, user: PageLead, form: Bulk) -> RedirectResponse:
    """One action on the ticked examples, or on every example matching the table's filter;
    back to the table (a large one runs as a job, shown in the dataset's jobs)."""
    dataset = get_dataset(session, name)
    done = start_bulk(session, user, dataset, form.bulk())
    return _back(f"/datasets/{quote(name, safe='')}", form.filters() | _outcome(*done), "examples")


@router.post("/review/queue/bulk")
def queue_bulk(
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
    if status == "disputed" and not form.ids:
        raise InvalidInput("tick the disputed examples to act on", field="ids")
    form.status = "" if status in ("any", "disputed") else status
    if queue_collection:
        get_collection(session, queue_collection)
        done = start_bulk(session, user, None, form.bulk(in_collection=queue_collection))
    else:
        done = start_bulk(session, user, get_dataset(session, queue_dataset), form.bulk())
    where = {"collection": queue_collection} if queue_collection else {"dataset": queue_dataset}
    back = where | form.filters() | {"status": status, "similar_to": similar_to}
    return _back("/review/queue", {k: v for k, v in back.items() if v} | _outcome(*done), "table")


@router.post("/collections/{name}/bulk")
def collection_bulk(
    name: str,
    session: DB,
    user: PageLead,
    form: Bulk,
    dataset: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The same from a collection's page: the pick list (a pool dataset's examples not in the
    collection, by its filter) or the examples a lasso enclosed on the map (their ids)."""
    collection = get_collection(session, name)
    if dataset:
        bulk = form.bulk(not_in_collection=collection.name)
        done = start_bulk(session, user, get_dataset(session, dataset), bulk)
    else:
        if not form.ids:
            raise InvalidInput("draw round some points on the map first", field="ids")
        done = start_bulk(session, user, None, form.bulk())
    anchor = "pick" if dataset else "map"
    return _back(f"/collections/{quote(name, safe='')}", _outcome(*done), anchor)


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
