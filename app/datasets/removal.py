"""Renaming and deleting a dataset, and showing first what depends on it: the collections that
hold its examples, the snapshots, runs and evaluations made from them (which keep their frozen
copies), the saved recipes that read it, the experiments and jobs that stop a deletion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.datasets.service import NAME_PATTERN
from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    EvalRun,
    Example,
    Experiment,
    Job,
    JobState,
    Selection,
    Snapshot,
    SnapshotItem,
    TrainingRun,
    User,
)
from app.models.base import utcnow
from app.platform.errors import Conflict, InvalidInput
from app.platform.jobs.dispatch import create_job

DELETE_KIND = "delete-dataset"
# Up to this many examples a deletion runs in the request; more run as a job.
INLINE_LIMIT = 20_000
# A job deletes this many examples per statement, so that no statement runs for minutes.
DELETE_BATCH = 5_000
ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value, JobState.PAUSED_BUDGET.value)


@dataclass(frozen=True)
class Dependents:
    """What a dataset's deletion touches, and what stops it."""

    examples: int
    collections: list[tuple[str, int]] = field(default_factory=list)  # name, items of it
    snapshots: list[tuple[int, str, int]] = field(default_factory=list)  # id, collection, items
    runs: list[int] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)  # saved selection recipes, deleted with it
    collection_recipes: list[str] = field(default_factory=list)  # collections whose recipes name it
    experiments: list[str] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)

    @property
    def blockers(self) -> list[str]:
        """Why the dataset cannot be deleted now (empty when it can)."""
        reasons = []
        if self.experiments:
            reasons.append(f"experiments use it as their pool: {', '.join(self.experiments)}")
        if self.jobs:
            reasons.append(f"jobs on it are not finished: {', '.join(map(str, self.jobs))}")
        return reasons

    def as_json(self) -> dict[str, Any]:
        """The dependents as the API shows them."""
        return {
            "examples": self.examples,
            "collections": [{"name": n, "items": c} for n, c in self.collections],
            "snapshots": [{"id": i, "collection": n, "items": c} for i, n, c in self.snapshots],
            "runs": self.runs,
            "evaluations": self.evaluations,
            "recipes": self.recipes,
            "collection_recipes": self.collection_recipes,
            "experiments": self.experiments,
            "jobs": self.jobs,
            "blockers": self.blockers,
        }


def dependents(session: Session, dataset: Dataset) -> Dependents:
    """Everything that refers to the dataset or to its examples."""
    examples = select(Example.id).where(Example.dataset_id == dataset.id)
    collections = session.execute(
        select(Collection.name, func.count())
        .join(CollectionItem, CollectionItem.collection_id == Collection.id)
        .where(CollectionItem.example_id.in_(examples))
        .group_by(Collection.name)
        .order_by(Collection.name)
    ).all()
    snapshots = session.execute(
        select(Snapshot.id, Collection.name, func.count())
        .join(SnapshotItem, SnapshotItem.snapshot_id == Snapshot.id)
        .join(Collection, Collection.id == Snapshot.collection_id)
        .where(SnapshotItem.example_id.in_(examples))
        .group_by(Snapshot.id, Collection.name)
        .order_by(Snapshot.id)
    ).all()
    runs = list(
        session.scalars(
            select(TrainingRun.id)
            .where(TrainingRun.snapshot_id.in_([s[0] for s in snapshots]))
            .order_by(TrainingRun.id)
        )
    )
    models = [f"run:{r}" for r in runs]
    evaluations = (
        list(
            session.scalars(
                select(EvalRun.id)
                .where(or_(EvalRun.model_a.in_(models), EvalRun.model_b.in_(models)))
                .order_by(EvalRun.id)
            )
        )
        if models
        else []
    )
    return Dependents(
        examples=session.scalar(select(func.count()).select_from(examples.subquery())) or 0,
        collections=[(n, c) for n, c in collections],
        snapshots=[(i, n, c) for i, n, c in snapshots],
        runs=runs,
        evaluations=evaluations,
        recipes=list(
            session.scalars(select(Selection.name).where(Selection.dataset_id == dataset.id))
        ),
        collection_recipes=[c.name for c in _collections_naming(session, dataset.name)],
        experiments=list(
            session.scalars(select(Experiment.name).where(Experiment.dataset_id == dataset.id))
        ),
        jobs=list(
            session.scalars(
                select(Job.id).where(Job.dataset_id == dataset.id, Job.state.in_(ACTIVE))
            )
        ),
    )


