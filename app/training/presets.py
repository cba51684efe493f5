"""Training hyper-parameters, with the LIMA and Alpaca/AlpaGasus presets from the papers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.platform.errors import InvalidInput

Method = Literal["lora", "full"]
Template = Literal["auto", "alpaca", "vicuna"]
Scheduler = Literal["linear", "cosine", "constant"]


class TrainingParams(BaseModel):
    """Everything a run is trained with; a preset fills the values, each one editable."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["lima", "alpaca", "vicuna", "custom"] = "custom"
    method: Method = "lora"
    # "auto": the base model's own chat template; a base model without one needs a name.
    template: Template = "auto"
    epochs: float = Field(3.0, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    # Where the schedule ends; None decays to 0 (linear, cosine).
    min_learning_rate: float | None = Field(None, ge=0)
    scheduler: Scheduler = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    batch_size: int = Field(128, ge=1, description="examples per optimiser step, all devices")
    micro_batch_size: int = Field(4, ge=1, description="examples per forward pass, per device")
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_seq_length: int = Field(512, ge=8)
    packing: bool = False
    max_steps: int | None = Field(None, ge=1)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: str = "all-linear"
    gradient_checkpointing: bool = False
    save_steps: int = Field(50, ge=1, description="a checkpoint every this many steps")
    save_total_limit: int = Field(2, ge=1)
    seed: int = 42
    # Processes (one per GPU) on the worker; None: every GPU it has, one process on a CPU.
    processes: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _end_below_start(self) -> TrainingParams:
        if self.min_learning_rate is not None and self.min_learning_rate >= self.learning_rate:
            raise ValueError("min_learning_rate must be below learning_rate")
        if self.micro_batch_size > self.batch_size:
            raise ValueError("micro_batch_size must not exceed batch_size")
        return self


# LIMA (Zhou et al., 2023, section 3): 15 epochs, AdamW with betas 0.9/0.95 and weight decay
# 0.1, lr 1e-5 decaying linearly to 1e-6 without warm-up, batch 32, up to 2,048 tokens.
# Alpaca (Taori et al., 2023) and AlpaGasus (Chen et al., 2023, table 9): 3 epochs, lr 2e-5,
# batch 128, cosine with 3% warm-up, no weight decay, 512 tokens.
# Vicuna (FastChat's README and train scripts): the same but up to 2,048 tokens.
ALPACA: dict[str, Any] = {
    "epochs": 3,
    "learning_rate": 2e-5,
    "min_learning_rate": None,
    "scheduler": "cosine",
    "warmup_ratio": 0.03,
    "batch_size": 128,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "weight_decay": 0.0,
    "max_seq_length": 512,
}
PRESETS: dict[str, dict[str, Any]] = {
    "lima": {
        "epochs": 15,
        "learning_rate": 1e-5,
        "min_learning_rate": 1e-6,
        "scheduler": "linear",
        "warmup_ratio": 0.0,
        "batch_size": 32,
        "adam_beta1": 0.9,
        "adam_beta2": 0.95,
        "weight_decay": 0.1,
        "max_seq_length": 2048,
    },
    "alpaca": ALPACA,
    "vicuna": {**ALPACA, "max_seq_length": 2048},
}
# A preset's own chat template, used on a base model that has none (and said so).
PRESET_TEMPLATES = {"alpaca": "alpaca", "vicuna": "vicuna"}


def build_params(preset: str | None = None, **overrides: Any) -> TrainingParams:
    """A preset's values with `overrides` on top (None leaves the preset's value)."""
    name = preset or "custom"
    if name != "custom" and name not in PRESETS:
        raise InvalidInput(f"preset: {name!r} is not one of lima, alpaca, vicuna", field="preset")
    values = {**PRESETS.get(name, {}), "preset": name}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainingParams(**values)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def invalid_input(exc: ValidationError) -> InvalidInput:
    """The first problem of a validation error, as an InvalidInput naming its field."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "params"
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(f"{field}: {message}", field=field)
