"""bench/signals.py's IFD part: Sift's batched IFD scorer against the one-example-at-a-time
reference (Superfiltering's `code_ifd/data_analysis.py` steps) on real Alpaca records, in the same
run, in alternating rounds of 100 records. Without a model path a small random Llama is built here (its timings are then only a
sketch of a real model's)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.scoring.ifd import IfdScorer
from bench.common import DATA

TARGET_SPEEDUP = 3.0
ROUND = 100  # records per alternating round of the reference and Sift


def reference_ifd(
    tok: Any,
    model: Any,
    record: dict[str, str],
    max_length: int = 1024,
    tokens: list[int] | None = None,
) -> float:
    """One record at a time, as Superfiltering's data_analysis.py and put_analysis_to_data.py;
    the tokens of its two forward passes are added to `tokens`."""
    import torch

    instruction, output, given = record["instruction"], record["output"], record["input"]
    prompt = f"{instruction}\n{given}\n" if given else f"{instruction}\n"
    whole = prompt + output
    prompt_length = tok.encode(
        prompt, return_tensors="pt", truncation=True, max_length=max_length
    ).shape[1]
    ids = tok.encode(
        output, return_tensors="pt", truncation=True, max_length=max_length - prompt_length + 1
    )
    with torch.no_grad():
        alone = torch.exp(model(ids, labels=ids.contiguous()).loss).item()
        passed = ids.shape[1]
        ids = tok.encode(whole, return_tensors="pt", truncation=True, max_length=max_length)
        if tokens is not None:
            tokens.append(passed + ids.shape[1])
        labels = ids.clone()
        labels[0, : len(tok.encode(whole[: whole.rfind(output)]))] = -100
        condition = torch.exp(model(ids, labels=labels).loss).item()
    return condition / alone  # fmt: skip


def _random_llama(folder: Path, records: list[dict[str, str]]) -> Path:
    from tests.tiny_models import save_random_llama, word_tokenizer

    tokenizer = word_tokenizer([" ".join(r.values()) for r in records], bos_prefix=True)
    return save_random_llama(folder, tokenizer, hidden=256, positions=2048)


def ifd_bench(n: int, model: str | None) -> bool:
    """Print the timings and ratio; True when the target is met with identical scores."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.platform.errors import InvalidInput
    from app.platform.local_models import bundled_smollm2, model_folder

    records = [r for r in json.loads(DATA.read_text()) if r["output"]][:n]
    if model is None:
        with contextlib.suppress(InvalidInput):
            model = str(bundled_smollm2())
    with tempfile.TemporaryDirectory() as folder:
        given = model or _random_llama(Path(folder) / "llama", records)
        path = model_folder(given)  # a .gguf file's converted folder, for the reference
        what = Path(given).name if model else "a random Llama (hidden 256, 2 layers), built here"
        print(f"\n  IFD (Superfiltering's ifd-ppl): {len(records):,} Alpaca records, {what}, "
              f"{torch.get_num_threads()} torch threads")  # fmt: skip
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        lm.eval()
        scorer = IfdScorer(str(given), "superfiltering", batch_size=16)
        # Alternating rounds, so that both see the same load on a shared machine.
        expected: list[float] = []
        scores: list[Any] = []
        tokens: list[int] = []
        reference = sift = 0.0
        for at in range(0, len(records), ROUND):
            part = records[at : at + ROUND]
            start = time.perf_counter()
            for record in part:
                try:
                    expected.append(reference_ifd(tok, lm, record, tokens=tokens))
                except (ZeroDivisionError, RuntimeError):
                    expected.append(float("nan"))
            reference += time.perf_counter() - start
            start = time.perf_counter()
            scores += scorer.score([(r["instruction"], r["input"], r["output"]) for r in part])
            sift += time.perf_counter() - start
            # A line per round: a run stopped early still says how far it got, and at what ratio.
            print(f"    {at + len(part):>6,} records: reference {reference:8.1f} s, Sift "
                  f"{sift:7.1f} s, {reference / sift:5.2f}x, largest difference (relative above 1) "
                  f"{_worst(expected, scores):.1e}", flush=True)  # fmt: skip
    pairs = [(e, s.value) for e, s in zip(expected, scores, strict=True)]
    compared = [(e, v) for e, v in pairs if v is not None and e == e]
    skipped = sum(1 for e, v in pairs if v is None and e != e)  # NaN in the reference: no score
    worst = _worst(expected, scores)
    same = worst <= 1e-4 and len(compared) + skipped == len(pairs)
    print(f"    one at a time (reference)      {reference:8.2f} s")
    print(f"    Sift IfdScorer, batch 16       {sift:8.2f} s")
    print(f"    reference / Sift               {reference / sift:8.2f}x  (target >= "
          f"{TARGET_SPEEDUP}x: {'met' if reference / sift >= TARGET_SPEEDUP else 'MISSED'})")  # fmt: skip
    _print_ceiling(lm, sum(tokens), reference, sift)
    print(f"    largest difference (relative above 1) {worst:.2e}  over {len(compared):,} scores "
          f"({skipped} without a score in both: {'yes' if same else 'NO'})")  # fmt: skip
    return same and reference / sift >= TARGET_SPEEDUP


def _print_ceiling(model: Any, tokens: int, reference: float, sift: float) -> None:
    """How close the reference already is to this machine's float32 matrix products: the most
    any batching can gain over it, since both do the same products (2 flops per weight of every
    linear layer, the output layer's included, per token)."""
    import torch

    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    work = 2 * weights * tokens
    rows, inner, outer = 4096, model.config.hidden_size, model.config.intermediate_size
    a, b = torch.randn(rows, inner), torch.randn(inner, outer)
    torch.mm(a, b)
    start, runs = time.perf_counter(), 0
    while time.perf_counter() - start < 2.0:
        torch.mm(a, b)
        runs += 1
    peak = 2 * rows * inner * outer * runs / (time.perf_counter() - start)
    print(f"    float32 matrix products here    {peak / 1e9:8.1f} GFLOP/s ({rows} x {inner} by "
          f"{inner} x {outer}, the model's widest layer)")  # fmt: skip
    print(f"    reference {work / reference / 1e9:.1f} GFLOP/s ({work / reference / peak:.0%} of "
          f"it), Sift {work / sift / 1e9:.1f} GFLOP/s ({work / sift / peak:.0%}): at most "
          f"{peak * reference / work:.2f}x over the reference on this machine")  # fmt: skip


def _worst(expected: list[float], scores: list[Any]) -> float:
    """The largest difference between the reference's and Sift's scores where both have one,
    relative to the score where it is above 1: float32 forward passes agree to a few parts in
    100,000 of the ratio, so an answer with one token to predict alone (an IFD of 23) differs
    by 3e-4 where it agrees to 1.3e-5 of its value."""
    pairs = zip(expected, (s.value for s in scores), strict=True)
    return max((abs(e - v) / max(1.0, abs(e)) for e, v in pairs if v is not None and e == e),
               default=0.0)  # fmt: skip
