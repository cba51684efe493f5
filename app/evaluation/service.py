"""Test sets and evaluations: importing prompts, starting an evaluation, reading results."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import get_snapshot
from app.datasets.service import get_dataset
from app.evaluation import ifeval, judge
from app.evaluation.answers import ENDPOINT, MODEL, RUN, GenerationSettings, ModelRef, check_model
from app.evaluation.testsets import PromptDraft, parse_records, prompts_digest, read_file
from app.models import EvalItem, EvalPrompt, EvalRun, EvalTestSet, Example, Job, SnapshotItem, User
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.platform.jobs.dispatch import canonical_params, create_job, keyed_job, reused_key
from app.platform.llm.endpoints import get_endpoint, require_priced

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
CHUNK_SIZE = 32
VERDICTS = (judge.WIN, judge.TIE, judge.LOSE, judge.ERROR, "pass", "fail")


# ---------------------------------------------------------------- test sets


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidInput(
            f"name: {name!r} must be 1-200 letters, digits, '.', '_' or '-'", field="name"
        )
    return name


def store_test_set(
    session: Session,
    name: str,
    fmt: str,
    source: str,
    drafts: list[PromptDraft],
    user: User | None = None,
) -> tuple[EvalTestSet, bool]:
    """Store the prompts as test set `name`; (the set, whether it is new). The same prompts
    under the same name are the existing set; other prompts under a taken name are a conflict."""
    digest = prompts_digest(drafts)
    existing = session.scalar(select(EvalTestSet).where(EvalTestSet.name == _check_name(name)))
    if existing is not None:
        if existing.digest != digest:
            raise Conflict(f"test set {name!r} exists with other prompts: choose another name")
        return existing, False
    test_set = EvalTestSet(
        name=name,
        format=fmt,
        source=source[:500],
        prompt_count=len(drafts),
        max_turns=max(len(d.turns) for d in drafts),
        digest=digest,
        created_by_id=user.id if user else None,
    )
    session.add(test_set)
    session.flush()
    session.add_all(
        EvalPrompt(
            test_set_id=test_set.id,
            position=position,
            prompt_id=d.prompt_id,
            turns=d.turns,
            category=d.category,
            reference=d.reference,
            meta=d.meta,
        )
        for position, d in enumerate(drafts)
    )
    session.flush()
    return test_set, True


def import_test_set_file(
    session: Session,
    path: Path,
    name: str,
    fmt: str = "auto",
    prompt_field: str | None = None,
    user: User | None = None,
    source: str | None = None,
) -> tuple[EvalTestSet, bool]:
    """Import a test-set file (JSON list, JSONL or CSV); nothing is stored if a record is bad.
    `source` names where it came from (default: the file's name)."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    found, drafts = parse_records(read_file(path), fmt, prompt_field)
    return store_test_set(session, name, found, source or path.name, drafts, user)


def import_test_set_records(
    session: Session,
    name: str,
    records: list[Any],
    fmt: str = "auto",
    prompt_field: str | None = None,
    user: User | None = None,
) -> tuple[EvalTestSet, bool]:
    """Import records given in a request, numbered from 1."""
    found, drafts = parse_records(enumerate(records, 1), fmt, prompt_field)
    return store_test_set(session, name, found, "api", drafts, user)


def _example_drafts(rows: Iterable[tuple[str, Any, str | None]]) -> list[PromptDraft]:
    drafts = []
    for prompt_id, messages, category in rows:
        turns = [m["content"] for m in messages if m.get("role") == "user"]
        if not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise InvalidInput(f"example {prompt_id} has no user turn to ask")
        answers = [m["content"] for m in messages if m.get("role") == "assistant"]
        drafts.append(PromptDraft(prompt_id, turns, category, answers or None))
    if not drafts:
        raise InvalidInput("there are no prompts to import")
    return drafts


def import_test_set_from(
    session: Session,
    name: str,
    *,
    dataset: str | None = None,
    snapshot: int | str | None = None,
    user: User | None = None,
) -> tuple[EvalTestSet, bool]:
    """A test set of the user turns of a dataset's examples or a snapshot's items (their
    answers kept as references)."""
    if (dataset is None) == (snapshot is None):
        raise InvalidInput("give a dataset or a snapshot")
    if dataset is not None:
        source = get_dataset(session, dataset)
        rows = session.execute(
            select(Example.id, Example.messages, Example.category)
            .where(Example.dataset_id == source.id)
            .order_by(Example.id)
        )
        drafts = _example_drafts((str(i), m, c) for i, m, c in rows)
        return store_test_set(session, name, "dataset", f"dataset:{dataset}", drafts, user)
    assert snapshot is not None
    frozen = get_snapshot(session, snapshot)
    rows = session.execute(
        select(SnapshotItem.position, SnapshotItem.messages, SnapshotItem.category)
        .where(SnapshotItem.snapshot_id == frozen.id)
        .order_by(SnapshotItem.position)
    )
    drafts = _example_drafts((str(p + 1), m, c) for p, m, c in rows)
    return store_test_set(session, name, "snapshot", f"snapshot:{frozen.id}", drafts, user)


def get_test_set(session: Session, name: str) -> EvalTestSet:
    """The test set called `name`; NotFound otherwise."""
    test_set = session.scalar(select(EvalTestSet).where(EvalTestSet.name == name))
    if test_set is None:
        raise NotFound(f"no test set {name!r}; import one with: sift eval import-test-set")
    return test_set


def list_test_sets(session: Session) -> list[EvalTestSet]:
    """Every test set, by name."""
    return list(session.scalars(select(EvalTestSet).order_by(EvalTestSet.name)))


def prompts_of(session: Session, test_set: EvalTestSet) -> list[EvalPrompt]:
    """A test set's prompts in order."""
    return list(
        session.scalars(
            select(EvalPrompt)
            .where(EvalPrompt.test_set_id == test_set.id)
            .order_by(EvalPrompt.position)
        )
    )


# ---------------------------------------------------------------- evaluations


def choose_judge_prompt(requested: str, test_set: EvalTestSet) -> str:
    """`auto`: AlpaGasus' prompt for single-turn sets, MT-Bench's for multi-turn ones."""
    if requested == "auto":
        return "mt-bench" if test_set.max_turns > 1 else "alpagasus"
    if requested not in judge.JUDGE_PROMPTS:
        raise InvalidInput(
            f"judge_prompt: {requested!r} is not auto, {' or '.join(judge.JUDGE_PROMPTS)}",
            field="judge_prompt",
        )
    if requested == "alpagasus" and test_set.max_turns > 1:
        raise InvalidInput(
            f"judge_prompt: the AlpaGasus judge takes one turn, and {test_set.name} has "
            f"{test_set.max_turns}; use mt-bench",
            field="judge_prompt",
        )
    return requested


def start_evaluation(
    session: Session,
    model_a: str,
    model_b: str,
    test_set_name: str,
    judge_name: str,
    *,
    judge_prompt: str = "auto",
    generation: GenerationSettings | None = None,
    budget_usd: float | None = None,
    batch: bool = False,
    chunk_size: int = CHUNK_SIZE,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> EvalRun:
    """Queue an evaluation of model A against model B on a test set, judged in both orders
    (with `batch`, the endpoints' answers and the judge's calls go through the Batch API)."""
    refs = [ModelRef.parse(model_a), ModelRef.parse(model_b)]
    for ref in refs:
        check_model(session, ref)
    test_set = get_test_set(session, test_set_name)
    chosen = choose_judge_prompt(judge_prompt, test_set)
    judge_endpoint = get_endpoint(judge_name)
    if budget_usd is not None:
        if budget_usd <= 0:
            raise InvalidInput("budget: must be more than 0 USD", field="budget_usd")
        require_priced(judge_name, judge_endpoint)
        for ref in refs:
            if ref.kind == ENDPOINT:
                require_priced(ref.name, get_endpoint(ref.name))
    settings = generation or GenerationSettings()
    existing = keyed_job(session, user, idempotency_key)
    if existing is not None:
        found = session.scalar(select(EvalRun).where(EvalRun.job_id == existing.id))
        if found is None:  # the key started another kind of job
            raise reused_key(idempotency_key)
        asked = (str(refs[0]), str(refs[1]), test_set.id, judge_name.lower())
        params = {"judge_prompt": chosen, "generation": settings.as_dict()}
        if (found.model_a, found.model_b, found.test_set_id, found.judge) != asked or (
            canonical_params(found.params) != canonical_params(params)
        ):
            raise reused_key(idempotency_key)
        return found
    run = EvalRun(
        model_a=str(refs[0]),
        model_b=str(refs[1]),
        test_set=test_set.name,
        test_set_id=test_set.id,
        judge=judge_name.lower(),
        params={"judge_prompt": chosen, "generation": settings.as_dict()},
        state="queued",
        created_by_id=user.id if user else None,
    )
    session.add(run)
    session.flush()
    _queue_job(session, run, chunk_size=chunk_size, budget_usd=budget_usd, user=user,
               idempotency_key=idempotency_key, batch=batch)  # fmt: skip
    return run


def start_ifeval(
    session: Session,
    model: str,
    *,
    prompts: Path | list[Any] | None = None,
    limit: int | None = None,
    generation: GenerationSettings | None = None,
    budget_usd: float | None = None,
    chunk_size: int = CHUNK_SIZE,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> EvalRun:
    """Queue an IFEval run of one model: on the shipped 541 prompts, or on a file or records in
    IFEval's layout (stored as a test set named by its content); the first `limit` if given."""
    ref = ModelRef.parse(model)
    check_model(session, ref)
    if limit is not None and limit < 1:
        raise InvalidInput("limit: must be at least 1", field="limit")
    if budget_usd is not None and (budget_usd <= 0 or ref.kind != ENDPOINT):
        raise InvalidInput("budget: more than 0 USD, for an endpoint's answers", field="budget_usd")
    if budget_usd is not None:
        require_priced(ref.name, get_endpoint(ref.name))
    found, drafts, source = _ifeval_prompts(prompts)
    ifeval.check_instruction_ids(i for d in drafts for i in d.meta["instruction_id_list"])
    name = ifeval.SHIPPED_TEST_SET if prompts is None else f"ifeval-{prompts_digest(drafts)[:12]}"
    test_set, _ = store_test_set(session, name, found, source, drafts, user)
    params = {"generation": (generation or GenerationSettings()).as_dict(), "limit": limit}
    existing = keyed_job(session, user, idempotency_key)
    if existing is not None:
        run = session.scalar(select(EvalRun).where(EvalRun.job_id == existing.id))
        asked = (ifeval.KIND, str(ref), test_set.id, canonical_params(params))
        if (
            run is None
            or (run.kind, run.model_a, run.test_set_id, canonical_params(run.params)) != asked
        ):
            raise reused_key(idempotency_key)
        return run
    run = EvalRun(kind=ifeval.KIND, model_a=str(ref), model_b="", test_set=test_set.name,
                  test_set_id=test_set.id, judge="", params=params, state="queued",
                  created_by_id=user.id if user else None)  # fmt: skip
    session.add(run)
    session.flush()
    _queue_job(session, run, chunk_size=chunk_size, budget_usd=budget_usd, user=user,
               idempotency_key=idempotency_key)  # fmt: skip
    return run


def _ifeval_prompts(prompts: Path | list[Any] | None) -> tuple[str, list[PromptDraft], str]:
    """(format, prompts, source) of IFEval prompts: the shipped ones, a file's or records'."""
    if isinstance(prompts, list):
        return (*parse_records(enumerate(prompts, 1), "ifeval"), "api")
    if prompts is not None and not prompts.is_file():
        raise InvalidInput(f"no such file: {prompts}", field="prompts")
    path = prompts or ifeval.shipped_prompts()
    return (*parse_records(read_file(path), "ifeval"), path.name)


def _queue_job(
    session: Session,
    run: EvalRun,
    *,
    chunk_size: int,
    budget_usd: float | None,
    user: User | None,
    idempotency_key: str | None = None,
    batch: bool = False,
) -> Job:
    models = [run.model_a] if run.kind == ifeval.KIND else [run.model_a, run.model_b]
    # A model of a training run generates locally: that is work for the GPU workers.
    queue = "gpu" if any(ModelRef.parse(m).kind in (RUN, MODEL) for m in models) else "io"
    prompts = session.get(EvalTestSet, run.test_set_id)
    total = prompts.prompt_count if prompts else None
    if total is not None and run.params.get("limit"):
        total = min(total, run.params["limit"])
    job = create_job(
        session,
        "evaluate",
        {"run_id": run.id, "chunk_size": chunk_size} | ({"batch": True} if batch else {}),
        queue=queue,
        user=user,
        total=total,
        idempotency_key=idempotency_key,
    )
    job.budget_usd = budget_usd
    run.job_id = job.id
    return job


def retry_evaluation(
    session: Session,
    run_id: int,
    *,
    budget_usd: float | None = None,
    user: User | None = None,
) -> Job:
    """Queue a new job for an ended evaluation: it asks again only what failed (answers or
    judge calls); what was read, verdict or unreadable, stays."""
    run = get_evaluation(session, run_id)
    current = session.get(Job, run.job_id) if run.job_id else None
    if current is not None and not current.is_terminal:
        raise Conflict(f"evaluation {run_id} is {current.state}: wait for it, or cancel it")
    if budget_usd is not None and budget_usd <= 0:
        raise InvalidInput("budget: must be more than 0 USD", field="budget_usd")
    chunk_size = current.params.get("chunk_size", CHUNK_SIZE) if current else CHUNK_SIZE
    batch = bool(current and current.params.get("batch"))  # a retry runs as the run did
    return _queue_job(
        session, run, chunk_size=chunk_size, budget_usd=budget_usd, user=user, batch=batch
    )


def get_evaluation(session: Session, run_id: int) -> EvalRun:
    """The evaluation with this id; NotFound otherwise."""
    run = session.get(EvalRun, run_id)
    if run is None:
        raise NotFound(f"no evaluation {run_id}")
    return run


def list_evaluations(session: Session, limit: int = 100) -> list[EvalRun]:
    """The newest evaluations first."""
    return list(session.scalars(select(EvalRun).order_by(EvalRun.id.desc()).limit(limit)))


def list_items(session: Session, run: EvalRun, verdict: str | None = None) -> list[EvalItem]:
    """An evaluation's items in test-set order, optionally only those with one verdict."""
    query = select(EvalItem).where(EvalItem.run_id == run.id).order_by(EvalItem.position)
    if verdict is not None:
        if verdict not in VERDICTS:
            raise InvalidInput(f"verdict: {verdict!r} is not one of {', '.join(VERDICTS)}")
        query = query.where(EvalItem.verdict == verdict)
    return list(session.scalars(query))


def get_item(session: Session, run: EvalRun, item_id: int) -> EvalItem:
    """One item of this evaluation; NotFound for another evaluation's item."""
    item = session.get(EvalItem, item_id)
    if item is None or item.run_id != run.id:
        raise NotFound(f"evaluation {run.id} has no item {item_id}")
    return item
