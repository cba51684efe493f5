"""The published prompts: Alpaca's and Self-Instruct's for new tasks, WizardLM's Evol-Instruct
rewriters and elimination check, Deita's Evol-Quality response rewriter."""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- Self-Instruct and Alpaca

# stanford_alpaca/prompt.txt, byte for byte (its typos included: the model saw them).
ALPACA_PROMPT = """You are asked to come up with a set of 20 diverse task instructions. These task instructions will be given to a GPT model and we will evaluate the GPT model for completing the instructions.

Here are the requirements:
1. Try not to repeat the verb for each instruction to maximize diversity.
2. The language used for the instruction also should be diverse. For example, you should combine questions with imperative instrucitons.
3. The type of instructions should be diverse. The list should include diverse types of tasks like open-ended generation, classification, editing, etc.
2. A GPT language model should be able to complete the instruction. For example, do not ask the assistant to create any visual or audio output. For another example, do not ask the assistant to wake you up at 5pm or set a reminder because it cannot perform any action.
3. The instructions should be in English.
4. The instructions should be 1 to 2 sentences long. Either an imperative sentence or a question is permitted.
5. You should generate an appropriate input to the instruction. The input field should contain a specific example provided for the instruction. It should involve realistic data and should not contain simple placeholders. The input should provide substantial content to make the instruction challenging but should ideally not exceed 100 words.
6. Not all instructions require input. For example, when a instruction asks about some general information, "what is the highest peak in the world", it is not necssary to provide a specific context. In this case, we simply put "<noinput>" in the input field.
7. The output should be an appropriate response to the instruction and the input. Make sure the output is less than 100 words.

List of 20 tasks:"""

NO_INPUT = "<noinput>"


@dataclass(frozen=True)
class Task:
    """A task shown to the model: an instruction, its input (may be empty) and output."""

    instruction: str
    input: str = ""
    output: str = ""


def _one_line(instruction: str) -> str:
    return re.sub(r"\s+", " ", instruction).strip().rstrip(":")


def alpaca_prompt(tasks: list[Task]) -> str:
    """Alpaca's `encode_prompt`: prompt.txt, the tasks as ###-separated triples, and the
    number of the next task for the model to continue."""
    prompt = ALPACA_PROMPT + "\n"
    for number, task in enumerate(tasks, start=1):
        given = NO_INPUT if task.input.lower() == "" else task.input
        prompt += "###\n"
        prompt += f"{number}. Instruction: {_one_line(task.instruction)}\n"
        prompt += f"{number}. Input:\n{given}\n"
        prompt += f"{number}. Output:\n{task.output}\n"
    prompt += "###\n"
    prompt += f"{len(tasks) + 1}. Instruction:"
    return prompt


def self_instruct_prompt(instructions: list[str]) -> str:
    """Self-Instruct's `encode_prompt` (non-classification): numbered instructions, then the
    next number."""
    prompt = "Come up with a series of tasks:\n"
    for number, instruction in enumerate(instructions, start=1):
        prompt += f"{number}. {_one_line(instruction)}\n"
    prompt += f"{len(instructions) + 1}."
    return prompt


# Self-Instruct's instance generation, output-first wording with the input made explicit so
# that one answer parses into an input and an output.
INSTANCE_PROMPT = """Come up with an example for the following task. If the task doesn't require additional input, write "Input: <noinput>" and then the output directly.

{demos}Task: {instruction}
"""


def instance_prompt(instruction: str, demos: list[Task]) -> str:
    """Ask for an input and output for one new instruction, with seed tasks as examples."""
    shown = "".join(
        f"Task: {_one_line(t.instruction)}\nInput: {t.input or NO_INPUT}\nOutput: {t.output}\n\n"
        for t in demos
    )
    return INSTANCE_PROMPT.format(demos=shown, instruction=_one_line(instruction))


# ---------------------------------------------------------------- Evol-Instruct (WizardLM)

