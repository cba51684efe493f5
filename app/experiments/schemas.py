"""HTTP shapes of experiments: a new experiment, with the same fields as `sift experiment
create`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.training.service import Method, Template


class ExperimentCreate(BaseModel):
    """A new experiment: a pool, a budget, arms, a base model and the training config they all
    share, and how every run is evaluated."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    dataset: str = Field(min_length=1, max_length=200, description="the pool")
    budget: int = Field(description="examples an arm")
    arms: list[str] = Field(
        description="random, longest, pool, threshold:EXPR, deita, lima-quota, recipe:NAME, "
        "collection:NAME or snapshot:ID"
    )
    base_model: str = Field(min_length=1, max_length=500, description="a model folder or .gguf")
    preset: Literal["lima", "alpaca", "vicuna", "custom"] = "alpaca"
    method: Method | None = None
    template: Template | None = None
    max_steps: int | None = None
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="any other hyper-parameter, as `--set NAME=VALUE`"
    )
    eval: str = Field(default="ifeval", description="ifeval (all 541 prompts) or ifeval:N")
    max_tokens: int = Field(default=512, description="tokens an IFEval answer")
    judge: str | None = Field(default=None, description="an endpoint judging against the baseline")
    test_set: str | None = None
    baseline: str | None = None
    heldout: float | None = Field(
        default=None, description="the held-out split: a fraction below 1 or a count"
    )

    def overrides(self) -> dict[str, Any]:
        """The training values given (None keeps the preset's)."""
        given: dict[str, Any] = {
            "method": self.method,
            "template": self.template,
            "max_steps": self.max_steps,
        }
        return {k.replace("-", "_"): v for k, v in self.settings.items()} | {
            k: v for k, v in given.items() if v is not None
        }
