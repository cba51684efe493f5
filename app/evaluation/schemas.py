"""HTTP shapes of test sets, evaluations and their items."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.platform.validation import Id


class TestSetCreate(BaseModel):
    """A test set from records given here, or from a dataset or a snapshot."""

    name: str = Field(min_length=1, max_length=200)
    records: list[Any] | None = Field(
        default=None, description="the records of a test-set file (Vicuna, WizardLM, ...)"
    )
    format: str = "auto"
    prompt_field: str | None = Field(default=None, max_length=100)
    dataset: str | None = None
    snapshot: Id | None = None


class TestSetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    format: str
    source: str
    prompt_count: int
    max_turns: int
    digest: str
    created_at: datetime


class PromptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prompt_id: str
    position: int
    turns: list[str]
    category: str | None
    reference: list[str] | None


class TestSetDetail(TestSetOut):
    prompts: list[PromptOut]


class EvaluationCreate(BaseModel):
    model_a: str = Field(
        description="run:ID, model:PATH (a local folder or .gguf file) or endpoint:NAME (a bare id is a run, a name an endpoint)"
    )
    model_b: str
    test_set: str
    judge: str = Field(description="the judge's endpoint name")
    judge_prompt: str = Field(default="auto", description="auto, alpagasus or mt-bench")
    max_tokens: int = Field(default=512, ge=1, le=32_768)
    temperature: float = Field(default=0.0, ge=0, le=2, description="0: greedy")
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int = 0
    budget_usd: float | None = Field(default=None, gt=0)
    batch: bool = Field(default=False, description="through the OpenAI Batch API, at its price")


class RetryIn(BaseModel):
    budget_usd: float | None = Field(default=None, gt=0)


class IFEvalCreate(BaseModel):
    model: str = Field(
        description="run:ID, model:PATH (a local folder or .gguf file) or endpoint:NAME (a bare id is a run, a name an endpoint)"
    )
    records: list[Any] | None = Field(
        default=None,
        description="prompts in IFEval's layout (key, prompt, instruction_id_list, kwargs); "
        "default: the 541 shipped prompts",
    )
    limit: int | None = Field(default=None, ge=1, description="only the first N prompts")
    max_tokens: int = Field(default=1280, ge=1, le=32_768)
    temperature: float = Field(default=0.0, ge=0, le=2, description="0: greedy")
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int = 0
    budget_usd: float | None = Field(default=None, gt=0)


class EvaluationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    model_a: str
    model_b: str
    test_set: str
    judge: str
    judge_prompt: str | None
    generation: dict[str, Any]
    state: str
    job_id: int | None
    job_error: str | None
    done: int
    total: int
    wins: int
    ties: int
    losses: int
    errors: int
    winning_score: float | None
    metrics: dict[str, Any] = Field(
        description="IFEval: prompt_strict, prompt_loose, instruction_strict, instruction_loose "
        "(0-1), prompts, instructions and by_instruction; empty for a pairwise evaluation"
    )
    created_at: datetime
    finished_at: datetime | None


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    prompt_id: str
    position: int
    turns: list[str]
    category: str | None
    answers_a: list[str] | None
    answers_b: list[str] | None
    verdict_ab: str | None
    verdict_ba: str | None
    verdict: str | None
    judge_ab: str | None
    judge_ba: str | None
    state: str
    error: str | None
    raw: dict[str, Any]
