"""Cross-site scripting: hostile text in every field a user or a model can fill is loaded through
the services, then every page of the app is opened in Chromium. The canary `window.__xss` is never
set, no `javascript:` link survives, nothing breaks the Content-Security-Policy, the hostile text
is shown as text, and `{{7*7}}` is never evaluated.

The pages come from `create_app().routes`: a page added later is visited without editing this
test, provided its path parameters name something seeded here (see VALUES); a page whose
parameters are not is a failure until it is seeded or listed in NOT_VISITED with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.datasets.service import create_dataset
from app.evaluation.service import store_test_set
from app.evaluation.testsets import PromptDraft
from app.models import User
from app.models.evaluation import EvalItem, EvalRun
from app.models.experiments import Experiment, ExperimentArm
from app.models.review import ReviewAction
from app.models.training import TrainingRun
from app.platform.jobs.dispatch import create_job, run_jobs_here
from app.review.service import decide
from app.users.service import create_user
from tests.browser.conftest import errors_of, screenshot
from tests.factories import make_example, unique
from tests.web.surface import Endpoint, endpoints

# Each payload carries a number, so that "{{7*7}}" evaluated would show as "XSS<n> 49".
PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload=window.__xss=1>',
    "javascript:window.__xss=1",
    "[x](javascript:window.__xss=1) <b onmouseover=window.__xss=1>raw</b>",
    "</textarea><script>window.__xss=1</script>",
    "'-alert(1)-'\" onfocus=window.__xss=1 autofocus x=\"",
]


def hostile(n: int) -> str:
    """Payload n, marked so that a template evaluation would show."""
    return f"XSS{n} {PAYLOADS[n % len(PAYLOADS)]} {{{{7*7}}}}"


def markdown(n: int) -> str:
    """Markdown with raw HTML, a javascript: link and an image that runs code."""
    return (
        f"# Guide XSS{n} {{{{7*7}}}}\n\n<script>window.__xss=1</script>\n\n"
        "[click](javascript:window.__xss=1) ![i](x onerror=window.__xss=1)\n\n"
        '<a href="javascript:window.__xss=1">raw link</a>\n'
    )


# Routes whose path parameters are not seeded here, and why.
NOT_VISITED = {
    "GET /training/{run_id}/artifacts/{path:path}": "serves files of a finished run, not HTML",
}
# Seeded records the path parameters name, by parameter (or by "segment/parameter").
ParamValues = dict[str, Any]


@pytest.fixture(scope="module")
def seeded(
    db: Callable[[], AbstractContextManager[Session]], users: dict[str, User]
) -> ParamValues:
    """Hostile text everywhere, written through the services; the values for path parameters."""
    with db() as session:
        lead, annotator = users["lead"], users["annotator"]
        # Names cannot hold "/": they are path segments.
        dataset = create_dataset(session, f"{unique('pool')} " + hostile(1).replace("/", ""))
        dataset.description = markdown(2)
        examples = [
            make_example(
                session,
                dataset,
                record={"instruction": hostile(i), "input": hostile(i + 1), "output": markdown(i)},
                source=hostile(i + 2),
                category=hostile(i + 3),
                meta={"note": hostile(i + 4), hostile(i + 5): "key"},
            )
            for i in range(len(PAYLOADS))
        ]
        chat = make_example(
            session,
            dataset,
            messages=[
                {"role": "system", "content": hostile(20)},
                {"role": "user", "content": hostile(21)},
                {"role": "assistant", "content": markdown(22)},
            ],
        )
        collection = create_collection(
            session,
            f"{unique('set')} " + hostile(3).replace("/", ""),
            description=hostile(30),
            guidelines=markdown(31),
            user=lead,
        )
        add_items(session, collection, [e.id for e in examples], user=lead, reason=hostile(32))
        snapshot, _ = create_snapshot(session, collection, note=hostile(33), user=lead)
        decision = decide(
            session, annotator, examples[0].id, ReviewAction.REJECT, version=1, reason=hostile(34)
        )
        person = create_user(session, hostile(35)[:100].replace("/", ""), "annotator", "pw")
        run_jobs_here(session)
        job = create_job(
            session, "import", {"path": hostile(36), "format": hostile(37)}, queue="cpu",
            user=lead, dataset_id=dataset.id,
        )  # fmt: skip
        # Failed, as a job with an error is: a queued one would be run by other browser tests.
        job.state, job.error = "failed", hostile(38)
        run = TrainingRun(
            snapshot_id=snapshot.id, base_model=hostile(39), params={"note": hostile(40)},
            logs=hostile(41), created_by_id=lead.id,
        )  # fmt: skip
        session.add(run)
        evaluation, item = seed_evaluation(session, lead)
        experiment = Experiment(
            name=unique("experiment"), dataset_id=dataset.id, budget=10, base_model=hostile(42),
            params={"note": hostile(43)}, evaluation={"judge": hostile(44)}, created_by_id=lead.id,
        )  # fmt: skip
        session.add(experiment)
        session.flush()
        session.add(ExperimentArm(experiment_id=experiment.id, position=0, name=hostile(45)[:100],
                                  spec=hostile(46)[:200]))  # fmt: skip
        session.flush()
        return {
            "experiments/name": experiment.name,
            "datasets/name": dataset.name,
            "collections/name": collection.name,
            "example_id": examples[1].id,
            "decision_id": decision.id,  # an annotator's, waiting for the lead's second pass
            "snapshot_id": snapshot.id,
            "user_id": person.id,
            "job_id": job.id,
            "training/run_id": run.id,
            "evaluations/run_id": evaluation.id,
            "item_id": item.id,
            "_chat_id": chat.id,
            "_examples": [e.id for e in examples],
        }


def seed_evaluation(session: Session, lead: User) -> tuple[EvalRun, EvalItem]:
    """A test set through the service, and a judged run with one item (what the judge job writes)."""
    drafts = [PromptDraft(hostile(60)[:90], [hostile(61), hostile(62)], category=hostile(63))]
    test_set, _ = store_test_set(session, unique("tests"), "jsonl", hostile(64), drafts, lead)
    run = EvalRun(
        model_a=hostile(65), model_b=hostile(66), test_set=test_set.name,
        test_set_id=test_set.id, judge=hostile(67), params={"judge_prompt": hostile(68)},
        state="succeeded", wins=1, created_by_id=lead.id,
    )  # fmt: skip
    session.add(run)
    session.flush()
    item = EvalItem(
        run_id=run.id, prompt_id=drafts[0].prompt_id, position=0, prompt=hostile(61),
        turns=drafts[0].turns, category=hostile(63), answers_a=[markdown(69)],
        answers_b=[hostile(70)], verdict_ab="a", verdict_ba="b", verdict="tie",
        judge_ab=markdown(71), judge_ba=hostile(72), error=hostile(73),
    )  # fmt: skip
    session.add(item)
    session.flush()
    return run, item


def fill(endpoint: Endpoint, values: ParamValues) -> str | None:
    """The page's URL with its path parameters naming seeded records; None if one is unknown."""
    chosen = {}
    segments = endpoint.path.split("/")
    for name in endpoint.path_params:
        before = next(segments[i - 1] for i, s in enumerate(segments) if s.startswith("{" + name))
        key = f"{before}/{name}" if f"{before}/{name}" in values else name
        if key not in values:
            return None
        chosen[name] = values[key]
    return endpoint.url(chosen)


