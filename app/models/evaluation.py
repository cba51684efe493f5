"""Pairwise evaluations: test sets, answers, and verdicts in both answer orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedMixin, IdMixin, Json, StrEnum


class EvalTestSet(IdMixin, CreatedMixin, Base):
    """A named, frozen list of prompts (Vicuna, WizardLM, Self-Instruct, MT-Bench or yours)."""

    __tablename__ = "eval_test_sets"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    format: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(500), default="")
    prompt_count: Mapped[int] = mapped_column(Integer, default=0)
    max_turns: Mapped[int] = mapped_column(Integer, default=1)
    # sha256 of the prompts in order: importing the same content again is a no-op.
    digest: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )


class EvalPrompt(IdMixin, Base):
    """One prompt of a test set: one user turn, or several (MT-Bench has two)."""

    __tablename__ = "eval_prompts"
    __table_args__ = (
        UniqueConstraint("test_set_id", "prompt_id"),
        UniqueConstraint("test_set_id", "position"),
    )

    test_set_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("eval_test_sets.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    prompt_id: Mapped[str] = mapped_column(String(100))
    turns: Mapped[list[str]] = mapped_column(Json)
    category: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[list[str] | None] = mapped_column(Json)
    meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class EvalAnswer(IdMixin, CreatedMixin, Base):
    """A model's answers to a prompt's turns, keyed by model, prompt and generation settings,
    so that the same answer is never made twice."""

    __tablename__ = "eval_answers"

    key: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(500))
    turns: Mapped[list[str]] = mapped_column(Json)
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)


class EvalRun(IdMixin, CreatedMixin, Base):
    __tablename__ = "eval_runs"

    # "pairwise" (model A against model B, judged) or "ifeval" (model A alone, checked by
    # IFEval's rules: model_b and judge are empty).
    kind: Mapped[str] = mapped_column(String(20), default="pairwise", server_default="pairwise")
    model_a: Mapped[str] = mapped_column(String(500))
    model_b: Mapped[str] = mapped_column(String(500))
    test_set: Mapped[str] = mapped_column(String(200))
    test_set_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("eval_test_sets.id", ondelete="RESTRICT"), index=True
    )
    judge: Mapped[str] = mapped_column(String(200))
    # {"judge_prompt": ..., "generation": {...}}
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    # Recomputed from the items by every chunk, under a lock on this row.
    wins: Mapped[int] = mapped_column(Integer, default=0)
    ties: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    # IFEval: prompt_strict, prompt_loose, instruction_strict, instruction_loose, counts and
    # accuracy per instruction type; recomputed from the items like the verdict totals.
    metrics: Mapped[dict[str, Any]] = mapped_column(
        Json, default=dict, server_default=text("'{}'::jsonb")
    )
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ItemState(StrEnum):
    OK = "ok"  # both orders judged and read
    PARSE_ERROR = "parse_error"  # a judge answered, unreadably: an error, never a tie
    FAILED = "failed"  # an answer or a judge call failed: tried again by the next run


class EvalItem(IdMixin, Base):
    __tablename__ = "eval_items"
    __table_args__ = (UniqueConstraint("run_id", "prompt_id"),)

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("eval_runs.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)  # the first turn, for lists
    turns: Mapped[list[str]] = mapped_column(Json)
    category: Mapped[str | None] = mapped_column(String(200))
    answers_a: Mapped[list[str] | None] = mapped_column(Json)
    answers_b: Mapped[list[str] | None] = mapped_column(Json)
    # The winner in the order (a, b) and in the swapped order (b, a): "a", "b", "tie" or
    # "error"; and model A's combined result: "win", "tie", "lose" or "error".
    verdict_ab: Mapped[str | None] = mapped_column(String(10))
    verdict_ba: Mapped[str | None] = mapped_column(String(10))
    verdict: Mapped[str | None] = mapped_column(String(10))
    judge_ab: Mapped[str | None] = mapped_column(Text)
    judge_ba: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=ItemState.OK.value)
    error: Mapped[str | None] = mapped_column(Text)
    # Parsed judge scores, tokens and cost of the judge calls.
    raw: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
