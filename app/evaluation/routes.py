"""JSON API for test sets, pairwise evaluations and IFEval runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.evaluation import results, service
from app.evaluation.answers import GenerationSettings
from app.evaluation.schemas import (
    EvaluationCreate,
    EvaluationOut,
    IFEvalCreate,
    ItemOut,
    PromptOut,
    RetryIn,
    TestSetCreate,
    TestSetDetail,
    TestSetOut,
)
from app.platform.db import DB
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import Id, IdempotencyKey

router = APIRouter(prefix="/api/v1", tags=["evaluation"])


@router.get("/test-sets", response_model=list[TestSetOut])
def list_test_sets(session: DB, _: ApiAnnotator) -> list[TestSetOut]:
    """Every test set, by name."""
    return [TestSetOut.model_validate(t) for t in service.list_test_sets(session)]


@router.post("/test-sets", response_model=TestSetOut, status_code=201)
def create_test_set(
    body: TestSetCreate, response: Response, session: DB, user: ApiLead
) -> TestSetOut:
    """Import a test set from `records`, a `dataset` or a `snapshot`; the same prompts under the
    same name again answer 200 with the existing set."""
    if body.records is not None:
        test_set, created = service.import_test_set_records(
            session, body.name, body.records, body.format, body.prompt_field, user
        )
    else:
        test_set, created = service.import_test_set_from(
            session, body.name, dataset=body.dataset, snapshot=body.snapshot, user=user
        )
    if not created:
        response.status_code = 200
    return TestSetOut.model_validate(test_set)


@router.get("/test-sets/{name}", response_model=TestSetDetail)
def get_test_set(name: str, session: DB, _: ApiAnnotator) -> TestSetDetail:
    """A test set with its prompts."""
    test_set = service.get_test_set(session, name)
    prompts = [PromptOut.model_validate(p) for p in service.prompts_of(session, test_set)]
    return TestSetDetail(**TestSetOut.model_validate(test_set).model_dump(), prompts=prompts)


@router.get("/evaluations", response_model=list[EvaluationOut])
def list_evaluations(session: DB, _: ApiAnnotator) -> list[EvaluationOut]:
    """The newest evaluations first, with their totals and winning scores."""
    runs = service.list_evaluations(session)
    return [EvaluationOut.model_validate(shown) for shown in results.summaries(session, runs)]


@router.post("/evaluations", response_model=EvaluationOut, status_code=202)
def start_evaluation(
    body: EvaluationCreate,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> EvaluationOut:
    """Evaluate model A against model B on a test set: answers, then the judge in both orders."""
    run = service.start_evaluation(
        session,
        body.model_a,
        body.model_b,
        body.test_set,
        body.judge,
        judge_prompt=body.judge_prompt,
        generation=GenerationSettings(body.max_tokens, body.temperature, body.top_p, body.seed),
        budget_usd=body.budget_usd,
        batch=body.batch,
        user=user,
        idempotency_key=idempotency_key,
    )
    return EvaluationOut.model_validate(results.summary(session, run))


@router.post("/evaluations/ifeval", response_model=EvaluationOut, status_code=202)
def start_ifeval(
    body: IFEvalCreate,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> EvaluationOut:
    """IFEval of one model: answers to IFEval's prompts (the 541 shipped, or `records` in its
    layout), checked by its rules; `metrics` holds the accuracies once prompts are checked."""
    run = service.start_ifeval(
        session,
        body.model,
        prompts=body.records,
        limit=body.limit,
        generation=GenerationSettings(body.max_tokens, body.temperature, body.top_p, body.seed),
        budget_usd=body.budget_usd,
        user=user,
        idempotency_key=idempotency_key,
    )
    return EvaluationOut.model_validate(results.summary(session, run))


@router.get("/evaluations/{run_id}", response_model=EvaluationOut)
def get_evaluation(run_id: Id, session: DB, _: ApiAnnotator) -> EvaluationOut:
    """An evaluation: state, progress, win / tie / lose totals and the winning score."""
    return EvaluationOut.model_validate(
        results.summary(session, service.get_evaluation(session, run_id))
    )


@router.post("/evaluations/{run_id}/retry", response_model=EvaluationOut, status_code=202)
def retry_evaluation(run_id: Id, body: RetryIn, session: DB, user: ApiLead) -> EvaluationOut:
    """Ask again what failed (answers or judge calls) in an evaluation that has ended."""
    service.retry_evaluation(session, run_id, budget_usd=body.budget_usd, user=user)
    return EvaluationOut.model_validate(
        results.summary(session, service.get_evaluation(session, run_id))
    )


@router.get("/evaluations/{run_id}/items", response_model=list[ItemOut])
def list_items(
    run_id: Id,
    session: DB,
    _: ApiAnnotator,
    verdict: Annotated[
        str | None, Query(description="win, tie, lose or error (IFEval: pass, fail or error)")
    ] = None,
) -> list[ItemOut]:
    """The evaluation's prompts with both answers, both verdicts and the combined one."""
    run = service.get_evaluation(session, run_id)
    return [ItemOut.model_validate(i) for i in service.list_items(session, run, verdict)]


@router.get("/evaluations/{run_id}/items/{item_id}", response_model=ItemOut)
def get_item(run_id: Id, item_id: Id, session: DB, _: ApiAnnotator) -> ItemOut:
    """One prompt of an evaluation, with both judge texts."""
    run = service.get_evaluation(session, run_id)
    return ItemOut.model_validate(service.get_item(session, run, item_id))