def hostile_query(endpoint: Endpoint) -> dict[str, str]:
    """Hostile text for each text query parameter (reflected cross-site scripting)."""
    return {
        f.alias: hostile(80 + i)
        for i, f in enumerate(endpoint.params("query_params"))
        if f.field_info.annotation in (str, str | None)
    }


@pytest.fixture(scope="module")
def page_urls(seeded: ParamValues) -> list[str]:
    """Every GET page of the app, filled with the seeded records, plain and with hostile queries."""
    from app.entrypoints.web import create_app

    urls, unknown = [], []
    for endpoint in endpoints(create_app()):
        if (
            endpoint.method != "GET"
            or endpoint.api
            or endpoint.public
            or str(endpoint) in NOT_VISITED
        ):
            continue
        url = fill(endpoint, seeded)
        if url is None:
            unknown.append(str(endpoint))
            continue
        urls.append(url)
        query = hostile_query(endpoint)
        if query:
            urls.append(f"{url}?{urlencode(query)}")
    assert not unknown, f"pages whose parameters nothing seeded here names: {unknown}"
    dataset, collection = seeded["datasets/name"], seeded["collections/name"]
    urls += [
        f"/review/queue?{urlencode({'collection': collection})}",
        f"/review/queue?{urlencode({'dataset': dataset})}",
        f"/review/examples/{seeded['_chat_id']}?{urlencode({'collection': collection})}",
        f"/examples/{seeded['_chat_id']}",
    ]
    return urls


