"""Experiments: one pool, one budget, several arms (selection recipes, a collection or snapshot,
the whole pool), each frozen as a snapshot, trained with the same base model, config and seed,
and scored on IFEval the same way. Everything an arm made is reused when it is run again."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections import service as collections
from app.datasets.service import get_dataset
from app.evaluation import service as evaluation
from app.evaluation.service import GenerationSettings
from app.experiments import heldout
from app.experiments.schemas import ExperimentCreate
from app.models import (
    Dataset,
    Example,
    Experiment,
    ExperimentArm,
    Snapshot,
    SnapshotItem,
    TrainingRun,
    User,
)
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.platform.llm.endpoints import get_endpoint
from app.selection import service as selection
from app.training import service as training
from app.training.service import TrainingParams

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Arms that need a value after the colon, and those that take none.
VALUED = ("threshold", "recipe", "collection", "snapshot")
POOL = "pool"


@dataclass(frozen=True)
class ArmSpec:
    """`random`, `pool`, `threshold:EXPR`, `recipe:NAME`, `collection:NAME`, `snapshot:ID` or
    any selection method by name (`deita`, `lima-quota`, ...)."""

    kind: str
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> ArmSpec:
        """An arm from its text; InvalidInput naming what is wrong."""
        kind, _, value = text.strip().partition(":")
        kind, value = kind.strip().lower(), value.strip()
        if kind in VALUED and not value:
            raise InvalidInput(f"arm: {text!r} needs a value after '{kind}:'", field="arm")
        if kind not in VALUED and value:
            raise InvalidInput(f"arm: {kind!r} takes no value", field="arm")
        if kind not in (*VALUED, POOL, *selection.METHODS):
            known = ", ".join((POOL, *selection.METHODS, *(f"{k}:..." for k in VALUED)))
            raise InvalidInput(f"arm: {text!r} is not one of {known}", field="arm")
        if kind == "snapshot" and not value.isdigit():
            raise InvalidInput(f"arm: snapshot id {value!r} is not a number", field="arm")
        return cls(kind, value)

    @property
    def name(self) -> str:
        """The arm's name on the leaderboard: its text."""
        return f"{self.kind}:{self.value}" if self.value else self.kind


def create_experiment(
    session: Session,
    name: str,
    dataset: str,
    budget: int,
    arms: list[str],
    base_model: str,
    params: TrainingParams,
    *,
    ifeval_prompts: int | None = None,
    max_tokens: int = 512,
    judge: str | None = None,
    test_set: str | None = None,
    baseline: str | None = None,
    heldout: float | None = None,
    user: User | None = None,
) -> Experiment:
    """A new experiment with its arms; the base model is checked now, nothing runs yet. With a
    judge, every arm is also judged against the baseline arm (default: the first) on a test
    set, in both answer orders. `heldout` (a fraction below 1 or a count) draws the held-out
    split, seeded with the training seed, from the pool's examples that no collection or
    snapshot arm holds: no arm may select them, and every run's loss is measured on them."""
    if not NAME.match(name):
        raise InvalidInput("name: 1-100 letters, digits, '.', '_' or '-'", field="name")
    if session.scalar(select(Experiment).where(Experiment.name == name)) is not None:
        raise Conflict(f"an experiment called {name!r} exists already")
    if budget < 1:
        raise InvalidInput("budget: at least 1", field="budget")
    specs = [ArmSpec.parse(text) for text in arms]
    if not specs:
        raise InvalidInput("arms: give at least one --arm", field="arm")
    if len({s.name for s in specs}) != len(specs):
        raise InvalidInput("arms: each arm once", field="arm")
    GenerationSettings(max_tokens=max_tokens)  # checks the bounds
    pairwise = _pairwise_settings(session, specs, judge, test_set, baseline)
    pool = get_dataset(session, dataset)
    heldout_ids = _draw_heldout(session, pool, specs, heldout, params.seed)
    experiment = Experiment(
        name=name,
        dataset_id=pool.id,
        budget=budget,
        base_model=training.check_base_model(base_model, params.template),
        params=params.model_dump(),
        evaluation={
            "ifeval": ifeval_prompts,
            "max_tokens": max_tokens,
            "heldout": heldout,
            **pairwise,
        },
        heldout_ids=heldout_ids,
        created_by_id=user.id if user else None,
    )
    session.add(experiment)
    session.flush()
    session.add_all(
        ExperimentArm(experiment_id=experiment.id, position=i, name=s.name, spec=s.name)
        for i, s in enumerate(specs)
    )
    session.flush()
    return experiment


