"""Answers by a training run's model: a tiny random Llama saved in the training artifact layout,
as a full model and as a LoRA adapter made with peft, generating with transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.evaluation.answers import GenerationSettings, ModelRef, check_model, run_final_dir
from app.evaluation.local_model import LocalGenerator, generator_for, load_run_model
from app.models import Collection, EvalAnswer, Snapshot, TrainingRun
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from tests.evaluation.conftest import load_run, make_test_set, run_evaluation
from tests.factories import unique
from tests.llm_server import LLMServer
from tests.scoring.tiny_llama import build_tiny_llama

CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant {% endif %}"
)
SETTINGS = GenerationSettings(max_tokens=6)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer has a chat template."""
    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def adapter(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny Llama, with weights that change its answers."""
    folder = tmp_path_factory.mktemp("adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "lora_B" in name:  # zeros at first: the adapter would change nothing
                weight.normal_(0, 2.0)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(folder)
    return folder


def _snapshot(session: Session) -> Snapshot:
    """An (empty) snapshot for a training run to point at."""
    collection = Collection(name=unique("trained-on"))
    session.add(collection)
    session.flush()
    snapshot = Snapshot(collection_id=collection.id, digest=unique("digest"), example_count=0)
    session.add(snapshot)
    session.flush()
    return snapshot


def _trained_run(artifact: Path, base_model: str, method: str) -> int:
    """A succeeded training run whose final folder holds `artifact`, as training leaves it."""
    with transaction() as session:
        run = TrainingRun(
            snapshot_id=_snapshot(session).id,
            base_model=base_model,
            method=method,
            state="succeeded",
        )
        session.add(run)
        session.flush()
        run_id = run.id
    final = run_final_dir(run_id)
    shutil.copytree(artifact, final)
    spec = {"base_model": base_model, "method": method}
    (final.parent / "sift_run.json").write_text(json.dumps(spec))
    (final / "sift_run.json").write_text(json.dumps(spec))
    return run_id


def test_full_model_and_adapter_answer_both_turns(
    db: Engine, llm: LLMServer, tiny: Path, adapter: Path
) -> None:
    full = _trained_run(tiny, str(tiny), "full")
    lora = _trained_run(adapter, str(tiny), "lora")
    llm.script(r"Assistant A", "They are alike. [[C]]", model="judge-model")
    make_test_set("chat", [["How do I sort a list in Python?", "Explain why the sky is blue"]])

    run_id = run_evaluation("chat", f"run:{full}", str(lora), generation=SETTINGS)

    run, job, items = load_run(run_id)
    assert job.queue == "gpu" and job.state == "succeeded"
    item = items["p1"]
    assert item.answers_a is not None and item.answers_b is not None
    assert len(item.answers_a) == len(item.answers_b) == 2
    assert item.answers_a != item.answers_b  # the adapter changed the model
    assert (item.verdict, run.ties) == ("tie", 1)
    with transaction() as session:
        models = session.scalars(select(EvalAnswer.model).order_by(EvalAnswer.model)).all()
        direct = generator_for(session.get_one(TrainingRun, full)).answer(
            [["How do I sort a list in Python?", "Explain why the sky is blue"]], SETTINGS
        )
    assert models == [f"run:{full}", f"run:{lora}"]
    assert direct[0].turns == item.answers_a  # greedy: the same answers every time


def test_a_run_against_an_endpoint_reuses_its_answers(
    db: Engine, llm: LLMServer, tiny: Path
) -> None:
    full = _trained_run(tiny, str(tiny), "full")
    # The judge prefers the run's answers to beta's, and alpha's to the run's, in both orders.
    for endpoint, first, second in (("beta", "2 9", "9 2"), ("alpha", "9 2", "2 9")):
        llm.script(rf"1's Answer\]\n{endpoint} answer", first, model="judge-model")
        llm.script(rf"2's Answer\]\n{endpoint} answer", second, model="judge-model")
    make_test_set("pair", ["What is 12 + 34?", "Write a haiku about the sea."])

    first = run_evaluation("pair", f"run:{full}", "endpoint:beta", generation=SETTINGS)
    sent = llm.stats()["total"]
    second = run_evaluation("pair", f"run:{full}", "alpha", generation=SETTINGS)

    run, _, items = load_run(first)
    assert (run.wins, run.losses) == (2, 0)
    assert items["p1"].answers_b == ["beta answer to What"]
    run, _, items = load_run(second)
    assert (run.wins, run.losses) == (0, 2)
    assert llm.stats()["total"] == sent + 2 + 4  # alpha's answers and the verdicts: new
    with transaction() as session:
        stored = session.scalar(select(func.count()).where(EvalAnswer.model == f"run:{full}"))
    assert stored == 2  # the run's answers were made once and reused


def test_batched_generation_equals_one_at_a_time(tiny: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(tiny).eval()
    generator = LocalGenerator(tokenizer, model, torch.device("cpu"))
    prompts = [
        ["What is 12 + 34?"],
        ["Write a haiku about the sea. Waves fold into foam, the gulls cry over the grey."],
        ["Explain why the sky is blue"],
    ]
    together = generator.answer(prompts, SETTINGS)
    alone = [generator.answer([p], SETTINGS)[0] for p in prompts]
    assert [a.turns for a in together] == [a.turns for a in alone]
    assert all(a.completion_tokens > 0 for a in together)
    sampled = GenerationSettings(max_tokens=6, temperature=1.0, seed=3)
    assert (
        generator.answer(prompts, sampled)[1].turns == generator.answer(prompts, sampled)[1].turns
    )


def test_runs_that_cannot_answer_are_refused(db: Engine, tiny: Path) -> None:
    with transaction() as session:
        with pytest.raises(InvalidInput, match="not a number"):
            ModelRef.parse("run:latest")
        run = TrainingRun(snapshot_id=_snapshot(session).id, base_model=str(tiny), state="running")
        session.add(run)
        session.flush()
        with pytest.raises(InvalidInput, match="only a succeeded run"):
            check_model(session, ModelRef.parse(str(run.id)))
        run.state = "succeeded"
        with pytest.raises(InvalidInput, match="has no model"):
            check_model(session, ModelRef("run", str(run.id)))
    no_template = _trained_run(tiny, str(tiny), "full")
    final = run_final_dir(no_template)
    config = json.loads((final / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (final / "tokenizer_config.json").write_text(json.dumps(config))
    (final / "chat_template.jinja").unlink(missing_ok=True)
    with transaction() as session, pytest.raises(InvalidInput, match="no chat template"):
        load_run_model(session.get_one(TrainingRun, no_template))
