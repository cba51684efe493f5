"""`sift eval ifeval` end to end on the embedded default: answers from the test endpoint,
checked by IFEval's rules, the same accuracies as the reference package on those answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from if_verifiable import IFEvalSample, evaluate_output_for_sample

from app.evaluation import ifeval
from app.evaluation.answers import ModelRef
from app.platform.errors import InvalidInput
from tests.factories import write_jsonl
from tests.llm_server import LLMServer
from tests.real_models import RealModel, reuse_conversion
from tests.test_cli import (  # noqa: F401  (fixtures)
    Sift,
    assert_user_error,
    migrated_folder,
    ready,
    sift,
)

SHIPPED = [json.loads(line) for line in ifeval.shipped_prompts().read_text().splitlines()]
# Replies to the first six shipped prompts: some follow every instruction, some none.
REPLIES = [
    "*The Count* *His Rise* *His Fall* " + "Raymond ruled Tripoli well " * 60,
    "Day one: Tokyo, temples, and tea.",  # commas: fails "no commas"
    "Name: [name] [address] [phone] [email] [school] [city] [state] [zip] [date] [gpa] [a] [b]",
    "hello",
    "sure",
    "okay",
]


def _script(llm: LLMServer) -> None:
    for record, reply in zip(SHIPPED[:6], REPLIES, strict=True):
        llm.script("^" + re.escape(record["prompt"][:60]), reply, model="alpha-model")


def test_ifeval_from_the_command_line(ready: Sift, llm: LLMServer) -> None:  # noqa: F811
    _script(llm)
    result = ready("eval", "ifeval", "--model", "endpoint:alpha", "--limit", "6", "--wait")
    assert result.exit_code == 0, result.output
    assert "evaluation 1: IFEval of endpoint:alpha on ifeval (6 of 6 prompts checked" in (
        result.stdout
    )
    shown = ready("eval", "show", "1", "--json")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    # The reference package's own verdicts on the same answers.
    strict, loose, instructions = [], [], []
    for record, reply in zip(SHIPPED[:6], REPLIES, strict=True):
        sample = IFEvalSample(record["key"], record["prompt"], record["instruction_id_list"],
                              record["kwargs"])  # fmt: skip
        results, _ = evaluate_output_for_sample("ifeval", sample, reply)
        strict.append([r.strict_pass for r in results])
        loose.append([r.loose_pass for r in results])
        instructions += record["instruction_id_list"]
    assert body["kind"] == "ifeval" and body["state"] == "succeeded"
    assert body["prompt_strict"] == sum(all(s) for s in strict) / 6
    assert body["prompt_loose"] == sum(all(s) for s in loose) / 6
    assert body["instruction_strict"] == sum(map(sum, strict)) / len(instructions)
    assert body["instruction_loose"] == sum(map(sum, loose)) / len(instructions)
    assert 0 < body["prompt_loose"] < 1  # some prompts followed, some not
    assert body["by_instruction"]["punctuation:no_comma"]["count"] == 2
    # Each answer is asked once: a second run of the same model reuses the stored answers.
    asked = llm.stats()["total"]
    again = ready("eval", "ifeval", "--model", "alpha", "--limit", "6", "--wait")
    assert again.exit_code == 0, again.output
    assert llm.stats()["total"] == asked
    assert "evaluation 2: IFEval of endpoint:alpha" in again.stdout
    listed = ready("eval", "list")
    assert "ifeval" in listed.stdout


def test_ifeval_on_a_file_of_ones_own(ready: Sift, llm: LLMServer, tmp_path: Path) -> None:  # noqa: F811
    records = [
        {"key": 1, "prompt": "Write about cats. Do not use any commas.",
         "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
        {"key": 2, "prompt": "Write about dogs in all lowercase letters.",
         "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]},
    ]  # fmt: skip
    llm.script("^Write about cats", "Cats sleep, eat, and play.", model="alpha-model")
    llm.script("^Write about dogs", "dogs are loyal and they love long walks.", model="alpha-model")
    path = write_jsonl(tmp_path / "mine.jsonl", records)
    result = ready("eval", "ifeval", "--model", "alpha", "--prompts", path, "--wait")
    assert result.exit_code == 0, result.output
    body = json.loads(ready("eval", "show", "1", "--json").stdout)
    assert body["test_set"].startswith("ifeval-") and body["total"] == 2
    assert body["prompt_strict"] == 0.5 and body["instruction_loose"] == 0.5
    assert body["by_instruction"] == {
        "change_case:english_lowercase": {"count": 1, "strict": 1.0, "loose": 1.0},
        "punctuation:no_comma": {"count": 1, "strict": 0.0, "loose": 0.0},
    }
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**records[0], "instruction_id_list": ["x:y"]}])
    assert_user_error(
        ready("eval", "ifeval", "--model", "alpha", "--prompts", bad),
        "IFEval has no instruction x:y",
    )
    assert_user_error(
        ready("eval", "ifeval", "--model", "alpha", "--prompts", tmp_path / "none.jsonl"),
        "no such file",
    )


def test_ifeval_of_a_local_gguf_model(
    ready: Sift,  # noqa: F811
    smollm2: RealModel,
    tmp_path: Path,
) -> None:
    reuse_conversion(smollm2)  # this data folder finds the session's conversion
    args = ["eval", "ifeval", "--limit", "3", "--max-tokens", "16", "--wait"]
    result = ready(*args, "--model", smollm2.gguf)
    assert result.exit_code == 0, result.output
    assert f"{smollm2.gguf.name}: using its converted model folder" in result.stdout
    assert (
        f"evaluation 1: IFEval of model:{smollm2.gguf} on ifeval (3 of 3 prompts" in result.stdout
    )
    body = json.loads(ready("eval", "show", "1", "--json").stdout)
    assert body["prompts"] == 3 and body["instructions"] >= 3
    # The same file named as model:PATH: the same model, its stored answers reused.
    again = ready(*args, "--model", f"model:{smollm2.gguf}")
    assert again.exit_code == 0, again.output
    assert json.loads(ready("eval", "show", "2", "--json").stdout)["metrics"] == body["metrics"]
    missing = tmp_path / "model.gguf"  # under the model roots (the tests' temporary folders)
    assert_user_error(ready(*args, "--model", missing), f"no such GGUF file: {missing}")
    outside = ready(*args, "--model", "/no/such/model.gguf")
    assert_user_error(outside, "is not under a folder Sift may read models from")


def test_model_references() -> None:
    assert str(ModelRef.parse("7")) == "run:7"
    assert str(ModelRef.parse("alpha")) == "endpoint:alpha"
    assert str(ModelRef.parse("/m/SmolLM2.gguf")) == "model:/m/SmolLM2.gguf"
    assert str(ModelRef.parse("model:/m/folder")) == "model:/m/folder"
    assert ModelRef.parse("./x.gguf").name == str(Path("x.gguf").resolve())
    with pytest.raises(InvalidInput, match="is not run:ID, model:PATH"):
        ModelRef.parse("cloud:x")
