"""HTTP shapes of training runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.platform.snapshots import SnapshotRef
from app.platform.validation import Id
from app.training.presets import Method, Scheduler, Template


class RunCreate(BaseModel):
    """A new run: a snapshot, a base model folder, a preset, and any value to override."""

    model_config = ConfigDict(extra="forbid")

    snapshot_id: Id | SnapshotRef  # its number, or its digest
    base_model: str = Field(min_length=1, max_length=500)
    preset: Literal["lima", "alpaca", "vicuna", "custom"] = "custom"
    method: Method | None = None
    template: Template | None = None
    epochs: float | None = None
    learning_rate: float | None = None
    min_learning_rate: float | None = None
    scheduler: Scheduler | None = None
    warmup_ratio: float | None = None
    batch_size: int | None = None
    micro_batch_size: int | None = None
    adam_beta1: float | None = None
    adam_beta2: float | None = None
    weight_decay: float | None = None
    max_grad_norm: float | None = None
    max_seq_length: int | None = None
    packing: bool | None = None
    max_steps: int | None = None
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    lora_target_modules: str | None = None
    gradient_checkpointing: bool | None = None
    save_steps: int | None = None
    save_total_limit: int | None = None
    seed: int | None = None
    processes: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The hyper-parameters given (None keeps the preset's value)."""
        return self.model_dump(exclude={"snapshot_id", "base_model", "preset"}, exclude_none=True)


class MetricOut(BaseModel):
    step: int
    loss: float | None
    learning_rate: float | None
    tokens_per_s: float | None
    epoch: float | None


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    snapshot_id: int
    base_model: str
    method: str
    state: str
    params: dict[str, Any]
    job_id: int | None
    step: int
    total_steps: int | None
    output_dir: str | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    checkpoints: list[int]
    metrics: list[MetricOut] | None = None
    logs: str | None = None


class ArtifactFile(BaseModel):
    path: str
    bytes: int
    url: str
