"""The collection dashboard's recipe form: its fields as typed, read into the selection spec
(a field that cannot be read, or a rule of the spec that it breaks, is named)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from pydantic import BaseModel

from app.platform import forms
from app.selection.service import SelectionSpec


class RecipeForm(BaseModel):
    """The dashboard's recipe form as typed; `spec_from_form` reads it (naming a bad field)."""

    dataset: str = ""
    method: str = ""
    budget: str = ""
    filters: str = ""
    source: str = ""
    scorer: str = ""
    threshold: str = ""
    embedding_model: str = ""
    group_by: str = "source"
    tau: str = ""
    quotas: str = ""
    one_per_cluster: str = ""
    seed: str = ""
    tokenizer: str = ""
    alpha: str = ""
    neighbours: str = ""
    name: str = ""


def spec_from_form(form: RecipeForm) -> SelectionSpec:
    """A selection recipe from the dashboard's form; a field that cannot be read, or a rule of
    the spec that it breaks, is named."""
    filters = form.filters.replace("\n", ",").split(",")
    return SelectionSpec.of(
        {
            "dataset": form.dataset.strip(),
            "method": form.method.strip(),
            "budget": forms.integer(form.budget, "budget"),
            "filters": [f.strip() for f in filters if f.strip()],
            "source": forms.optional(form.source),
            "scorer": forms.optional(form.scorer),
            "threshold": forms.number(form.threshold, "threshold", default=0.9),
            "embedding_model": forms.optional(form.embedding_model),
            "group_by": form.group_by.strip() or "source",
            "tau": forms.number(form.tau, "tau", default=3.0),
            "quotas": forms.quotas(form.quotas, "group") or None,
            "one_per_cluster": forms.optional(form.one_per_cluster),
            "seed": forms.integer(form.seed, "seed", default=0),
            "tokenizer": forms.optional(form.tokenizer),
            "alpha": forms.number(form.alpha, "alpha", default=0.0),
            "neighbours": forms.integer(form.neighbours, "neighbours"),
        }
    )


Recipe = Annotated[RecipeForm, Form()]