def create_from_request(session: Session, body: ExperimentCreate, user: User | None) -> Experiment:
    """An experiment from the API's body or the page's form (the fields of the command)."""
    params = training.build_params(body.preset, **body.overrides())
    return create_experiment(
        session, body.name, body.dataset, body.budget, body.arms, body.base_model, params,
        ifeval_prompts=parse_eval(body.eval), max_tokens=body.max_tokens, judge=body.judge,
        test_set=body.test_set, baseline=body.baseline, heldout=body.heldout, user=user,
    )  # fmt: skip


def _draw_heldout(
    session: Session, pool: Dataset, specs: list[ArmSpec], asked: float | None, seed: int
) -> list[int]:
    if asked is None:
        return []
    fixed: set[int] = set()  # what the collection and snapshot arms hold: never held out
    for spec in specs:
        if spec.kind in ("collection", "snapshot"):
            fixed |= set(_fixed_ids(session, spec))
    query = select(Example.id).where(Example.dataset_id == pool.id)
    candidates = [i for i in session.scalars(query) if i not in fixed]
    return heldout.draw_heldout(candidates, asked, seed)


def _fixed_ids(session: Session, spec: ArmSpec) -> list[int]:
    if spec.kind == "collection":
        return collections.item_ids(session, collections.get_collection(session, spec.value))
    return snapshot_example_ids(session, collections.get_snapshot(session, int(spec.value)).id)


def snapshot_example_ids(session: Session, snapshot_id: int) -> list[int]:
    """The pool examples a snapshot froze (an item whose example is gone has none)."""
    query = select(SnapshotItem.example_id).where(SnapshotItem.snapshot_id == snapshot_id)
    return [i for i in session.scalars(query) if i is not None]


def _pairwise_settings(
    session: Session,
    specs: list[ArmSpec],
    judge: str | None,
    test_set: str | None,
    baseline: str | None,
) -> dict[str, str]:
    if judge is None:
        if test_set or baseline:
            raise InvalidInput("judge: a test set or a baseline needs a judge", field="judge")
        return {}
    get_endpoint(judge)  # raises, naming the endpoints there are
    if not test_set:
        raise InvalidInput("test_set: the judge compares answers on a test set", field="test_set")
    evaluation.get_test_set(session, test_set)
    names = [s.name for s in specs]
    chosen = ArmSpec.parse(baseline).name if baseline else names[0]
    if chosen not in names:
        raise InvalidInput(f"baseline: {baseline!r} is not one of the arms", field="baseline")
    return {"judge": judge.lower(), "test_set": test_set, "baseline": chosen}


def parse_eval(text: str) -> int | None:
    """`ifeval` (every prompt: None) or `ifeval:N` (the first N); InvalidInput otherwise."""
    kind, _, count = text.strip().partition(":")
    if kind != "ifeval" or (count and not count.isdigit()) or count == "0":
        raise InvalidInput(f"eval: {text!r}: write ifeval or ifeval:N", field="eval")
    return int(count) if count else None


def get_experiment(session: Session, name: str) -> Experiment:
    """The experiment called `name`; NotFound otherwise."""
    found = session.scalar(select(Experiment).where(Experiment.name == name))
    if found is None:
        raise NotFound(f"no experiment {name!r}")
    return found


def list_experiments(session: Session) -> list[Experiment]:
    """Every experiment, newest first."""
    return list(session.scalars(select(Experiment).order_by(Experiment.id.desc())))


def arms_of(session: Session, experiment: Experiment) -> list[ExperimentArm]:
    """The experiment's arms in the order given."""
    query = select(ExperimentArm).where(ExperimentArm.experiment_id == experiment.id)
    return list(session.scalars(query.order_by(ExperimentArm.position)))


def build_snapshot(session: Session, experiment: Experiment, arm: ExperimentArm) -> Snapshot:
    """The arm's snapshot: made once (a selection frozen through a collection of its own, a
    collection frozen, or the snapshot named), then kept on the arm."""
    if arm.snapshot_id is not None:
        return collections.get_snapshot(session, arm.snapshot_id)
    spec = ArmSpec.parse(arm.spec)
    if spec.kind == "snapshot":
        snapshot = collections.get_snapshot(session, int(spec.value))
    elif spec.kind == "collection":
        snapshot, _ = collections.create_snapshot(
            session, collections.get_collection(session, spec.value)
        )
    else:
        ids = _picked(session, experiment, spec)
        if not ids:
            raise Conflict(f"arm {arm.name!r} picks no example from the pool")
        made = collections.create_collection(
            session, f"experiment {experiment.name} {arm.name}"[:200], target_size=len(ids)
        )
        collections.add_items(session, made, ids, recipe=f"experiment:{experiment.name}")
        snapshot, _ = collections.create_snapshot(session, made)
    taken = set(experiment.heldout_ids) & set(snapshot_example_ids(session, snapshot.id))
    if taken:
        # A collection that gained held-out examples after the split was drawn.
        raise Conflict(
            f"arm {arm.name!r} holds {len(taken):,} held-out examples; "
            "no arm may train on the held-out split"
        )
    arm.snapshot_id = snapshot.id
    return snapshot


