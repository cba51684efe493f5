"""One rulebook: the API's body, the collection page's form and `sift select` refuse a broken
selection spec with the same sentence, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from app.collections.recipe_form import RecipeForm, spec_from_form
from app.collections.schemas import SelectionIn
from app.platform.errors import InvalidInput
from app.selection.commands import commands
from app.selection.service import SelectionSpec

BROKEN = [
    ({"method": "lima"}, "method", "method: one of threshold, deita, lima-quota, random"),
    ({"budget": None}, "budget", "budget: random needs a budget"),
    ({"budget": -1}, "budget", "budget: must be 0 or more"),
    ({"threshold": 1.5}, "threshold", "threshold: a cosine similarity in (-1, 1]"),
    ({"tau": 0.0}, "tau", "tau: must be above 0"),
    ({"group_by": "colour"}, "group_by", "group_by: one of"),
    ({"one_per_cluster": "fuzzy"}, "one_per_cluster", "one_per_cluster: one of"),
]
GOOD: dict[str, Any] = {"dataset": "pool", "method": "random", "budget": 3}


def _option(name: str, value: Any) -> list[str]:
    return [] if value is None else [f"--{name.replace('_', '-')}", str(value)]


@pytest.mark.parametrize(("change", "field", "sentence"), BROKEN)
def test_every_entry_point_refuses_the_same_way(
    change: dict[str, Any], field: str, sentence: str
) -> None:
    values = {**GOOD, **change}
    with pytest.raises(InvalidInput) as direct:
        SelectionSpec(**values)
    assert direct.value.detail["field"] == field and sentence in direct.value.message
    with pytest.raises(InvalidInput) as api:
        SelectionIn(**values, name="baseline")
    assert api.value.message == direct.value.message
    form = RecipeForm(**{k: "" if v is None else str(v) for k, v in values.items()})
    with pytest.raises(InvalidInput) as page:
        spec_from_form(form)
    assert page.value.message == direct.value.message
    options = [a for k, v in values.items() for a in _option(k, v)]
    cli = CliRunner().invoke(commands, ["select", *options, "--into", "c"])
    assert cli.exit_code == 1 and direct.value.message in cli.output


def test_a_value_of_the_wrong_type_is_named_too() -> None:
    with pytest.raises(InvalidInput) as raised:
        SelectionSpec.of({**GOOD, "budget": "many"})
    assert raised.value.detail["field"] == "budget"
    assert SelectionSpec.of(GOOD) == SelectionSpec("pool", "random", budget=3)
    assert SelectionIn(**GOOD, name="x").spec() == SelectionSpec("pool", "random", budget=3)
