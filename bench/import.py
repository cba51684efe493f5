"""Benchmark: importing Alpaca-format JSON into PostgreSQL with Sift.

Targets (DESIGN.md, "Performance targets"): >= 20,000 examples/s into PostgreSQL, within 2x of
a raw `COPY` of the same rows measured in the same run, and memory flat in the file's size.

    python bench/import.py              # 200,000 examples
    python bench/import.py --n 20000    # quicker
    python bench/import.py --profile    # also cProfile one Sift import into PostgreSQL

The examples are the real records of ../shared/data/alpagasus/random_9k.json (read in place),
repeated with a " (variant i)" suffix on the instruction so that every one is new. Sift's
imports run in a fresh child process each, so that the peak RSS reported is the import's own.
PostgreSQL work happens in the database `sift_bench` (created when missing, its schema dropped
and migrated on every run) of Sift's embedded server (started here, data under the system's
temporary folder); set SIFT_BENCH_POSTGRES_URL (or --url) to use another server. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/NAME.py` puts bench/ first on the path, where select.py would shadow the
# standard library's `select`: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import tempfile
import time
from typing import Any

import orjson

from bench.common import (
    DATA,
    ROOT,
    bench_url,
    build_records,
    peak_rss,
    plain_url,
    prepare_postgres,
    reset_peak_rss,
    write_json,
)

TARGET_RATE = 20_000
TARGET_RATIO = 2.0
RAW_COLUMNS = (
    "dataset_id", "messages", "instruction", "input", "output", "source", "category", "meta",
    "external_id", "content_hash", "source_format", "source_keys", "origin", "status", "version",
)  # fmt: skip


# ---------------------------------------------------------------- databases


def checkpoint(conn: Any) -> None:
    """Flush dirty pages now, so that no timed run pays for an earlier run's checkpoint."""
    conn.autocommit = True
    conn.execute("CHECKPOINT")
    conn.autocommit = False


def clean_slate(url: str) -> None:
    """Empty `examples` (and `datasets`) and checkpoint: each Sift run starts as COPY's does."""
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("TRUNCATE examples, datasets RESTART IDENTITY CASCADE")
        conn.commit()
        checkpoint(conn)


# ---------------------------------------------------------------- data


def raw_rows(records: list[dict[str, Any]], dataset_id: int) -> list[tuple[Any, ...]]:
    """The column values Sift writes for each record, computed ahead of the timed COPY."""
    from app.datasets.service import parse_alpaca

    rows = []
    for record in records:
        d = parse_alpaca(record)
        rows.append((
            dataset_id, orjson.dumps(d.messages).decode(), d.instruction, d.input, d.output,
            d.source, d.category, orjson.dumps(d.meta).decode(), d.external_id, d.content_hash,
            d.source_format, orjson.dumps(d.source_keys).decode(), "import", "candidate", 1,
        ))  # fmt: skip
    return rows


