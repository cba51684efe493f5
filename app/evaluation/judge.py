"""The pairwise judge: AlpaGasus' and MT-Bench's prompts, reading verdicts, combining orders.

Each prompt is judged twice, the answers swapped. AlpaGasus' judge gives the two assistants a
1-10 score each on its first line (as in its evaluation/eval.py: the first line, commas as
spaces, exactly two numbers); MT-Bench's `pair-v2` ends with "[[A]]", "[[B]]" or "[[C]]"
(a tie). A reply that cannot be read is an error, never a tie.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.platform.llm.chat import ChatRequest

JUDGE_PROMPTS = ("alpagasus", "mt-bench")

ALPAGASUS_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
ALPAGASUS_TEMPLATE = (
    "[Question]\n{question}\n\n[The Start of Assistant 1's Answer]\n{answer_1}\n\n"
    "[The End of Assistant 1's Answer]\n\n[The Start of Assistant 2's Answer]\n{answer_2}\n\n"
    "[The End of Assistant 2's Answer]\n\n[System]\n{criteria}\n\n"
)
ALPAGASUS_CRITERIA = (
    "We would like to request your feedback on the performance of two AI assistants in response "
    "to the user question displayed above.\nPlease rate the helpfulness, relevance, accuracy, "
    "level of details of their responses. Each assistant receives an overall score on a scale "
    "of 1 to 10, where a higher score indicates better overall performance.\nPlease first output "
    "a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space. In the subsequent line, please "
    "provide a comprehensive explanation of your evaluation, avoiding any potential bias and "
    "ensuring that the order in which the responses were presented does not affect your judgment."
)
ALPAGASUS_MAX_TOKENS = 256

# FastChat's llm_judge/data/judge_prompts.jsonl: pair-v2 and pair-v2-multi-turn.
_PAIR_RULES = (
    "Your evaluation should consider factors such as the helpfulness, relevance, accuracy, "
    "depth, creativity, and level of detail of their responses. "
)
_PAIR_TAIL = (
    "Avoid any position biases and ensure that the order in which the responses were presented "
    "does not influence your decision. Do not allow the length of the responses to influence "
    "your evaluation. Do not favor certain names of the assistants. Be as objective as "
    "possible. After providing your explanation, output your final verdict by strictly "
    'following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is '
    'better, and "[[C]]" for a tie.'
)
PAIR_V2_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. You should choose the assistant that "
    "follows the user's instructions and answers the user's question better. "
    + _PAIR_RULES
    + "Begin your evaluation by comparing the two responses and provide a short explanation. "
    + _PAIR_TAIL
)
PAIR_V2_TEMPLATE = (
    "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
    "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
    "[The End of Assistant B's Answer]"
)
PAIR_V2_MULTI_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user questions. You should choose the assistant that follows the "
    "user's instructions and answers the user's questions better. "
    + _PAIR_RULES
    + "You should focus on who provides a better answer to the second user question. Begin "
    "your evaluation by comparing the responses of the two assistants and provide a short "
    "explanation. " + _PAIR_TAIL
)
PAIR_V2_MULTI_TEMPLATE = (
    "<|The Start of Assistant A's Conversation with User|>\n\n### User:\n{question_1}\n\n"
    "### Assistant A:\n{answer_a_1}\n\n### User:\n{question_2}\n\n### Assistant A:\n{answer_a_2}"
    "\n\n<|The End of Assistant A's Conversation with User|>\n\n\n"
    "<|The Start of Assistant B's Conversation with User|>\n\n### User:\n{question_1}\n\n"
    "### Assistant B:\n{answer_b_1}\n\n### User:\n{question_2}\n\n### Assistant B:\n{answer_b_2}"
    "\n\n<|The End of Assistant B's Conversation with User|>"
)
# FastChat judges with temperature 0 and up to 2,048 tokens.
PAIR_MAX_TOKENS = 2048
_PAIR_VERDICT = re.compile(r"\[\[([ABC])\]\]")

# Who won one order: the first-shown answer, the second, or neither.
FIRST, SECOND, TIE, ERROR = "first", "second", "tie", "error"
WIN, LOSE = "win", "lose"


@dataclass(frozen=True)
class Reading:
    """What a judge reply says: FIRST, SECOND, TIE or ERROR, with the scores it gave."""

    winner: str
    scores: tuple[float, float] | None = None
    reason: str | None = None


def judge_request(
    judge_prompt: str, turns: list[str], first: list[str], second: list[str]
) -> ChatRequest:
    """The judge's request for one order: `first` shown as assistant 1 (A), `second` as 2 (B)."""
    if judge_prompt == "alpagasus":
        if len(turns) != 1:
            raise ValueError("the AlpaGasus judge takes single-turn prompts")
        user = ALPAGASUS_TEMPLATE.format(
            question=turns[0], answer_1=first[0], answer_2=second[0], criteria=ALPAGASUS_CRITERIA
        )
        messages = [("system", ALPAGASUS_SYSTEM), ("user", user)]
        return ChatRequest(tuple(messages), temperature=0.0, max_tokens=ALPAGASUS_MAX_TOKENS)
    if len(turns) == 1:
        user = PAIR_V2_TEMPLATE.format(question=turns[0], answer_a=first[0], answer_b=second[0])
        messages = [("system", PAIR_V2_SYSTEM), ("user", user)]
    else:
        # pair-v2-multi-turn judges the first two turns, as MT-Bench's questions have.
        user = PAIR_V2_MULTI_TEMPLATE.format(
            question_1=turns[0],
            question_2=turns[1],
            answer_a_1=first[0],
            answer_a_2=first[1],
            answer_b_1=second[0],
            answer_b_2=second[1],
        )
        messages = [("system", PAIR_V2_MULTI_SYSTEM), ("user", user)]
    return ChatRequest(tuple(messages), temperature=0.0, max_tokens=PAIR_MAX_TOKENS)