PROBE = """() => ({
    canary: window.__xss !== undefined,
    scriptLinks: [...document.querySelectorAll('[href], [src], [action], [formaction]')]
        .filter(e => ['href', 'src', 'action', 'formaction'].some(
            a => (e.getAttribute(a) || '').trim().toLowerCase().startsWith('javascript:')))
        .map(e => e.outerHTML),
    handlers: [...document.querySelectorAll('*')]
        .flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
    text: document.body ? document.body.innerText : '',
})"""


def evaluated(text: str) -> bool:
    """True when some "{{7*7}}" of the hostile text shows as 49."""
    return any(
        hostile(n).replace("{{7*7}}", "49") in text or f"Guide XSS{n} 49" in text for n in range(80)
    )


def visit(page: Any, url: str) -> dict[str, Any] | None:
    """Open a page and probe it; None for a download (an export is no page)."""
    try:
        response = page.goto(url, wait_until="load")
    except Exception as error:  # Playwright raises when a navigation turns into a download
        if "Download is starting" in str(error):
            return None
        raise
    page.mouse.move(5, 5)  # hover handlers would run now
    return dict(page.evaluate(PROBE)) | {"status": response.status if response else None}


def test_hostile_text_never_runs(page_as: Callable[..., Any], page_urls: list[str]) -> None:
    page = page_as("admin")
    problems, shown = [], 0
    for url in page_urls:
        found = visit(page, url)
        if found is None:
            continue
        if found["status"] is None or found["status"] >= 500:
            problems.append(f"{url}: answered {found['status']}")
        if found["canary"]:
            problems.append(f"{url}: the canary was set")
        problems += [f"{url}: a javascript: link {link}" for link in found["scriptLinks"]]
        problems += [f"{url}: an event handler {h}" for h in found["handlers"]]
        problems += [f"{url}: {e}" for e in errors_of(page)]
        errors_of(page).clear()
        if evaluated(found["text"]):
            problems.append(f"{url}: a template expression was evaluated")
        shown += "XSS" in found["text"]
    assert not problems, "\n".join(problems)
    assert shown >= len(page_urls) // 2, "most pages should show some of the hostile text"


def visible_text(page: Any, url: str) -> str:
    """The text a page shows."""
    found = visit(page, url)
    assert found is not None
    assert not found["canary"]
    return str(found["text"])


def test_hostile_text_is_shown_as_written(
    page_as: Callable[..., Any], seeded: ParamValues, users: dict[str, User]
) -> None:
    page = page_as("admin")
    dataset, collection = seeded["datasets/name"], seeded["collections/name"]
    listing = visible_text(page, "/datasets")
    assert dataset in listing
    pool = visible_text(page, f"/datasets/{dataset}")
    for n in range(len(PAYLOADS)):
        assert hostile(n) in pool  # instruction shown verbatim, "{{7*7}}" included
    example = visible_text(page, f"/examples/{seeded['_examples'][0]}")
    assert hostile(0) in example and hostile(1) in example and "XSS4" in example
    chat = visible_text(page, f"/examples/{seeded['_chat_id']}")
    assert hostile(20) in chat and hostile(21) in chat
    dashboard = visible_text(page, f"/collections/{collection}")
    assert collection in dashboard and hostile(30) in dashboard
    assert page.locator("textarea[name=guidelines]").input_value() == markdown(31)
    review = visible_text(
        page, f"/review/examples/{seeded['_chat_id']}?{urlencode({'collection': collection})}"
    )
    screenshot(page, "xss-review")
    # The guidelines rendered from Markdown: raw HTML and the javascript: link stay text.
    assert "Guide XSS31 {{7*7}}" in review
    assert "<script>window.__xss=1</script>" in review
    assert '<a href="javascript:window.__xss=1">raw link</a>' in review
    assert visible_text(page, "/jobs").count("XSS38") >= 1
    assert hostile(35)[:100].replace("/", "") in visible_text(page, "/admin/users")
    assert "XSS41" in visible_text(page, f"/training/{seeded['training/run_id']}")
    evaluation = visible_text(page, f"/evaluations/{seeded['evaluations/run_id']}")
    assert hostile(65) in evaluation and hostile(66) in evaluation


def test_the_probe_sees_what_runs(page_as: Callable[..., Any]) -> None:
    """The checks above can fail: on a page without the policy, injected payloads are caught."""
    page = page_as(None)
    page.set_content(
        '<img src=x onerror="window.__xss=1"><a href="javascript:window.__xss=1">x</a> XSS1 49'
    )
    page.wait_for_function("window.__xss === 1")
    found = page.evaluate(PROBE)
    assert found["canary"] and found["scriptLinks"] and found["handlers"] == ["IMG onerror"]
