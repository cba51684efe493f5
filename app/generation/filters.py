"""Reading generated text back, and the rules that throw generations away.

Self-Instruct and Alpaca: `parse_self_instruct` and `parse_alpaca` are the two projects'
`post_process_gpt3_response`; `instruction_rejection` is their keyword and shape filter (the
ROUGE-L novelty check is `app.generation.rouge`). Evol-Instruct: `evolution_rejection` and
`answer_rejection` are WizardLM's elimination rules 2 to 4 (rule 1, no information gain, asks
the model; see `app.generation.prompts.equal_prompt`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from app.generation.prompts import NO_INPUT, Task

MIN_WORDS_EXCLUSIVE = 3  # "<= 3 words" is dropped
MAX_WORDS = 150
SELF_INSTRUCT_BLACKLIST = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
)
ALPACA_BLACKLIST = (*SELF_INSTRUCT_BLACKLIST, "video", "audio", "music", "flowchart", "diagram")
_BLACKLIST_RES = {
    word: re.compile(rf"\b({word})\b", flags=re.IGNORECASE) for word in ALPACA_BLACKLIST
}


@dataclass(frozen=True)
class Rejected:
    """A generation that was thrown away, and why."""

    text: str
    reason: str


def instruction_rejection(instruction: str, blacklist: tuple[str, ...]) -> str | None:
    """Why Self-Instruct/Alpaca would drop this instruction before the novelty check, or None."""
    words = len(instruction.split())
    if words <= MIN_WORDS_EXCLUSIVE:
        return "too short"
    if words > MAX_WORDS:
        return "too long"
    for word in blacklist:
        if _BLACKLIST_RES[word].search(instruction):
            return f"blacklisted word: {word}"
    if instruction.startswith("Write a program"):
        return "starts with 'Write a program'"
    if instruction[0] in string.punctuation:
        return "starts with punctuation"
    if not instruction[0].isascii():
        return "starts with a non-ASCII character"
    return None


def parse_self_instruct(text: str, finish_reason: str | None) -> tuple[list[str], list[Rejected]]:
    """Self-Instruct's reading of a continued task list: a cut-off answer is dropped whole;
    each item is one-lined and capitalised, then filtered."""
    if finish_reason == "length":
        return [], [Rejected(text, "the answer was cut off (finish_reason=length)")]
    kept, rejected = [], []
    for raw in re.split(r"\n\d+\s?\. ", text):
        instruction = re.sub(r"\s+", " ", raw).strip().capitalize()
        if instruction == "":
            continue
        reason = instruction_rejection(instruction, SELF_INSTRUCT_BLACKLIST)
        if reason:
            rejected.append(Rejected(instruction, reason))
        else:
            kept.append(instruction)
    return kept, rejected


def parse_alpaca(
    text: str, finish_reason: str | None, tasks_in_prompt: int
) -> tuple[list[Task], list[Rejected]]:
    """Alpaca's reading of a continued ###-separated list of tasks: a cut-off last task is
    dropped, a task that does not split into instruction, input and output is malformed."""
    first = tasks_in_prompt + 1
    pieces = re.split("###", f"{first}. Instruction:" + text)
    kept, rejected = [], []
    for position, piece in enumerate(pieces):
        if position == len(pieces) - 1 and finish_reason == "length":
            rejected.append(Rejected(piece.strip(), "cut off (finish_reason=length)"))
            continue
        number = position + first
        parts = re.split(rf"{number}\.\s+(Instruction|Input|Output):", piece)
        if len(parts) != 7:
            if piece.strip():
                rejected.append(Rejected(piece.strip(), "malformed"))
            continue
        instruction, given, output = parts[2].strip(), parts[4].strip(), parts[6].strip()
        given = "" if given.lower() == NO_INPUT else given
        reason = instruction_rejection(instruction, ALPACA_BLACKLIST) if instruction else "empty"
        if reason:
            rejected.append(Rejected(instruction, reason))
        else:
            kept.append(Task(instruction, given, output))
    return kept, rejected


_INSTANCE = re.compile(r"^\s*Input:\s*(?P<input>.*?)\s*\n\s*Output:\s*(?P<output>.*)$", re.S)


def parse_instance(text: str, finish_reason: str | None) -> tuple[str, str] | None:
    """The input and output of a Self-Instruct instance answer; None when it is cut off or
    does not have both parts."""
    if finish_reason == "length":
        return None
    match = _INSTANCE.match(text)
    if match is None or not match.group("output").strip():
        return None
    given = match.group("input").strip()
    return ("" if given.lower() == NO_INPUT else given), match.group("output").strip()


# ---------------------------------------------------------------- Evol-Instruct elimination

# Words of the evolving prompts that must not leak into an evolved instruction (rule 4).
COPIED_PHRASES = (
    "#the given prompt#",
    "#rewritten prompt#",
    "#given prompt#",
    "#created prompt#",
    "given prompt",
    "rewritten prompt",
    "created prompt",
    "#given response#",
    "#rewritten response#",
    "given response",
    "rewritten response",
)
# NLTK's English stop words (rule 3: an answer of nothing but these and punctuation).
_STOP_WORDS = """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be
    been being have has had having do does did doing a an the and but if or because as until
    while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why
    how all any both each few more most other some such no nor not only own same so than too
    very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
    couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
    mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
    weren't won won't wouldn wouldn't"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
SORRY_MAX_WORDS = 80


def copied_phrase(text: str) -> str | None:
    """The evolving prompt's own words found in `text` (rule 4), or None."""
    lowered = text.lower()
    return next((phrase for phrase in COPIED_PHRASES if phrase in lowered), None)


def only_stop_words(text: str) -> bool:
    """True when `text` holds nothing but punctuation and stop words (rule 3)."""
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.lower())
    return all(word in STOP_WORDS for word in words)


def evolution_rejection(evolved: str, finish_reason: str | None) -> str | None:
    """Why an evolved instruction (or rewritten answer) is eliminated before it is answered."""
    if finish_reason == "length":
        return "the rewrite was cut off (finish_reason=length)"
    if not evolved.strip():
        return "the rewrite is empty"
    phrase = copied_phrase(evolved)
    if phrase:
        return f"copies the evolving prompt: {phrase!r}"
    if only_stop_words(evolved):
        return "only punctuation and stop words"
    return None


def answer_rejection(answer: str, finish_reason: str | None) -> str | None:
    """Why the answer to an evolved instruction eliminates it (rules 2 and 3), or None."""
    if finish_reason == "length":
        return "the model failed to answer: the answer was cut off (finish_reason=length)"
    if "sorry" in answer.lower() and len(answer.split()) < SORRY_MAX_WORDS:
        return "the model failed to answer: a short 'sorry'"
    if only_stop_words(answer):
        return "the answer is only punctuation and stop words"
    return None


def is_equal_verdict(text: str) -> bool:
    """True when the model judged the evolved instruction equal to its parent (rule 1)."""
    verdict = text.strip().lower()
    return verdict.startswith("equal") or verdict.startswith('"equal')
