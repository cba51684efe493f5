"""Experiments: one pool, one budget, several arms, each arm a snapshot, a run and its scores."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json


class Experiment(IdMixin, CreatedMixin, Base):
    """Every arm trained from the same base model with the same config and seed, and evaluated
    the same way."""

    __tablename__ = "experiments"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    dataset_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    budget: Mapped[int] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(String(500))
    # The training parameters every arm's run gets (TrainingParams, as dumped).
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # {"ifeval": N or null (all), "max_tokens": ..., and for the pairwise judge: "judge",
    # "test_set", "baseline" (an arm's name), or null}
    evaluation: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # The pool's examples that no arm may select: each run's loss is measured on them.
    heldout_ids: Mapped[list[int]] = mapped_column(
        Json, default=list, server_default=text("'[]'::jsonb")
    )
    # The job that runs every arm's steps from the studio (the command line needs none).
    run_job_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("jobs.id", ondelete="SET NULL")
    )


class ExperimentArm(IdMixin, Base):
    """One arm: how it picks its examples, and what it has made so far."""

    __tablename__ = "experiment_arms"
    __table_args__ = (UniqueConstraint("experiment_id", "name"),)

    experiment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experiments.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(String(500))  # random, pool, threshold:EXPR, snapshot:ID, ...
    snapshot_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("snapshots.id", ondelete="SET NULL")
    )
    run_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    eval_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("eval_runs.id", ondelete="SET NULL")
    )
    # The pairwise evaluation of this arm's model against the baseline arm's (both orders).
    pairwise_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("eval_runs.id", ondelete="SET NULL")
    )
    # The held-out loss job of the arm's run, and its result: {"run_id", "losses", "tokens",
    # "skipped"}, a loss and a token count per held-out example in `heldout_ids` order.
    heldout_job_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    heldout: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
