"""The LIMA heuristics on an answer: length, first person, references to other answers, markup.

LIMA kept Stack Exchange answers of 1,200 to 4,096 characters that were not written in the
first person and did not refer to other answers, and removed links, images and HTML while
keeping code blocks and lists. Here each of six checks (length, first_person, other_answers,
links, images, html) passes or fails; the value is the share that passed. Code (fenced,
indented and inline) is neither checked nor cleaned: `I` in code or `<div>` in an HTML example
is content, not style. Length is measured on the answer as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CHECKS = ("length", "first_person", "other_answers", "links", "images", "html")
MIN_CHARS = 1200
MAX_CHARS = 4096

# "I" only capitalised: a lowercase "i" is a loop variable or a typo, not a narrator.
# "I.e." and "I/O" are no narrator either.
_FIRST_PERSON = re.compile(
    r"(?<![\w'\u2019/-])(?:I|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)(?![\w/-])(?!\.\w)"
)
# A block quote is someone else's voice: its "I" is not the answer's.
_QUOTE_LINE = re.compile(r"^[ ]{0,3}>.*$", re.MULTILINE)
_OTHER_ANSWERS = re.compile(
    r"\b(?:as (?:mentioned|stated|said|noted|explained|shown) (?:above|before|earlier|previously)"
    r"|as others (?:have )?(?:said|mentioned|noted|pointed out|suggested)"
    r"|(?:the |an)?other answers?|previous answers?|answers? (?:above|below)"
    r"|(?:above|accepted|top-?voted|top) answer|someone else'?s? (?:answer|mentioned|said))\b",
    re.IGNORECASE,
)

_IMAGE_MD = re.compile(r"!\[[^\]\n]*\](?:\([^)\n]*\)|\[[^\]\n]*\])")
_IMAGE_HTML = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_LINK_INLINE = re.compile(r"\[(?P<text>[^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"\n]*\")?\)")
_LINK_REFERENCE = re.compile(r"\[(?P<text>[^\]\n]*)\]\[(?P<label>[^\]\n]*)\]")
_LINK_DEFINITION = re.compile(r"^[ ]{0,3}\[(?P<label>[^\]\n]+)\]:[ \t]*\S+.*(?:\n|$)", re.MULTILINE)
_AUTOLINK = re.compile(r"<(?:https?|ftp)://[^>\s]*>|<[\w.+-]+@[\w-]+\.[\w.-]+>", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\b[^>]*>(?P<text>.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
# Balanced parentheses stay in a URL (Wikipedia's "Foo_(bar)"); final punctuation does not.
_BARE_URL = re.compile(
    r"[ \t]?\b(?:https?://|ftp://|www\.)(?:[^\s<>()\[\]]|\([^\s()]*\))*[^\s<>()\[\].,;:!?'\"]"
    r"(?:\([^\s()]*\))?"
)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_HTML_TAGS = (
    "a|abbr|address|article|aside|audio|b|big|blockquote|body|br|button|caption|center|cite|"
    "code|col|colgroup|dd|del|details|dfn|div|dl|dt|em|embed|figcaption|figure|font|footer|"
    "form|h[1-6]|head|header|hr|html|i|iframe|img|input|ins|kbd|label|li|link|mark|meta|nav|"
    "object|ol|option|p|pre|q|s|samp|script|section|select|small|source|span|strike|strong|"
    "style|sub|summary|sup|table|tbody|td|textarea|tfoot|th|thead|title|tr|tt|u|ul|var|video|wbr"
)
_HTML_TAG = re.compile(
    rf"</?(?:{_HTML_TAGS})\b(?:\s+[\w:-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*\s*/?>"
    r"|<!--.*?-->",
    re.IGNORECASE | re.DOTALL,
)
# A code span ends at the same run of backticks, and never crosses a blank line.
_INLINE_CODE = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)*?(?<!`)\1(?!`)", re.DOTALL)
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^[ ]{0,3}(?:[-*+]|\d{1,9}[.)])[ \t]")


@dataclass
class LimaCheck:
    """The outcome of the checks on one answer, and the answer with links, images, HTML gone."""

    value: float
    failed: list[str] = field(default_factory=list)
    cleaned: str = ""


def check_answer(
    answer: str, *, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS
) -> LimaCheck:
    """Run the LIMA checks on an answer and clean it."""
    pieces = split_code(answer)
    refs = _labels(pieces)
    # The checks read prose only: code blocks and code spans are content, not style.
    prose = _INLINE_CODE.sub(" ", "\n".join(text for is_code, text in pieces if not is_code))
    voice = _QUOTE_LINE.sub("", prose)
    no_images = _drop_images(prose)
    no_links = _drop_links(no_images, refs)
    results = {
        "length": min_chars <= len(answer) <= max_chars,
        "first_person": not _FIRST_PERSON.search(voice),
        "other_answers": not _OTHER_ANSWERS.search(voice),
        "links": no_links == no_images,
        "images": no_images == prose,
        "html": _drop_html(no_links) == no_links,
    }
    failed = [name for name in CHECKS if not results[name]]
    value = (len(CHECKS) - len(failed)) / len(CHECKS)
    return LimaCheck(value=value, failed=failed, cleaned=_clean_pieces(pieces, refs))


def clean(answer: str) -> str:
    """The answer with links turned into their text, images removed and HTML tags stripped."""
    pieces = split_code(answer)
    return _clean_pieces(pieces, _labels(pieces))


def _clean_pieces(pieces: list[tuple[bool, str]], refs: set[str]) -> str:
    """The pieces joined again, the prose ones cleaned."""
    return "".join(text if is_code else _clean_prose(text, refs) for is_code, text in pieces)


def _labels(pieces: list[tuple[bool, str]]) -> set[str]:
    """The reference-link labels the answer defines ("[1]: http://..."), lowercased."""
    prose = "".join(text for is_code, text in pieces if not is_code)
    return {m.group("label").lower() for m in _LINK_DEFINITION.finditer(prose)}


def _clean_prose(text: str, refs: set[str]) -> str:
    """Clean a stretch of prose, leaving its code spans alone."""
    parts: list[str] = []
    last = 0
    for match in _INLINE_CODE.finditer(text):
        parts += [_clean_plain(text[last : match.start()], refs), match.group(0)]
        last = match.end()
    parts.append(_clean_plain(text[last:], refs))
    return "".join(parts)


def _clean_plain(text: str, refs: set[str]) -> str:
    """Clean text that holds no code at all."""
    return _drop_html(_drop_links(_drop_images(text), refs))


def _drop_images(text: str) -> str:
    """Markdown and HTML images removed."""
    return _IMAGE_HTML.sub("", _IMAGE_MD.sub("", text))


def _drop_links(text: str, refs: set[str]) -> str:
    """Links replaced by their text; bare URLs and link definitions removed."""

    def reference(match: re.Match[str]) -> str:
        # "a[i][j]" is indexing, not a link, unless the answer defines the label.
        label = (match.group("label") or match.group("text")).lower()
        return match.group("text") if label in refs else match.group(0)

    text = _LINK_DEFINITION.sub("", text)
    text = _LINK_INLINE.sub(lambda m: m.group("text"), text)
    text = _LINK_REFERENCE.sub(reference, text)
    text = _AUTOLINK.sub("", text)
    text = _ANCHOR.sub(lambda m: m.group("text"), text)
    return _BARE_URL.sub("", text)


def _drop_html(text: str) -> str:
    """HTML tags stripped, their text kept; a line break tag becomes a newline."""
    return _HTML_TAG.sub("", _LINE_BREAK.sub("\n", text))


def split_code(text: str) -> list[tuple[bool, str]]:
    """The text cut into (is_code, piece) runs of whole lines: fenced and indented code blocks."""
    runs: list[tuple[bool, str]] = []
    fence: str | None = None
    in_list = False
    previous_blank = True
    for line in text.splitlines(keepends=True):
        is_code, fence, in_list = _classify(line, fence, in_list, previous_blank, runs)
        previous_blank = not line.strip()
        if runs and runs[-1][0] == is_code:
            runs[-1] = (is_code, runs[-1][1] + line)
        else:
            runs.append((is_code, line))
    return runs


def _classify(
    line: str,
    fence: str | None,
    in_list: bool,
    previous_blank: bool,
    runs: list[tuple[bool, str]],
) -> tuple[bool, str | None, bool]:
    """Whether a line is code, and the fence and list state after it."""
    opened = _FENCE.match(line)
    if fence is not None:
        closes = opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence)
        return True, (None if closes and not line.strip(" `~\n\r") else fence), in_list
    if opened:
        return True, opened.group(1), False
    if not line.strip():
        # A blank line inside an indented block belongs to it.
        return bool(runs) and runs[-1][0], None, in_list
    indented = line.startswith(("    ", "\t"))
    after_code = bool(runs) and runs[-1][0]
    # Indented lines under a list item continue the item; elsewhere after a blank line they are code.
    if indented and not in_list and (previous_blank or after_code):
        return True, None, in_list
    if not indented:
        in_list = bool(_LIST_ITEM.match(line))
    return False, None, in_list
