"""The prompt texts of the built-in LLM rating recipes (Deita's are in `deita`)."""

# Byte for byte as in gpt4life/alpagasus (rating/chatgpt_rating.py).
ALPAGASUS_SYSTEM = (
    "We would like to request your feedback on the performance of AI assistant in response to "
    "the instruction and the given input displayed following."
)
ALPAGASUS_TRIPLET = (
    "###Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}\n\n"
)
ALPAGASUS_ACCURACY = (
    "Please rate according to the accuracy of the response to the instruction and the input. "
    "Each assistant receives a score on a scale of 0 to 5, where a higher score indicates higher "
    "level of the accuracy. Please first output a single line containing value indicating the "
    "scores. In the subsequent line, please provide a comprehensive explanation of your "
    "evaluation, avoiding any potential bias. \n\n"
)
# "an score" is the paper's own wording, kept so that ratings match theirs.
ALPAGASUS_HELPFULNESS = (
    "Please rate according to the helpfulness of the response to the instruction and the input. "
    "Each assistant receives an score on a scale of 0 to 5, where a higher score indicates higher "
    "level of the helpfulness. Please first output a single line containing value indicating the "
    "scores. In the subsequent line, please provide a comprehensive explanation of your "
    "evaluation, avoiding any potential bias. \n\n"
)
