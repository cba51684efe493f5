"""Quotas with temperature across groups, quota sampling and the random baseline."""

from __future__ import annotations

import pytest

from app.platform.errors import InvalidInput
from app.selection.sampling import quota_counts, quota_sample, random_sample

SIZES = {"stackexchange": 2000, "wikihow": 200, "reddit": 50, "manual": 5}


@pytest.mark.parametrize("budget", [0, 1, 7, 100, 1000, 2254, 2255, 5000])
def test_counts_add_up_and_fit(budget: int) -> None:
    counts = quota_counts(SIZES, budget)
    assert sum(counts.values()) == min(budget, sum(SIZES.values()))
    assert all(0 <= counts[name] <= SIZES[name] for name in SIZES)


def test_small_groups_give_all_and_the_rest_is_shared() -> None:
    counts = quota_counts(SIZES, 500)
    assert counts["manual"] == 5 and counts["reddit"] == 50
    # What the small groups could not use went to the others, in the tau = 3 ratio.
    assert counts["stackexchange"] + counts["wikihow"] == 445
    ratio = counts["stackexchange"] / counts["wikihow"]
    assert ratio == pytest.approx(10 ** (1 / 3), rel=0.01)


def test_tau_one_is_proportional() -> None:
    assert quota_counts({"a": 300, "b": 100, "c": 600}, 100, tau=1) == {"a": 30, "b": 10, "c": 60}


def test_large_tau_is_near_uniform() -> None:
    counts = quota_counts({"a": 10_000, "b": 1_000, "c": 100}, 90, tau=1e6)
    assert counts == {"a": 30, "b": 30, "c": 30}


def test_tau_three_flattens() -> None:
    counts = quota_counts({"big": 8000, "small": 1000}, 300, tau=3)
    assert counts == {"big": 200, "small": 100}  # 8000^(1/3) : 1000^(1/3) = 2 : 1


def test_rounding_is_deterministic_with_ties_by_name() -> None:
    counts = quota_counts({"b": 10, "a": 10, "c": 10}, 4)
    assert counts == {"a": 2, "b": 1, "c": 1}
    assert quota_counts({"c": 10, "a": 10, "b": 10}, 4) == counts


def test_empty_groups() -> None:
    assert quota_counts({}, 10) == {}
    assert quota_counts({"a": 0, "b": 3}, 10) == {"a": 0, "b": 3}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"budget": -1}, "budget"), ({"tau": 0}, "tau"), ({"tau": -2.0}, "tau")],
)
def test_counts_reject_bad_input(kwargs: dict[str, float], field: str) -> None:
    arguments = {"sizes": SIZES, "budget": 10, **kwargs}
    with pytest.raises(InvalidInput) as caught:
        quota_counts(**arguments)  # type: ignore[arg-type]
    assert caught.value.detail["field"] == field


GROUPS = {"b": list(range(100, 130)), "a": list(range(0, 20)), "c": [200, 201]}


def test_quota_sample_best_score_first() -> None:
    scores = {i: float(i % 7) for ids in GROUPS.values() for i in ids}
    picked = quota_sample(GROUPS, 12, tau=1, scores=scores)
    counts = quota_counts({name: len(ids) for name, ids in GROUPS.items()}, 12, tau=1)
    # Group by group in name order; within a group best first, ties in pool order.
    expected: list[int] = []
    for name in sorted(GROUPS):
        ranked = sorted(GROUPS[name], key=lambda i: -scores[i])
        expected += ranked[: counts[name]]
    assert picked == expected


def test_quota_sample_seeded() -> None:
    first = quota_sample(GROUPS, 20, seed=3)
    assert quota_sample(GROUPS, 20, seed=3) == first
    assert quota_sample(GROUPS, 20, seed=4) != first
    assert len(first) == len(set(first)) == 20
    counts = quota_counts({name: len(ids) for name, ids in GROUPS.items()}, 20)
    for name, ids in GROUPS.items():
        assert sum(i in ids for i in first) == counts[name]


def test_a_group_sample_does_not_depend_on_other_groups() -> None:
    alone = quota_sample({"a": GROUPS["a"]}, 5, quotas={"a": 5}, seed=1)
    together = quota_sample(GROUPS, 9, quotas={"a": 5, "b": 4}, seed=1)
    assert together[:5] == alone


def test_explicit_quotas() -> None:
    picked = quota_sample(GROUPS, 100, quotas={"a": 3, "c": 9}, seed=0)
    assert len(picked) == 5 and set(picked[3:]) == {200, 201}  # c has only two
    with pytest.raises(InvalidInput) as caught:
        quota_sample(GROUPS, 4, quotas={"a": 3, "b": 3})
    assert caught.value.detail["field"] == "quotas"
    with pytest.raises(InvalidInput):
        quota_sample(GROUPS, 4, quotas={"zzz": 1})


def test_missing_score_is_an_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        quota_sample(GROUPS, 10, scores={0: 1.0})
    assert caught.value.detail["field"] == "scores"


def test_random_sample() -> None:
    ids = list(range(1000, 1500))
    first = random_sample(ids, 50, seed=7)
    assert random_sample(ids, 50, seed=7) == first
    assert random_sample(ids, 50, seed=8) != first
    assert len(set(first)) == 50 and set(first) <= set(ids)
    assert sorted(random_sample(ids[:10], 50)) == ids[:10]
    assert random_sample(ids, 0) == []
    with pytest.raises(InvalidInput):
        random_sample(ids, -1)
