"""The training itself: a run folder in, checkpoints, metrics and a final artifact out.

It reads everything from the run folder (`sift_run.json` and `data.jsonl`) and never touches
the database, so the same code runs inside a worker (one device) and under `accelerate
launch` (several GPUs, one process each). torch, transformers and peft are imported here
only, so that the web app does not load them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.platform.local_models import model_folder
from app.training import layout
from app.training.chat_templates import apply_template
from app.training.data import encode_all, pack
from app.training.presets import TrainingParams

StepHook = Callable[[int, int], None]  # (step, total steps); may raise to stop the run
MetricHook = Callable[[dict[str, Any]], None]


class StopRequested(Exception):
    """Raised by a step hook to stop training after a checkpoint of where it got to."""


def device_info() -> dict[str, Any]:
    """What this process trains on: the device, how many GPUs, and whether bf16 is used."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "device": "cuda" if cuda else "cpu",
        "gpus": torch.cuda.device_count() if cuda else 0,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
    }


def load_tokenizer(base_model: str, template: str) -> tuple[Any, str]:
    """The base model's tokenizer with the run's chat template and a pad token; the template's
    name ("own" for the model's own)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder(base_model), local_files_only=True)
    name = apply_template(tokenizer, template, base_model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, name


def training_rows(tokenizer: Any, run_dir: Path, params: TrainingParams) -> tuple[list, dict]:
    """The run's rows (packed when asked) and what encoding them dropped."""
    conversations = [json.loads(line) for line in layout.data_file(run_dir).open()]
    encoded = encode_all(tokenizer, conversations, params.max_seq_length)
    rows = pack(encoded.rows, params.max_seq_length) if params.packing else encoded.rows
    stats = {
        "examples": len(encoded.rows),
        "rows": len(rows),
        "truncated": encoded.truncated,
        "skipped": encoded.skipped,
        "tokens": encoded.tokens,
        "trained_tokens": encoded.trained_tokens,
    }
    return rows, stats


def build_model(base_model: str, params: TrainingParams, bf16: bool) -> Any:
    """The base model, wrapped with a LoRA adapter for a LoRA run."""
    import torch
    from transformers import AutoModelForCausalLM

    # LoRA keeps the frozen base in bf16 on a GPU that has it; a full fine-tune keeps fp32
    # master weights and trains under bf16 autocast.
    dtype = torch.bfloat16 if bf16 and params.method == "lora" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        model_folder(base_model), local_files_only=True, dtype=dtype
    )
    model.config.use_cache = False
    if params.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=params.lora_target_modules,
    )
    return get_peft_model(model, config)


def training_arguments(run_dir: Path, params: TrainingParams, info: dict[str, Any]) -> Any:
    """transformers' TrainingArguments for the run's hyper-parameters on this device."""
    from transformers import TrainingArguments

    per_step = params.micro_batch_size * max(1, info["processes"])
    scheduler: dict[str, Any] = {"lr_scheduler_type": params.scheduler}
    if params.scheduler == "constant":
        scheduler["lr_scheduler_type"] = "constant_with_warmup"
    elif params.min_learning_rate is not None and params.scheduler == "linear":
        # A linear decay to a floor is the polynomial schedule of power 1 (LIMA: 1e-5 to 1e-6).
        scheduler = {
            "lr_scheduler_type": "polynomial",
            "lr_scheduler_kwargs": {"lr_end": params.min_learning_rate, "power": 1.0},
        }
    elif params.min_learning_rate is not None:
        scheduler = {
            "lr_scheduler_type": "cosine_with_min_lr",
            "lr_scheduler_kwargs": {"min_lr": params.min_learning_rate},
        }
    return TrainingArguments(
        output_dir=str(layout.checkpoints_dir(run_dir)),
        per_device_train_batch_size=params.micro_batch_size,
        gradient_accumulation_steps=max(1, math.ceil(params.batch_size / per_step)),
        num_train_epochs=params.epochs,
        max_steps=params.max_steps or -1,
        learning_rate=params.learning_rate,
        warmup_steps=params.warmup_ratio,
        weight_decay=params.weight_decay,
        adam_beta1=params.adam_beta1,
        adam_beta2=params.adam_beta2,
        max_grad_norm=params.max_grad_norm,
        logging_steps=1,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        bf16=info["bf16"],
        use_cpu=info["device"] == "cpu",
        seed=params.seed,
        activation_checkpointing=params.gradient_checkpointing,
        # Examples of like length share a batch: less padding, more real tokens per second.
        train_sampling_strategy="random" if params.packing else "group_by_length",
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        report_to="none",
        disable_tqdm=True,
        **scheduler,
    )


