"""Local models: a GGUF file is converted once to a safetensors folder (cached by its sha256)
and then loads wherever a folder does; SmolLM2-135M-Instruct answers with its chat template."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from app.platform.config import get_settings
from app.platform.errors import InvalidInput
from app.platform.local_models import (
    check_model_path,
    converted_folder,
    load_causal_lm,
    model_folder,
    publish,
    token_losses,
)
from tests.real_models import RealModel


def test_the_smollm2_gguf_converts_to_a_folder_named_by_its_sha256(smollm2: RealModel) -> None:
    digest = hashlib.sha256(smollm2.gguf.read_bytes()).hexdigest()
    assert smollm2.folder == get_settings().data_dir.resolve() / "models" / "gguf" / digest
    names = {p.name for p in smollm2.folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not [n for n in names if n.endswith(".gguf")]  # a folder of its own, not a link
    config = json.loads((smollm2.folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    # Nothing of the conversion's temporary folders is left beside it.
    assert [p.name for p in smollm2.folder.parent.iterdir()] == [digest]


def test_a_second_use_finds_the_conversion_and_says_so(smollm2: RealModel) -> None:
    said: list[str] = []
    modified = (smollm2.folder / "model.safetensors").stat().st_mtime_ns
    assert model_folder(smollm2.gguf, announce=said.append) == smollm2.folder
    assert model_folder(str(smollm2.gguf)) == smollm2.folder
    assert said == [f"{smollm2.gguf.name}: using its converted model folder {smollm2.folder}"]
    assert (smollm2.folder / "model.safetensors").stat().st_mtime_ns == modified
    # A folder is used as it is.
    assert model_folder(smollm2.folder) == smollm2.folder


def test_smollm2_answers_with_its_chat_template(smollm2: RealModel) -> None:
    tokenizer, model, device = load_causal_lm(smollm2.gguf, padding_side="left")
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_a_missing_or_broken_gguf_is_one_clear_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    with pytest.raises(InvalidInput, match=f"no such GGUF file: {missing}"):
        model_folder(missing)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(InvalidInput, match=f"{junk} is not a GGUF file"):
        model_folder(junk)
    # The right magic bytes and nothing after them: transformers cannot read it.
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(InvalidInput, match=f"{truncated} cannot be read as a GGUF model"):
        model_folder(truncated)
    # Nothing half-converted is left to be taken for a conversion later.
    assert not converted_folder(truncated).exists()
    assert not [p for p in converted_folder(truncated).parent.iterdir() if p.name.startswith(".")]
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    with pytest.raises(InvalidInput, match=r"not a model folder with a config\.json, nor a \.gguf"):
        check_model_path(folder)


def test_two_conversions_of_one_file_keep_the_first_folder(tmp_path: Path) -> None:
    target = tmp_path / "digest"
    first, second = tmp_path / ".digest.a", tmp_path / ".digest.b"
    for folder, text in ((first, "first"), (second, "second")):
        folder.mkdir()
        (folder / "config.json").write_text(text)
    publish(first, target)
    publish(second, target)  # another process finished later: its copy is not used
    assert (target / "config.json").read_text() == "first"
    assert not first.exists() and second.exists()  # the loser's copy is removed by its owner


def test_token_losses_equal_the_models_own_loss(smollm2: RealModel) -> None:
    """On SmolLM2 and an answer of 40 tokens (record 1,877 of AlpaGasus' random_9k.json), the
    mean of the per-token losses is the model's own loss to float32 precision. Computed with
    the vocabulary as the second dimension it was 1.2e-4 off, and IFD scores with it."""
    tokenizer, model, _ = load_causal_lm(smollm2.folder, padding_side="right")
    text = "[15, 42, 89, 93, 28, 64, 23, 81, 11, 52]"
    ids = torch.tensor([tokenizer.encode(text)])
    with torch.no_grad():
        out = model(ids, labels=ids)
    losses = token_losses(out.logits[:, :-1], ids[:, 1:])
    assert losses.shape == (1, ids.shape[1] - 1)
    assert losses.double().mean().item() == pytest.approx(out.loss.item(), rel=1e-6)
    ignored = token_losses(out.logits[:, :-1], torch.full_like(ids[:, 1:], -100))
    assert torch.all(ignored == 0)