def _picked(session: Session, experiment: Experiment, spec: ArmSpec) -> list[int]:
    pool_name = session.get_one(Dataset, experiment.dataset_id).name
    if spec.kind == POOL:
        query = select(Example.id).where(Example.dataset_id == experiment.dataset_id)
        held = set(experiment.heldout_ids)
        return [i for i in session.scalars(query.order_by(Example.id)) if i not in held]
    if spec.kind == "recipe":
        recipe = selection.get_selection(session, spec.value)
        if recipe.dataset != pool_name:
            raise InvalidInput(
                f"arm: recipe {spec.value!r} selects from {recipe.dataset}, not {pool_name}",
                field="arm",
            )
        recipe.budget = experiment.budget
        return selection.select_ids(session, recipe, exclude=experiment.heldout_ids)
    if spec.kind == "threshold":
        made = selection.SelectionSpec(
            dataset=pool_name, method="threshold", budget=experiment.budget, filters=[spec.value]
        )
        return selection.select_ids(session, made, exclude=experiment.heldout_ids)
    seed = int(experiment.params.get("seed", 0))
    made = selection.SelectionSpec(
        dataset=pool_name, method=spec.kind, budget=experiment.budget, seed=seed
    )
    return selection.select_ids(session, made, exclude=experiment.heldout_ids)


def start_run(session: Session, experiment: Experiment, arm: ExperimentArm) -> int | None:
    """The arm's training run, launched once (the same snapshot, model and config give the same
    run back); its job's id while it still has to run, None once it has succeeded."""
    snapshot = build_snapshot(session, experiment, arm)
    params = TrainingParams(**experiment.params)
    run, _ = training.create_run(session, snapshot.id, experiment.base_model, params)
    arm.run_id = run.id
    return None if run.state == "succeeded" else run.job_id


def start_evaluation(session: Session, experiment: Experiment, arm: ExperimentArm) -> int | None:
    """The arm's IFEval run of its trained model, started once; its job's id while it still
    has to run, None once it has succeeded (or when the run has not)."""
    if arm.run_id is None or training.run_state(session, _run(session, arm)) != "succeeded":
        return None
    if arm.eval_id is not None:
        done = evaluation.get_evaluation(session, arm.eval_id)
        return None if done.state == "succeeded" else done.job_id
    settings = experiment.evaluation
    run = evaluation.start_ifeval(
        session,
        f"run:{arm.run_id}",
        limit=settings.get("ifeval"),
        generation=GenerationSettings(max_tokens=int(settings.get("max_tokens", 512))),
    )
    arm.eval_id = run.id
    return run.job_id


def _run(session: Session, arm: ExperimentArm) -> TrainingRun:
    return session.get_one(TrainingRun, arm.run_id)


def start_pairwise(session: Session, experiment: Experiment, arm: ExperimentArm) -> int | None:
    """The arm's model judged against the baseline arm's on the test set, in both orders,
    started once both runs have succeeded; its job's id while it still has to run."""
    settings = experiment.evaluation
    if not settings.get("judge") or arm.name == settings["baseline"] or arm.run_id is None:
        return None
    baseline = next(a for a in arms_of(session, experiment) if a.name == settings["baseline"])
    if baseline.run_id is None:
        return None
    for run_id in (arm.run_id, baseline.run_id):
        if training.run_state(session, session.get_one(TrainingRun, run_id)) != "succeeded":
            return None
    if arm.pairwise_id is not None:
        done = evaluation.get_evaluation(session, arm.pairwise_id)
        return None if done.state == "succeeded" else done.job_id
    run = evaluation.start_evaluation(
        session,
        f"run:{arm.run_id}",
        f"run:{baseline.run_id}",
        settings["test_set"],
        settings["judge"],
        generation=GenerationSettings(max_tokens=int(settings.get("max_tokens", 512))),
    )
    arm.pairwise_id = run.id
    return run.job_id
