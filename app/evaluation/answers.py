"""The models under evaluation and their answers: a training run's model, a local model (a
folder or a GGUF file) or an endpoint.

An answer is keyed by the model, the prompt's turns and the generation settings, and stored
in `eval_answers`, so that it is never made twice: a second evaluation of the same model on
the same test set reuses every answer. Endpoint calls also go through the LLM response cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import EvalAnswer, TrainingRun
from app.platform.db import conflict_insert
from app.platform.errors import InvalidInput, NotFound
from app.platform.hashing import json_sha256
from app.platform.llm.chat import ChatRequest
from app.platform.llm.client import LLMClient
from app.platform.llm.endpoints import get_endpoint, normalise_base_url
from app.platform.local_models import check_model_path, file_sha256, is_gguf
from app.training.service import final_dir, run_dir

RUN, ENDPOINT, MODEL = "run", "endpoint", "model"
SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class ModelRef:
    """`run:ID` (a succeeded training run's model), `model:PATH` (a local model folder or GGUF
    file, answering with its own chat template) or `endpoint:NAME` (a configured endpoint)."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """`run:ID`, `model:PATH`, `endpoint:NAME`, a bare integer (a run), a bare path (a local
        model: it has a `/` or ends in .gguf) or a bare name (an endpoint)."""
        value = text.strip()
        kind, sep, name = value.partition(":")
        if not sep or (kind.strip().lower() not in (RUN, ENDPOINT, MODEL)):
            if value.isdigit():
                kind, name = RUN, value
            elif "/" in value or is_gguf(value):
                kind, name = MODEL, value
            elif not sep:
                kind, name = ENDPOINT, value
        kind, name = kind.strip().lower(), name.strip()
        if kind not in (RUN, ENDPOINT, MODEL) or not name:
            raise InvalidInput(
                f"model: {text!r} is not run:ID, model:PATH, endpoint:NAME, an id or a name",
                field="model",
            )
        if kind == MODEL:
            return cls(kind, str(Path(name).expanduser().resolve()))
        if kind == RUN and not name.isdigit():
            raise InvalidInput(f"model: run id {name!r} is not a number", field="model")
        return cls(kind, name.lower() if kind == ENDPOINT else name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def run_id(self) -> int:
        """The training run's id (for `run:` references)."""
        return int(self.name)


def run_final_dir(run_id: int) -> Path:
    """Where a succeeded training run keeps its final artifact (the training contract)."""
    return final_dir(run_dir(run_id))


def check_model(session: Session, ref: ModelRef) -> str:
    """Make sure the model can answer; its identity for answer keys (the run, or the server
    and model behind an endpoint name)."""
    if ref.kind == ENDPOINT:
        endpoint = get_endpoint(ref.name)
        return f"endpoint:{normalise_base_url(endpoint.base_url)}#{endpoint.model}"
    if ref.kind == MODEL:
        path = check_model_path(ref.name)
        # A GGUF file is the same model wherever it lies: its answers are keyed by its bytes.
        return f"model:sha256:{file_sha256(path)}" if is_gguf(path) else f"model:{path}"
    run = session.get(TrainingRun, ref.run_id)
    if run is None:
        raise NotFound(f"no training run {ref.run_id}")
    if run.state != SUCCEEDED:
        raise InvalidInput(
            f"training run {run.id} is {run.state}: only a succeeded run has a model", field="model"
        )
    final = run_final_dir(run.id)
    if not ((final / "adapter_config.json").is_file() or (final / "config.json").is_file()):
        raise InvalidInput(f"training run {run.id} has no model in {final}", field="model")
    return f"run:{run.id}"


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated: greedy at temperature 0, sampled (seeded) above it."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_tokens <= 32_768:
            raise InvalidInput("max_tokens: must be between 1 and 32768", field="max_tokens")
        if not 0 <= self.temperature <= 2:
            raise InvalidInput("temperature: must be between 0 and 2", field="temperature")
        if not 0 < self.top_p <= 1:
            raise InvalidInput("top_p: must be above 0 and at most 1", field="top_p")

    def as_dict(self) -> dict[str, Any]:
        """The settings as stored in params and hashed into answer keys."""
        return asdict(self)


@dataclass
class Answer:
    """A model's answers to every turn of a prompt, or why there are none."""

    turns: list[str] | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    key: str = ""  # what it is (or will be) stored under


def answer_key(identity: str, turns: Sequence[str], settings: GenerationSettings) -> str:
    """sha256 of the model's identity, the prompt's turns and the generation settings."""
    payload = {"model": identity, "turns": list(turns), "settings": settings.as_dict()}
    return json_sha256(payload)


def stored_answers(session: Session, keys: Sequence[str]) -> dict[str, Answer]:
    """The answers already made, by key."""
    found: dict[str, Answer] = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(
            select(EvalAnswer.key, EvalAnswer.turns).where(
                EvalAnswer.key.in_(keys[start : start + 500])
            )
        )
        found.update({key: Answer(list(turns), cached=True, key=key) for key, turns in rows})
    return found


def store_answers(
    session: Session, model: str, settings: GenerationSettings, answers: Iterable[Answer]
) -> None:
    """Keep new answers (an answer made meanwhile by another worker is left as it is)."""
    rows = [
        {
            "key": answer.key,
            "model": model,
            "turns": answer.turns,
            "settings": settings.as_dict(),
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "cost": answer.cost,
        }
        for answer in answers
        if answer.turns is not None and not answer.cached and answer.key
    ]
    if rows:
        statement = conflict_insert(EvalAnswer)
        session.execute(statement.on_conflict_do_nothing(index_elements=["key"]), rows)


async def endpoint_answer(
    client: LLMClient, turns: Sequence[str], settings: GenerationSettings
) -> Answer:
    """Ask an endpoint each turn in turn, with the conversation so far; BudgetExhausted passes."""
    messages: list[tuple[str, str]] = []
    answer = Answer([])
    for turn in turns:
        messages.append(("user", turn))
        request = ChatRequest(
            tuple(messages), temperature=settings.temperature, max_tokens=settings.max_tokens
        )
        result = await client.complete(request)
        if result.failed:
            return Answer(None, error=result.error)
        text = result.text or ""
        assert answer.turns is not None
        answer.turns.append(text)
        answer.prompt_tokens += result.prompt_tokens
        answer.completion_tokens += result.completion_tokens
        answer.cost += result.cost
        messages.append(("assistant", text))
    return answer