def read_alpagasus(text: str) -> Reading:
    """Two scores on the first line (separated by a space or a comma); anything else is an
    error. The higher score wins; equal scores tie."""
    line = text.strip().split("\n")[0].replace(",", " ")
    parts = line.split()
    try:
        if len(parts) != 2:
            raise ValueError(f"the first line holds {len(parts)} values, not two scores")
        one, two = float(parts[0]), float(parts[1])
    except ValueError as exc:
        return Reading(ERROR, reason=f"unreadable AlpaGasus verdict: {exc}")
    # The scale is 1-10; a judge that gives a worthless answer 0 still means something clear.
    if not all(0 <= s <= 10 for s in (one, two)):
        return Reading(ERROR, (one, two), f"scores {one:g} and {two:g} are outside 0-10")
    winner = FIRST if one > two else SECOND if two > one else TIE
    return Reading(winner, (one, two))


def read_pair(text: str) -> Reading:
    """MT-Bench's verdict: exactly one of [[A]], [[B]] or [[C]] in the reply; none, or two
    different ones, is an error."""
    found = set(_PAIR_VERDICT.findall(text))
    if len(found) != 1:
        reason = "no [[A]], [[B]] or [[C]] verdict" if not found else "more than one verdict"
        return Reading(ERROR, reason=f"unreadable MT-Bench verdict: {reason}")
    return Reading({"A": FIRST, "B": SECOND, "C": TIE}[found.pop()])


def read_verdict(judge_prompt: str, text: str) -> Reading:
    """The reading of a judge reply for the judge prompt used."""
    return read_alpagasus(text) if judge_prompt == "alpagasus" else read_pair(text)


def as_model(winner: str, a_shown_first: bool) -> str:
    """Which model won an order: "a", "b", "tie" or "error"."""
    if winner in (TIE, ERROR):
        return winner
    return "a" if (winner == FIRST) == a_shown_first else "b"


def combine(ab: str, ba: str) -> str:
    """Model A's result over both orders (each "a", "b", "tie" or "error"): win on two wins or
    a win and a tie; tie on two ties or a win and a loss; lose on two losses or a loss and a
    tie; an error in either order is an error."""
    if ERROR in (ab, ba):
        return ERROR
    score = sum({"a": 1, "tie": 0, "b": -1}[v] for v in (ab, ba))
    return WIN if score > 0 else LOSE if score < 0 else TIE


def winning_score(wins: int, ties: int, losses: int) -> float | None:
    """AlpaGasus' winning score, (wins - losses) / n + 1 over the n prompts judged (errors are
    left out of n); None before any."""
    n = wins + ties + losses
    return (wins - losses) / n + 1 if n else None