def _collections_naming(session: Session, name: str) -> list[Collection]:
    """Collections with a recipe that reads the dataset by this name."""
    found = session.scalars(select(Collection).where(Collection.recipes.is_not(None)))
    return [c for c in found if any(r.get("dataset") == name for r in c.recipes or [])]


def rename_dataset(session: Session, dataset: Dataset, new_name: str) -> Dataset:
    """Give the dataset another name (free, and valid as at creation); collections' recipes
    that named it follow (everything else refers to it by id)."""
    new_name = new_name.strip()
    if not NAME_PATTERN.match(new_name):
        raise InvalidInput(
            "a dataset name must be 1 to 200 printable characters without '/'", field="name"
        )
    taken = select(Dataset.id).where(Dataset.name == new_name, Dataset.id != dataset.id)
    if session.scalar(taken) is not None:
        raise Conflict(f"a dataset called {new_name!r} exists already", field="name")
    for collection in _collections_naming(session, dataset.name):
        collection.recipes = [
            {**r, "dataset": new_name} if r.get("dataset") == dataset.name else r
            for r in collection.recipes
        ]
    dataset.name = new_name
    session.flush()
    return dataset


def delete_dataset(session: Session, dataset: Dataset, user: User | None) -> Job | None:
    """Delete the dataset with its examples, their decisions and its saved recipes (snapshots
    keep their frozen copies); at once up to INLINE_LIMIT examples, as a job beyond (returned).
    Refused while an experiment uses it or a job on it is unfinished."""
    found = dependents(session, dataset)
    if found.blockers:
        raise Conflict(
            f"dataset {dataset.name!r} cannot be deleted: {'; '.join(found.blockers)}",
            blockers=found.blockers,
        )
    _forget_in_collection_recipes(session, dataset.name)
    if found.examples <= INLINE_LIMIT:
        session.delete(dataset)
        session.flush()
        return None
    # The job must not belong to the dataset (its jobs are deleted with it); it names it in
    # its parameters. The dataset is renamed out of the way, so that its name is free at once.
    params = {"dataset_id": dataset.id, "name": dataset.name}
    dataset.name = f"{dataset.name[:150]} (deleting {utcnow():%Y%m%d%H%M%S}-{dataset.id})"
    return create_job(session, DELETE_KIND, params, queue="cpu", user=user)


def _forget_in_collection_recipes(session: Session, name: str) -> None:
    for collection in _collections_naming(session, name):
        collection.recipes = [r for r in collection.recipes if r.get("dataset") != name]


def delete_in_batches(
    session: Session, dataset_id: int, progress: Callable[[int, int], None]
) -> int:
    """Delete a dataset's examples a batch at a time (reporting how many), then the dataset;
    returns how many examples went. Safe to run twice: what is gone stays gone."""
    total = session.scalar(select(func.count()).where(Example.dataset_id == dataset_id)) or 0
    deleted = 0
    while True:
        batch = select(Example.id).where(Example.dataset_id == dataset_id).limit(DELETE_BATCH)
        gone = session.execute(delete(Example).where(Example.id.in_(batch)))
        count = getattr(gone, "rowcount", 0)
        deleted += count
        progress(deleted, total)
        if count < DELETE_BATCH:
            break
    session.execute(delete(Dataset).where(Dataset.id == dataset_id))
    return deleted
