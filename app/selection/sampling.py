"""LIMA-style quotas across sources (temperature sampling) and the seeded random baseline.

LIMA (DESIGN.md, "LIMA heuristics") samples across sources with p(source) proportional to
n_source^(1/tau), tau = 3: large sources still give more, but far less than their share of the
pool. Every function here is deterministic: the same inputs and seed give the same list.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from app.platform.errors import InvalidInput


def quota_counts(sizes: Mapping[str, int], budget: int, tau: float = 3.0) -> dict[str, int]:
    """How many examples to take from each group: p(g) proportional to n_g^(1/tau), capped."""
    _check_budget(budget)
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise InvalidInput(f"tau must be a positive number, not {tau!r}", field="tau")
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInput(f"group {name!r} has an invalid size {size!r}", field="sizes")
    counts = dict.fromkeys(sizes, 0)
    remaining = min(budget, sum(sizes.values()))
    active = sorted(name for name, size in sizes.items() if size > 0)
    shares: dict[str, float] = {}
    # A group whose share is at least its size gives all it has; the rest is shared again
    # among the others, until every share fits.
    while active and remaining:
        weights = {name: sizes[name] ** (1.0 / tau) for name in active}
        total = math.fsum(weights.values())
        shares = {name: remaining * weight / total for name, weight in weights.items()}
        full = [name for name in active if shares[name] >= sizes[name]]
        if not full:
            break
        for name in full:
            counts[name] = sizes[name]
            remaining -= sizes[name]
        active = [name for name in active if name not in full]
    if not active or not remaining:
        return counts
    # Largest remainder: floors first, then one more for the largest fractions (ties by name).
    for name in active:
        counts[name] = math.floor(shares[name])
    left = remaining - sum(counts[name] for name in active)
    by_fraction = sorted(active, key=lambda name: (-(shares[name] - counts[name]), name))
    for name in by_fraction:
        if left <= 0:
            break
        if counts[name] < sizes[name]:
            counts[name] += 1
            left -= 1
    return counts


def quota_sample(
    groups: Mapping[str, Sequence[int]],
    budget: int,
    *,
    tau: float = 3.0,
    quotas: Mapping[str, int] | None = None,
    scores: Mapping[int, float] | None = None,
    seed: int = 0,
) -> list[int]:
    """Example ids by quota per group: best score first when scored, else a seeded sample."""
    _check_budget(budget)
    sizes = {name: len(ids) for name, ids in groups.items()}
    if quotas is None:
        counts = quota_counts(sizes, budget, tau)
    else:
        counts = _explicit_counts(quotas, sizes, budget)
    picked: list[int] = []
    for name in sorted(groups):
        ids, count = groups[name], counts.get(name, 0)
        if count == 0:
            continue
        if scores is not None:
            missing = [i for i in ids if i not in scores]
            if missing:
                raise InvalidInput(
                    f"no score for example {missing[0]} of group {name!r}", field="scores"
                )
            order = np.argsort(-np.array([scores[i] for i in ids], dtype=np.float64), kind="stable")
            picked.extend(int(ids[i]) for i in order[:count])
        else:
            # One generator per group, seeded from the seed and the group's name, so a group's
            # sample does not change when another group is added or removed.
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            picked.extend(int(ids[i]) for i in rng.choice(len(ids), size=count, replace=False))
    return picked


def random_sample(ids: Sequence[int], budget: int, seed: int = 0) -> list[int]:
    """A seeded uniform sample of `budget` ids (all of them, shuffled, if fewer), the baseline."""
    _check_budget(budget)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ids), size=min(budget, len(ids)), replace=False)
    return [int(ids[i]) for i in picks]


def _check_budget(budget: int) -> None:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise InvalidInput(f"budget must be a non-negative integer, not {budget!r}", field="budget")


def _explicit_counts(
    quotas: Mapping[str, int], sizes: Mapping[str, int], budget: int
) -> dict[str, int]:
    """Explicit per-group counts, capped by what each group has; they must fit the budget."""
    unknown = sorted(set(quotas) - set(sizes))
    if unknown:
        raise InvalidInput(f"quota for an unknown group {unknown[0]!r}", field="quotas")
    counts = {}
    for name, quota in quotas.items():
        if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
            raise InvalidInput(f"the quota of {name!r} must be >= 0, not {quota!r}", field="quotas")
        counts[name] = min(quota, sizes[name])
    # Cutting quotas down to a smaller budget would need a rule the user did not give.
    if sum(counts.values()) > budget:
        raise InvalidInput(
            f"the quotas add up to {sum(counts.values())}, more than the budget {budget}",
            field="quotas",
        )
    return counts