def raw_copy(url: str, rows: list[tuple[Any, ...]], *, search: bool) -> float:
    """Seconds for a plain COPY of the rows into a copy of `examples` (same indexes), committed;
    with `search`, the full-text column filled as it goes, as Sift's import of a small file
    does (a large one leaves it to a job)."""
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (LIKE examples INCLUDING ALL)")
        if search:
            conn.execute(
                "CREATE TRIGGER bench_raw_search BEFORE INSERT ON bench_raw "
                "FOR EACH ROW EXECUTE FUNCTION examples_search_text()"
            )
        conn.commit()
        checkpoint(conn)
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY bench_raw ({', '.join(RAW_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - start
        count = conn.execute("SELECT count(*) FROM bench_raw").fetchone()
        assert count is not None and count[0] == len(rows), count
        conn.execute("DROP TABLE bench_raw")
        conn.commit()
    return elapsed


# ---------------------------------------------------------------- Sift's import (child process)


def child(url: str, path: Path, name: str, reimport: bool, profile: Path | None) -> None:
    """Import the file into a new dataset, time it (and a re-import); print one JSON line."""
    from app.datasets.importer import import_file
    from app.entrypoints.domains import load_every_job_kind
    from app.models import Dataset
    from app.platform.db import make_engine, session_factory
    from app.platform.jobs.runner import execute_job

    load_every_job_kind()
    os.environ["SIFT_DATABASE_URL"] = url  # the job's own transactions

    engine = make_engine(url)
    factory = session_factory(engine)
    with factory() as session:
        dataset = Dataset(name=name)
        session.add(dataset)
        session.commit()
    result: dict[str, Any] = {"rss_before_mib": reset_peak_rss()}
    runs = ["first", "again"] if reimport else ["first"]
    for run in runs:
        profiler = cProfile.Profile() if profile and run == "first" else None
        with factory() as session:
            target = session.get(Dataset, dataset.id)
            assert target is not None
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            summary = import_file(session, target, path)
            session.commit()
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - start
        result[run] = {"seconds": elapsed, **summary.counts()}
        result[f"rss_after_{run}_mib"] = peak_rss()
        if summary.search_job:  # a large file: its full-text column is the job's to fill
            start = time.perf_counter()
            assert execute_job(summary.search_job, inline=True) == "succeeded"
            result[run]["search_seconds"] = time.perf_counter() - start
        if profiler and profile:
            profiler.dump_stats(profile)
    engine.dispose()
    print(json.dumps(result))


def run_child(url: str, path: Path, name: str, *, reimport: bool = False,
              profile: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Run `child` in a fresh interpreter and return what it reported."""
    command = [sys.executable, __file__, "--child", url, str(path), name]
    if reimport:
        command.append("--reimport")
    if profile:
        command += ["--profile-out", str(profile)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the import child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} examples/s  ({seconds:6.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="examples to import")
    parser.add_argument("--url", help="a PostgreSQL URL (default: the embedded server)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of COPY and of Sift")
    parser.add_argument("--profile", action="store_true", help="cProfile a Sift PG import")
    parser.add_argument(
        "--child", nargs=3, metavar=("URL", "FILE", "DATASET"), help=argparse.SUPPRESS
    )
    parser.add_argument("--reimport", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, path, name = args.child
        child(url, Path(path), name, args.reimport, args.profile_out)
        return
    if not DATA.is_file():
        raise SystemExit(f"the data file is missing: {DATA}")

    from app.platform.config import get_settings

    args.url = args.url or bench_url("sift_bench")
    n, quarter, repeat = args.n, max(args.n // 4, 1), max(args.repeat, 1)
    print(f"Sift import benchmark: {n:,} Alpaca examples built from {DATA.name}")
    prepare_postgres(args.url)
    records = build_records(n)
    with tempfile.TemporaryDirectory(prefix="sift-bench-") as tmp:
        folder = Path(tmp)
        full, small = folder / f"alpaca_{n}.json", folder / f"alpaca_{quarter}.json"
        write_json(records, full)
        write_json(records[:quarter], small)
        size = full.stat().st_size / 2**20
        print(f"  file {size:,.1f} MiB; each timing is the best of {repeat}, into an empty table")

        # The reference: the same rows, computed beforehand, COPYed into a twin of `examples`.
        rows = raw_rows(records, dataset_id=1)
        deferred = full.stat().st_size >= get_settings().import_defer_search_mb * 2**20
        del records
        copy_runs, pg_runs = [], []
        for attempt in range(repeat):
            copy_runs.append(raw_copy(args.url, rows, search=not deferred))
            clean_slate(args.url)
            pg_runs.append(run_child(args.url, full, "bench-full", reimport=attempt == 0))
            assert pg_runs[-1]["first"]["new"] == n, pg_runs[-1]
        del rows
        assert pg_runs[0]["again"]["duplicate"] == n, pg_runs[0]

        # Memory: the same import of a file a quarter the size, in a fresh process.
        clean_slate(args.url)
        small_run = run_child(args.url, small, "bench-quarter")

        if args.profile:
            clean_slate(args.url)
            profile_path = folder / "import.prof"
            run_child(args.url, full, "bench-profile", profile=profile_path)
            pstats.Stats(str(profile_path)).sort_stats("cumulative").print_stats(25)
            pstats.Stats(str(profile_path)).sort_stats("tottime").print_stats(20)
        clean_slate(args.url)  # leave no 200,000 rows behind

    copy_seconds = min(copy_runs)
    sift_seconds = min(run["first"]["seconds"] for run in pg_runs)
    ratio = sift_seconds / copy_seconds
    copy_list = ", ".join(f"{s:.2f}" for s in copy_runs)
    sift_list = ", ".join(f"{run['first']['seconds']:.2f}" for run in pg_runs)
    print()
    print(f"  raw COPY (reference)      {rate(n, copy_seconds)}"
          f"  runs: {copy_list} s")  # fmt: skip
    print(f"  Sift -> PostgreSQL        {rate(n, sift_seconds)}"
          f"  runs: {sift_list} s")  # fmt: skip
    print(f"  Sift re-import (all dup)  {rate(n, pg_runs[0]['again']['seconds'])}")
    indexed = [
        run["first"]["search_seconds"] for run in pg_runs if "search_seconds" in run["first"]
    ]
    if indexed:
        print(f"  then the search-index job {rate(n, min(indexed))}"
              f"  runs: {', '.join(f'{s:.2f}' for s in indexed)} s (one process, chunks in turn)")  # fmt: skip
    print()
    ok_rate = n / sift_seconds >= TARGET_RATE
    ok_ratio = ratio <= TARGET_RATIO
    print(f"  ratio Sift-PG / raw COPY  {ratio:.2f}x   (target <= {TARGET_RATIO}x: "
          f"{'met' if ok_ratio else 'MISSED'})")  # fmt: skip
    print(f"  rate >= {TARGET_RATE:,}/s         {'met' if ok_rate else 'MISSED'}")
    big = pg_runs[0]
    small_delta = small_run["rss_after_first_mib"] - small_run["rss_before_mib"]
    full_delta = big["rss_after_first_mib"] - big["rss_before_mib"]
    print(
        f"  peak RSS growth of import {small_delta:,.1f} MiB for {quarter:,} examples, "
        f"{full_delta:,.1f} MiB for {n:,} (process baseline {big['rss_before_mib']:,.0f} MiB)"
    )
    flat = full_delta <= max(2 * small_delta, small_delta + 32)
    print(f"  memory flat in file size  {'yes' if flat else 'NO'}")
    sys.exit(0 if ok_rate and ok_ratio and flat else 1)


if __name__ == "__main__":
    main()
