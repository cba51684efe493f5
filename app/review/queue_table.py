"""The review queue page's table: the next examples waiting for this person (assigned ones
first), or every waiting example sorted by a score, with score columns, and the bulk form's
inputs for a lead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from app.models import Role, User
from app.platform.errors import SiftError
from app.review import queue as queues
from app.review.assignments import assignees_of
from app.scoring.service import (
    BUILTIN_RECIPES,
    ScoreSort,
    list_scorers,
    score_columns,
    sorted_page,
)

PAGE_SIZE = 20


def queue_table(
    session: Session, queue: queues.Queue, user: User, params: Mapping[str, str]
) -> dict[str, Any]:
    """How many wait; the table's rows, its score columns with their sort links, paging and the
    bulk form; `params`: the page's query (`sort`, a scorer; `cursor`, the page)."""
    sort, cursor = params.get("sort", ""), params.get("cursor", "")
    notice = ""
    order = None
    try:
        order = ScoreSort.parse(sort)
    except SiftError as exc:
        notice = exc.message
    next_url = None
    if order is not None and queue.ranked is None:
        try:
            rows, next_cursor = sorted_page(
                session, queues.waiting_examples(queue, user), order, cursor, PAGE_SIZE
            )
        except SiftError as exc:
            notice, order = exc.message, None
        else:
            if next_cursor:
                query = {**queue.params, "sort": order.param, "cursor": next_cursor}
                next_url = f"/review/queue?{urlencode(query)}#table"
    if order is None or queue.ranked is not None:
        order = None
        waiting, capped, rows = queues.count_and_upcoming(session, queue, user, PAGE_SIZE)
    else:
        waiting, capped = queues.count_waiting(session, queue, user)
    columns = score_columns(session, rows, also=order.scorer if order else None)
    links = {}
    for label in columns.labels:
        then = order.flipped() if order and order.scorer == label else ScoreSort(label)
        links[label] = f"/review/queue?{urlencode({**queue.params, 'sort': then.param})}#table"
    is_lead = user.has_role(Role.LEAD)
    hidden = {
        ("queue_collection" if queue.collection else "queue_dataset"): queue.name,
        **{k: v for k, v in queue.params.items() if k not in ("collection", "dataset")},
        "status": queue.status,
    }
    count = {"status": queue.status, "source": queue.source, "q": queue.q, "score": queue.score}
    count |= {"collection": queue.name} if queue.collection else {"dataset": queue.name}
    return {
        "waiting": waiting,
        "capped": capped,
        "upcoming": rows,
        "table_notice": notice,
        "order": order,
        "score_columns": columns,
        "sort_links": links,
        "next_url": next_url,
        "assignees": assignees_of(session, [e.id for e in rows]),
        "bulk": is_lead and bool(rows) and queue.ranked is None,
        "bulk_hidden": hidden | ({"sort": order.param} if order else {}),
        "bulk_count_url": "/bulk/count?" + urlencode({k: v for k, v in count.items() if v}),
        "scorers": scorer_names(session) if is_lead else [],
    }


def scorer_names(session: Session) -> list[str]:
    """What "start scoring" offers: the built-in recipes, then the saved custom ones."""
    stored = [s.name for s in list_scorers(session) if s.name not in BUILTIN_RECIPES]
    return sorted(BUILTIN_RECIPES) + list(dict.fromkeys(stored))
