"""What a lead asks of a generation run: the method, the source and target datasets, the
size, rounds, endpoint and budget; and the rules a request must keep."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.generation import prompts
from app.generation.methods import ALPACA, VARIANTS
from app.models import GenerationMethod
from app.platform.errors import InvalidInput

GENERATE_KIND = "generate"
DEFAULT_ENDPOINT = "default"
METHODS = tuple(m.value for m in GenerationMethod)
DEFAULT_ROUNDS = {"self-instruct": 1, "evol-instruct": 4, "evol-quality": 5}
DEFAULT_N = 100
MAX_N = 100_000
MAX_ROUNDS = 10


@dataclass
class GenerationSpec:
    """Everything that decides a generation run."""

    method: str
    source: str
    into: str
    n: int | None = None  # self-instruct: new tasks; evol: how many parents (None: all)
    rounds: int | None = None
    endpoint: str = DEFAULT_ENDPOINT
    budget_usd: float | None = None
    variant: str = ALPACA
    seed: int = 0
    operations: list[str] = field(default_factory=list)  # evol: a subset of the operations
    batch: bool = False  # through the OpenAI Batch API, at its price

    def check(self) -> None:
        """Refuse a spec that cannot run, naming the field."""
        if self.method not in METHODS:
            raise InvalidInput(f"method: one of {', '.join(METHODS)}", field="method")
        if self.n is not None and not 1 <= self.n <= MAX_N:
            raise InvalidInput(f"n: between 1 and {MAX_N:,}", field="n")
        if self.rounds is not None and not 1 <= self.rounds <= MAX_ROUNDS:
            raise InvalidInput(f"rounds: between 1 and {MAX_ROUNDS}", field="rounds")
        if self.method == "self-instruct" and self.rounds not in (None, 1):
            raise InvalidInput("rounds: self-instruct has one round", field="rounds")
        if self.variant not in VARIANTS:
            raise InvalidInput(f"variant: one of {', '.join(VARIANTS)}", field="variant")
        allowed = self.allowed_operations()
        unknown = [op for op in self.operations if op not in allowed]
        if unknown:
            raise InvalidInput(
                f"operations: {', '.join(unknown)} not among {', '.join(allowed)}",
                field="operations",
            )
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise InvalidInput("budget: must be more than 0 USD", field="budget_usd")
        if not self.into.strip():
            raise InvalidInput("into: name the dataset to fill", field="into")

    def allowed_operations(self) -> tuple[str, ...]:
        """The operations this method picks from."""
        if self.method == "evol-instruct":
            return prompts.EVOL_INSTRUCT_METHODS
        if self.method == "evol-quality":
            return tuple(prompts.QUALITY_METHODS)
        return ()

    @property
    def round_count(self) -> int:
        """The rounds asked for, or the method's default (WizardLM 4, Deita 5)."""
        return self.rounds or DEFAULT_ROUNDS[self.method]