def make_callback(run_dir: Path, on_step: StepHook | None, on_metric: MetricHook | None) -> Any:
    """A trainer callback that writes metrics and logs to the run folder, reports steps, and
    turns a stop request into a checkpoint and a clean stop."""
    from transformers import TrainerCallback

    class SiftCallback(TrainerCallback):
        def __init__(self) -> None:
            self.stopped = False
            self.mark: tuple[float, int] = (time.perf_counter(), 0)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.mark = (time.perf_counter(), state.num_input_tokens_seen)
            if state.is_world_process_zero:
                layout.log(run_dir, f"training from step {state.global_step} of {state.max_steps}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            layout.heartbeat(run_dir)
            if on_step is None:
                return
            try:
                on_step(state.global_step, state.max_steps)
            except StopRequested:
                self.stopped = True
                control.should_save = True
                control.should_training_stop = True

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            now, tokens = time.perf_counter(), state.num_input_tokens_seen
            then, before = self.mark
            self.mark = (now, tokens)
            row = {
                "step": state.global_step,
                "loss": float(logs["loss"]),
                "learning_rate": float(logs.get("learning_rate", 0.0)),
                "tokens_per_s": (tokens - before) / (now - then) if now > then else None,
                "epoch": float(state.epoch or 0.0),
                "tokens": tokens,
            }
            layout.append_metric(run_dir, row)
            if on_metric is not None:
                on_metric(row)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                layout.log(run_dir, f"checkpoint at step {state.global_step}")

    return SiftCallback()


def train(
    run_dir: Path, on_step: StepHook | None = None, on_metric: MetricHook | None = None
) -> dict[str, Any]:
    """Train the run in `run_dir` from its last checkpoint (if any) to its final artifact;
    returns a summary. Raises StopRequested when a hook stopped it (after a checkpoint)."""
    from transformers import PrinterCallback, Trainer, set_seed
    from transformers.trainer_utils import get_last_checkpoint
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    spec = layout.read_spec(run_dir)
    params = TrainingParams(**spec["params"])
    info = device_info()
    set_seed(params.seed)
    tokenizer, template = load_tokenizer(spec["base_model"], params.template)
    rows, stats = training_rows(tokenizer, run_dir, params)
    layout.log(run_dir, f"{stats['examples']} examples, {stats['rows']} rows, {info}")
    model = build_model(spec["base_model"], params, info["bf16"])
    collator = DataCollatorForLanguageModeling(
        pad_token_id=tokenizer.pad_token_id,
        pad_to_multiple_of=8 if info["device"] == "cuda" else None,
    )
    callback = make_callback(run_dir, on_step, on_metric)
    trainer = Trainer(
        model=model,
        args=training_arguments(run_dir, params, info),
        train_dataset=rows,
        data_collator=collator,
        callbacks=[callback],
    )
    # The run's metrics go to its folder and the database, not to stdout.
    trainer.remove_callback(PrinterCallback)
    checkpoints = layout.checkpoints_dir(run_dir)
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if last:
        layout.log(run_dir, f"resuming from {Path(last).name}")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    if callback.stopped:
        raise StopRequested()
    summary = {
        **stats,
        **info,
        "template": template,
        "steps": trainer.state.global_step,
        "train_loss": float(result.training_loss),
        "seconds": round(time.perf_counter() - started, 3),
        "resumed_from": Path(last).name if last else None,
    }
    if trainer.is_world_process_zero():
        save_final(trainer, tokenizer, run_dir, {**spec, "template": template, "summary": summary})
    return summary


def save_final(trainer: Any, tokenizer: Any, run_dir: Path, spec: dict[str, Any]) -> None:
    """Write the adapter (or model), the tokenizer with its chat template and sift_run.json
    into `final/`, whole or not at all: they are written aside and moved in place."""
    final = layout.final_dir(run_dir)
    partial = final.with_name("final.partial")
    shutil.rmtree(partial, ignore_errors=True)
    trainer.save_model(str(partial))
    # The Trainer pickles its arguments beside the model; the artifact is safetensors only.
    (partial / "training_args.bin").unlink(missing_ok=True)
    tokenizer.save_pretrained(str(partial))
    layout.write_spec(partial, spec)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    layout.log(run_dir, f"final artifact in {final}")
