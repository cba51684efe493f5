"""Real fine-tunes of a tiny Llama on a real snapshot, run by the job runner on both backends:
loss falls, artifacts reload and generate, cancel checkpoints and resume goes on from there."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from sqlalchemy import Engine, select
from transformers import AutoModelForCausalLM

from app.datasets.service import join_prompt, parse_alpaca
from app.jobs.service import cancel_job
from app.models import Job, TrainingMetric, TrainingRun
from app.platform.db import transaction
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.training import layout, service
from app.training.data import encode
from app.training.presets import TrainingParams
from app.training.tasks import run_training
from tests.training.conftest import make_snapshot, quick_params

assert callable(run_training)  # importing the module registers the "train" job kind


def _launch(records: list[dict[str, Any]], base: Path, folder: Path, params: TrainingParams) -> int:
    with transaction() as session:
        snapshot = make_snapshot(session, records, folder)
        run_jobs_here(session)
        run, created = service.create_run(session, snapshot.id, str(base), params)
        assert created
        return run.id


def _job_id(run_id: int) -> int:
    with transaction() as session:
        job_id = session.get(TrainingRun, run_id).job_id  # type: ignore[union-attr]
    assert job_id is not None
    return job_id


def _execute(job_id: int) -> str:
    """Run the job here; a failure shows the job's error."""
    state = execute_job(job_id)
    if state == "failed":
        with transaction() as session:
            raise AssertionError(session.get(Job, job_id).error)  # type: ignore[union-attr]
    return state


def _answer_loss(model: Any, tokenizer: Any, records: list[dict[str, Any]]) -> float:
    """The mean loss of `model` on the records' answers, formatted as in training."""
    losses = []
    for record in records:
        messages = parse_alpaca(record).messages
        row = encode(tokenizer, messages, 128)
        with torch.no_grad():
            out = model(
                input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]])
            )
        losses.append(float(out.loss))
    return _mean(losses)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_a_full_run_memorises_its_snapshot_and_reloads(
    committed: Engine, records: list[dict[str, Any]], base_model: Path, tmp_path: Path
) -> None:
    run_id = _launch(records, base_model, tmp_path, quick_params())
    assert _execute(_job_id(run_id)) == "succeeded"
    with transaction() as session:
        run = session.get(TrainingRun, run_id)
        assert run is not None and run.state == "succeeded"
        losses = [m.loss or 0.0 for m in session.scalars(
            select(TrainingMetric).where(TrainingMetric.run_id == run_id).order_by("step")
        )]  # fmt: skip
        assert len(losses) == 24
        # Eight short records, seen twelve times: the loss drops to well under half.
        assert _mean(losses[-3:]) < 0.5 * _mean(losses[:3])
        assert all(m["tokens_per_s"] for m in service.run_metrics(session, run)[1:])
        assert run.artifacts["kind"] == "model"
        model, tokenizer = service.load_trained_model(run)
    final = layout.final_dir(layout.run_dir(run_id))
    assert {"config.json", "model.safetensors", "tokenizer.json", "sift_run.json"} <= {
        p.name for p in final.iterdir()
    }
    assert not list(final.glob("*.bin"))  # safetensors only
    spec = json.loads((final / "sift_run.json").read_text())
    assert spec["template"] == "alpaca" and spec["params"]["learning_rate"] == 1e-2
    assert spec["snapshot_id"] == run.snapshot_id and spec["base_model"] == str(base_model)
    # The saved tokenizer formats a prompt exactly as training did; the reloaded model has
    # learnt the answers (its loss on them is far below the base model's) and generates.
    record = records[0]
    messages = [{"role": "user", "content": join_prompt(record["instruction"], record["input"])}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("### Response:\n")
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(base_model, local_files_only=True)
    assert _answer_loss(model, tokenizer, records) < 0.5 * _answer_loss(base, tokenizer, records)
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4
    # Running the job again trains nothing and writes nothing twice.
    assert execute_job(_job_id(run_id)) == "skipped"


def test_a_lora_adapter_reloads_over_its_base_model(
    committed: Engine, records: list[dict[str, Any]], base_model: Path, tmp_path: Path
) -> None:
    params = quick_params(method="lora", max_steps=6, learning_rate=3e-2, save_steps=100)
    run_id = _launch(records, base_model, tmp_path, params)
    assert _execute(_job_id(run_id)) == "succeeded"
    final = layout.final_dir(layout.run_dir(run_id))
    assert (final / "adapter_config.json").is_file()
    assert (final / "adapter_model.safetensors").is_file()
    assert not (final / "model.safetensors").exists()  # the base model is run.base_model
    with transaction() as session:
        run = session.get(TrainingRun, run_id)
        model, tokenizer = service.load_trained_model(run)  # type: ignore[arg-type]
    assert isinstance(model, PeftModel)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": records[1]["instruction"]}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=5, do_sample=False)
        plain = model.get_base_model()  # the adapter changes what the base model says
        with model.disable_adapter():
            base_logits = plain(ids).logits
        tuned_logits = model(ids).logits
    assert out.shape[1] == ids.shape[1] + 5
    assert not torch.allclose(base_logits, tuned_logits)


def test_cancel_checkpoints_and_resume_goes_on_from_there(
    committed: Engine, records: list[dict[str, Any]], base_model: Path, tmp_path: Path
) -> None:
    run_id = _launch(records, base_model, tmp_path, quick_params(max_steps=12, save_steps=4))
    job_id = _job_id(run_id)
    folder = layout.run_dir(run_id)
    # The cancel lands as soon as the job runs; the run sees it at its next step (a running
    # job checks at every step, as often as every half second).
    canceller = threading.Thread(target=_cancel_once_running, args=(job_id,))
    canceller.start()
    assert execute_job(job_id) == "cancelled"
    canceller.join()
    with transaction() as session:  # the job was cancelled on its own: the run says so too
        run = service.cancel_run(session, service.get_run(session, run_id))
        assert run.state == "cancelled"
    checkpoints = layout.checkpoints(folder)
    assert len(checkpoints) == 1 and checkpoints[0] < 12  # one where the cancel found it
    assert not layout.final_dir(folder).exists()
    stopped_at = checkpoints[0]
    with transaction() as session:
        again = service.get_run(session, run_id)
        assert service.run_state(session, again) == "cancelled"
        run_jobs_here(session)
        service.resume_run(session, again)
        assert session.get(Job, job_id).state == "queued"  # type: ignore[union-attr]
    assert _execute(job_id) == "succeeded"
    log = layout.log_tail(folder)
    assert f"resuming from checkpoint-{stopped_at}" in log
    assert f"training from step {stopped_at} of 12" in log
    with transaction() as session:
        steps = list(session.scalars(
            select(TrainingMetric.step).where(TrainingMetric.run_id == run_id).order_by("step")
        ))  # fmt: skip
    assert steps == list(range(1, 13))  # every step once, none twice


def _cancel_once_running(job_id: int) -> None:
    for _ in range(600):
        with transaction() as session:
            job = session.get_one(Job, job_id)
            if job.state == "running":
                cancel_job(session, job_id)
                return
        time.sleep(0.05)