# WizardLM/Evol_Instruct/depth.py and breadth.py, with their \r\n and their spacing.
DEPTH_BASE = (
    "I want you act as a Prompt Rewriter.\r\n \t\t\t\t\tYour objective is to rewrite a given "
    "prompt into a more complex version to make those famous AI systems (e.g., chatgpt and GPT4) "
    "a bit harder to handle.\r\n \t\t\t\t\tBut the rewritten prompt must be reasonable and must "
    "be understood and responded by humans.\r\n \t\t\t\t\tYour rewriting cannot omit the "
    "non-text parts such as the table and code in #The Given Prompt#:. Also, please do not omit "
    "the input in #The Given Prompt#. \r\n \t\t\t\t\tYou SHOULD complicate the given prompt using "
    "the following method: \r\n\t\t\t\t\t{} \r\n\t\t\t\t\tYou should try your best not to make "
    "the #Rewritten Prompt# become verbose, #Rewritten Prompt# can only add 10 to 20 words into "
    "#The Given Prompt#. \r\n\t\t\t\t\t'#The Given Prompt#', '#Rewritten Prompt#', 'given "
    "prompt' and 'rewritten prompt' are not allowed to appear in #Rewritten Prompt#\r\n"
)
BREADTH_BASE = (
    "I want you act as a Prompt Creator.\r\nYour goal is to draw inspiration from the #Given "
    "Prompt# to create a brand new prompt.\r\nThis new prompt should belong to the same domain as "
    "the #Given Prompt# but be even more rare.\r\nThe LENGTH and complexity of the #Created "
    "Prompt# should be similar to that of the #Given Prompt#.\r\nThe #Created Prompt# must be "
    "reasonable and must be understood and responded by humans.\r\n'#Given Prompt#', '#Created "
    "Prompt#', 'given prompt' and 'created prompt' are not allowed to appear in #Created "
    "Prompt#\r\n"
)
DEPTH_METHODS = {
    "constraints": "Please add one more constraints/requirements into #The Given Prompt#'",
    "deepen": "If #The Given Prompt# contains inquiries about certain issues, the depth and "
    "breadth of the inquiry can be increased.",
    "concretize": "Please replace general concepts with more specific concepts.",
    "reasoning": "If #The Given Prompt# can be solved with just a few simple thinking processes, "
    "you can rewrite it to explicitly request multiple-step reasoning.",
    # The paper's "complicate input" (its appendix asks for data formats such as tables or
    # code as input); the public repository has no template for it, so this is ours.
    "complicate-input": "Please add realistic input data in a structured format (such as a "
    "table, JSON, XML, code or a list) to #The Given Prompt#, and make the prompt depend on it.",
}
EVOL_INSTRUCT_METHODS = (*DEPTH_METHODS, "breadth")

# WizardLM's elimination step 1 (the paper's appendix): does the evolution add anything?
EQUAL_PROMPT = (
    "Here are two Instructions to ChatGPT AI, do you think they are equal to each other, which "
    "meet the following requirements:\n1. They have same constraints and requirments.\n2. They "
    "have same depth and breadth of the inquiry.\nThe First Prompt: {first}\nThe Second Prompt: "
    "{second}\nYour Judgement (Just answer: Equal or Not Equal. No need to explain the reason.):"
)


def evol_instruct_prompt(method: str, instruction: str) -> str:
    """WizardLM's prompt for one evolution of `instruction` by `method`."""
    if method == "breadth":
        return BREADTH_BASE + f"#Given Prompt#: \r\n {instruction} \r\n#Created Prompt#:\r\n"
    prompt = DEPTH_BASE.format(DEPTH_METHODS[method])
    return prompt + f"#The Given Prompt#: \r\n {instruction} \r\n#Rewritten Prompt#:\r\n"


def equal_prompt(first: str, second: str) -> str:
    """Ask whether an evolved instruction says nothing more than the one it came from."""
    return EQUAL_PROMPT.format(first=first, second=second)


# ---------------------------------------------------------------- Evol-Quality (Deita)

QUALITY_BASE = (
    "I want you to act as a Response Rewriter\n"
    "Your goal is to enhance the quality of the response given by an AI assistant to the "
    "#Given Prompt# through rewriting.\n"
    "But the rewritten response must be reasonable and must be understood by humans.\n"
    "Your rewriting cannot omit the non-text parts such as the table and code in #Given Prompt# "
    "and #Given Response#. Also, please do not omit the input in #Given Prompt#.\n"
    "You Should enhance the quality of the response using the following method: \n{method}\n"
    "You should try your best not to make the #Rewritten Response# become verbose, "
    "#Rewritten Response# can only add 10 to 20 words into #Given Response#.\n"
    "'#Given Response#', '#Rewritten Response#', 'given response' and 'rewritten response' are "
    "not allowed to appear in #Rewritten Response#\n"
    "#Given Prompt#:\n{prompt}\n#Given Response#:\n{response}\n#Rewritten Response#:\n"
)
QUALITY_METHODS = {
    "helpfulness": "Please make the Response more helpful to the user.",
    "relevance": "Please make the Response more relevant to #Given Prompt#.",
    "depth": "Please make the Response more in-depth",
    "creativity": "Please increase the creativity of the response",
    "details": "Please increase the detail level of Response",
}


def evol_quality_prompt(method: str, prompt: str, response: str) -> str:
    """Deita's prompt for rewriting `response` to `prompt` by `method`."""
    return QUALITY_BASE.format(method=QUALITY_METHODS[method], prompt=prompt, response=response)
