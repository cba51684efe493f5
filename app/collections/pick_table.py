"""The collection page's pick list: a pool dataset's examples not yet in the collection,
searched by words, source and score (keyset pages), sorted by a score, or ranked by meaning,
with score columns and a lead's bulk form."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from app.collections import dashboard
from app.collections.dashboard_view import collection_url
from app.datasets import service as datasets
from app.models import Collection, Example
from app.platform.errors import SiftError
from app.scoring.service import (
    BUILTIN_RECIPES,
    ScoreSort,
    list_scorers,
    score_columns,
    score_condition,
    sorted_page,
)

PICK_PAGE = 20


def pick_context(
    session: Session,
    collection: Collection,
    *,
    dataset: str = "",
    q: str = "",
    source: str = "",
    score: str = "",
    sort: str = "",
    after: int | None = None,
    cursor: str = "",
    similar_to: str = "",
) -> dict[str, Any]:
    """What `collections/_pool.html` shows."""
    base = collection_url(collection.name)
    pool = dashboard.pool_datasets(session, collection)
    names = [d.name for d in datasets.all_datasets(session)]
    chosen = dataset or (pool[0].name if pool else (names[0] if names else ""))
    examples: list[Example] = []
    similarity: dict[int, float] = {}
    next_url = notice = None
    order = None
    try:
        conditions = [score_condition(session, p) for p in score.split(",") if p.strip()]
        order = ScoreSort.parse(sort)
    except SiftError as exc:  # a typo in a filter: say so in the pick list
        notice, conditions = exc.message, []
    query = {"dataset": chosen, "q": q, "source": source, "score": score}
    query = {k: v for k, v in query.items() if v}
    found = datasets.get_dataset(session, chosen) if chosen else None
    narrowed: dict[str, Any] = {"q": q.strip(), "source": source.strip(), "conditions": conditions}
    if found is not None and similar_to.strip():
        try:
            ranked = dashboard.pick_similar(
                session, collection, found, similar_to.strip(), limit=PICK_PAGE, **narrowed
            )
        except SiftError as exc:  # no embeddings yet: say so in the pick list
            notice = exc.message
        else:
            examples = [e for e, _ in ranked]
            similarity = {e.id: cosine for e, cosine in ranked}
    elif found is not None and order is not None:
        base_query = dashboard.pickable(collection, found, **narrowed)
        try:
            examples, next_cursor = sorted_page(session, base_query, order, cursor, PICK_PAGE)
        except SiftError as exc:
            notice, order = exc.message, None
        else:
            if next_cursor:
                next_url = f"{base}/pool?{urlencode({**query, 'sort': order.param, 'cursor': next_cursor})}"
    if found is not None and not similar_to.strip() and order is None:
        examples, next_after = dashboard.pick_list(
            session, collection, found, after=after, limit=PICK_PAGE, **narrowed
        )
        if next_after is not None:
            next_url = f"{base}/pool?{urlencode({**query, 'after': next_after})}"
    columns = score_columns(session, examples, also=order.scorer if order else None)
    links = {}
    for label in columns.labels:
        then = order.flipped() if order and order.scorer == label else ScoreSort(label)
        links[label] = f"{base}/pool?{urlencode({**query, 'sort': then.param})}"
    return {
        "base": base,
        "dataset_names": names,
        "chosen": chosen,
        "q": q,
        "source": source,
        "score": score,
        "similar_to": similar_to,
        "similarity": similarity,
        "notice": notice,
        "examples": examples,
        "next_url": next_url,
        "first_url": f"{base}/pool?{urlencode({**query, **({'sort': order.param} if order else {})})}"
        if after is not None or cursor
        else None,
        "order": order,
        "score_columns": columns,
        "sort_links": links,
        "bulk_hidden": {"dataset": chosen, **{k: v for k, v in query.items() if k != "dataset"}},
        "bulk_count_url": "/bulk/count?" + urlencode({**query, "not_in": collection.name}),
        "scorers": scorer_choices(session),
        "collection_name": collection.name,
    }


def scorer_choices(session: Session) -> list[str]:
    """What "start scoring" offers: the built-in recipes, then the saved custom ones."""
    stored = [s.name for s in list_scorers(session) if s.name not in BUILTIN_RECIPES]
    return sorted(BUILTIN_RECIPES) + list(dict.fromkeys(stored))
