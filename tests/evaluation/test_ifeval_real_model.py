"""The whole path on a real model, on a CPU: SmolLM2-135M-Instruct (from its GGUF file) is
fine-tuned with LoRA on a 64-example LIMA snapshot until its loss falls, answers 20 IFEval
prompts with the trained adapter, and IFEval's rules score them."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from if_verifiable import IFEvalSample, evaluate_output_for_sample
from sqlalchemy import Engine, select

from app.evaluation.answers import GenerationSettings
from app.evaluation.ifeval import RULES_SEED, shipped_prompts
from app.evaluation.service import start_ifeval
from app.models import EvalItem, EvalRun, Job, TrainingMetric, TrainingRun
from app.platform.db import transaction
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.training import service as training
from app.training.presets import build_params
from tests.real_models import RealModel, reuse_conversion
from tests.training.conftest import make_snapshot


def _succeed(job_id: int | None) -> None:
    assert job_id is not None
    state = execute_job(job_id, inline=True)
    if state != "succeeded":
        with transaction() as session:
            raise AssertionError(session.get(Job, job_id).error)  # type: ignore[union-attr]


def test_smollm2_trains_on_lima_and_is_scored_on_ifeval(
    committed: Engine, smollm2: RealModel, data_dir: Path, tmp_path: Path
) -> None:
    reuse_conversion(smollm2)
    lima = json.loads((data_dir / "lima" / "lima.json").read_text())
    # The 64 single-turn examples with the shortest prompts, so that 64 tokens hold a prompt
    # and the start of its answer: a CPU step of 16 such rows takes seconds, not a minute.
    single = [r for r in lima if not r.get("history")]
    records: list[dict[str, Any]] = sorted(single, key=lambda r: len(r["instruction"]))[:64]
    params = build_params(
        "custom", method="lora", template="auto", epochs=2, batch_size=16, micro_batch_size=16,
        learning_rate=3e-3, scheduler="constant", warmup_ratio=0.0, max_seq_length=64,
        lora_r=16, save_steps=1000,
    )  # fmt: skip
    with transaction() as session:
        snapshot = make_snapshot(session, records, tmp_path)
        run_jobs_here(session)
        run, _ = training.create_run(session, snapshot.id, str(smollm2.gguf), params)
        run_id, train_job = run.id, run.job_id
    _succeed(train_job)
    with transaction() as session:
        losses = [m.loss for m in session.scalars(
            select(TrainingMetric).where(TrainingMetric.run_id == run_id).order_by("step")
        ) if m.loss is not None]  # fmt: skip
        assert session.get_one(TrainingRun, run_id).state == "succeeded"
    assert len(losses) == 8  # 64 examples, 16 a step, two epochs
    # The same 64 examples seen again: the second epoch's loss is well below the first's.
    assert sum(losses[-4:]) / 4 < 0.85 * sum(losses[:4]) / 4, losses

    with transaction() as session:
        run_jobs_here(session)
        evaluation = start_ifeval(
            session, f"run:{run_id}", limit=20, generation=GenerationSettings(max_tokens=32)
        )
        evaluation_id, eval_job = evaluation.id, evaluation.job_id
        assert session.get_one(Job, eval_job).queue == "gpu"  # a run's model answers locally
    _succeed(eval_job)
    with transaction() as session:
        done = session.get_one(EvalRun, evaluation_id)
        metrics, state = done.metrics, done.state
        items = session.scalars(
            select(EvalItem).where(EvalItem.run_id == evaluation_id).order_by(EvalItem.position)
        ).all()
        answered = [(item.prompt_id, item.answers_a) for item in items]
    assert state == "succeeded" and metrics["prompts"] == 20 and len(answered) == 20
    assert all(answers and answers[0].strip() for _, answers in answered)
    # The reference package scores the stored answers as the run did.
    shipped = {
        str(r["key"]): r for r in map(json.loads, shipped_prompts().read_text().splitlines())
    }
    followed = 0
    for prompt_id, answers in answered:
        assert answers is not None
        record = shipped[prompt_id]
        sample = IFEvalSample(record["key"], record["prompt"], record["instruction_id_list"],
                              record["kwargs"])  # fmt: skip
        random.seed(RULES_SEED)
        _, scores = evaluate_output_for_sample("ifeval", sample, answers[0])
        followed += int(scores.binary_strict)
    assert metrics["prompt_strict"] == followed / 20
