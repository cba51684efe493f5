"""A finished run's final artifact: its files, and the trained model loaded back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.models import TrainingRun
from app.platform.errors import Conflict, NotFound
from app.platform.local_models import model_folder
from app.training import layout


def artifact_path(run: TrainingRun, relative: str) -> Path:
    """A file of the run's final artifact; NotFound for anything else (no escaping it)."""
    final = layout.final_dir(layout.run_dir(run.id)).resolve()
    path = (final / relative).resolve()
    if not path.is_relative_to(final) or not path.is_file():
        raise NotFound(f"training run {run.id} has no artifact file {relative!r}")
    return path


def load_trained_model(run: TrainingRun, *, device: str | None = None) -> tuple[Any, Any]:
    """The run's trained model in eval mode (the base model with its LoRA adapter, or the full
    model) and its tokenizer, which carries the chat template the run trained with."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = layout.final_dir(layout.run_dir(run.id))
    if not (final / layout.SPEC_NAME).is_file():
        raise Conflict(f"training run {run.id} has no final artifact yet")
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = "auto" if target.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(final, local_files_only=True)
    if (final / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(
            model_folder(run.base_model), local_files_only=True, dtype=dtype
        )
        model: Any = PeftModel.from_pretrained(base, final, local_files_only=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(final, local_files_only=True, dtype=dtype)
    return model.to(target).eval(), tokenizer
