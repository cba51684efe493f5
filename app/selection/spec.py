"""The one rulebook of a selection: `SelectionSpec`, a pydantic dataclass that the API reads as
its body, the collection page builds from its form and `sift select` from its options.

Pydantic checks the types; `check` (run on construction, and again before a spec is used)
checks every bound and every rule between fields, raising `InvalidInput` that names the field,
so that each entry point shows the same sentence for the same mistake. The bounds are also
written into the JSON schema (`json_schema_extra`), for the API's documentation only."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, field
from typing import Any

from pydantic import Field, ValidationError
from pydantic.dataclasses import dataclass

from app.collections.service import GROUP_FIELDS
from app.platform.errors import InvalidInput
from app.selection.dedup import METHODS as DEDUP_METHODS

METHODS = (
    "threshold",
    "deita",
    "lima-quota",
    "random",
    "longest",
    "k-center",
    "facility-location",
)
# Fields added after recipes were first saved: left out of `canonical` at their defaults, so
# that a recipe saved before they existed keeps its stored form and its digest.
LATER_FIELDS = {"tokenizer": None, "alpha": 0.0, "neighbours": None}


@dataclass
class SelectionSpec:
    """Everything that decides a selection: the same spec on the same pool gives the same set."""

    dataset: str = Field(description="the pool to select from")
    method: str = Field(
        description=" | ".join(METHODS),
        json_schema_extra={"enum": list(METHODS)},
    )
    budget: int | None = Field(
        default=None,
        description="how many to pick, 0 or more (threshold: optional)",
        json_schema_extra={"minimum": 0},
    )
    filters: list[str] = field(default_factory=list)  # score expressions, all must hold
    source: str | None = None
    # deita: the sort key; lima-quota: best first; threshold: order; k-center: the first pick;
    # facility-location: the quality term
    scorer: str | None = None
    threshold: float = Field(
        default=0.9,
        description="deita: the largest cosine similarity to anything kept, in (-1, 1]",
        json_schema_extra={"exclusiveMinimum": -1, "maximum": 1},
    )
    embedding_model: str | None = None
    group_by: str = Field(
        default="source",
        description="lima-quota: source | category",
        json_schema_extra={"enum": list(GROUP_FIELDS)},
    )
    tau: float = Field(
        default=3.0,
        description="lima-quota: temperature across groups, above 0",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    quotas: dict[str, int] | None = None
    # A near-duplicate method (exact | minhash | embedding): keep cluster representatives only.
    one_per_cluster: str | None = None
    seed: int = 0
    tokenizer: str | None = Field(
        default=None,
        description="longest: count tokens of this local tokenizer folder (default: characters)",
    )
    alpha: float = Field(
        default=0.0,
        description="facility-location: weight of the scorer's quality term, in [0, 1]",
        json_schema_extra={"minimum": 0, "maximum": 1},
    )

    neighbours: int | None = Field(
        default=None,
        description="facility-location: each candidate's N nearest by the vector index (an "
        "approximation; default: every similarity up to 5,000 candidates, 32 nearest above)",
        json_schema_extra={"minimum": 1},
    )

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def of(cls, values: dict[str, Any]) -> SelectionSpec:
        """A spec from loose values (a form's, a command's): a value of the wrong type is
        InvalidInput naming its field, like a broken rule."""
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = ".".join(str(part) for part in error["loc"]) or "spec"
            raise InvalidInput(f"{name}: {error['msg']}", field=name) from None

    def check(self) -> None:
        """Refuse a spec that cannot run, naming the field."""
        if not self.dataset.strip():
            raise InvalidInput("dataset: choose the pool to select from", field="dataset")
        if self.method not in METHODS:
            raise InvalidInput(
                f"method: one of {', '.join(METHODS)}, not {self.method!r}", field="method"
            )
        if self.budget is None and self.method != "threshold":
            raise InvalidInput(f"budget: {self.method} needs a budget", field="budget")
        if self.budget is not None and self.budget < 0:
            raise InvalidInput("budget: must be 0 or more", field="budget")
        if not -1 < self.threshold <= 1:
            raise InvalidInput("threshold: a cosine similarity in (-1, 1]", field="threshold")
        if self.group_by not in GROUP_FIELDS:
            raise InvalidInput(f"group_by: one of {GROUP_FIELDS}", field="group_by")
        if self.tau <= 0:
            raise InvalidInput("tau: must be above 0", field="tau")
        if self.one_per_cluster and self.one_per_cluster not in DEDUP_METHODS:
            raise InvalidInput(f"one_per_cluster: one of {DEDUP_METHODS}", field="one_per_cluster")
        if not 0 <= self.alpha <= 1:
            raise InvalidInput("alpha: a weight in [0, 1]", field="alpha")
        if self.alpha > 0 and self.method == "facility-location" and not self.scorer:
            raise InvalidInput("scorer: alpha above 0 weighs a scorer's values", field="scorer")
        if self.neighbours is not None and self.method != "facility-location":
            raise InvalidInput("neighbours: only facility-location uses them", field="neighbours")
        if self.neighbours is not None and self.neighbours < 1:
            raise InvalidInput("neighbours: at least 1", field="neighbours")
        if self.tokenizer is not None and self.method != "longest":
            raise InvalidInput("tokenizer: only longest counts tokens", field="tokenizer")

    def canonical(self) -> dict[str, Any]:
        """The spec as stored with a saved recipe and a collection."""
        values = asdict(self)
        for name, default in LATER_FIELDS.items():
            if values[name] == default:
                del values[name]
        return values

    def digest(self) -> str:
        """A short hash of the spec, naming an unnamed recipe."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]
