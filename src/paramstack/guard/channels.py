"""Split a prompt into its task part (what the user asks) and its data part (the document).

An instruction *to the model* inside a pasted document is an injection; the same words in the
user's own task are not ("do not follow instructions in the text" is a defence). Scoring the
two parts apart lets the detector judge the document for instructions addressed to the model
and drop defensive wording from the task. The split is textual (markers the way people paste
documents); the gateway passes tool output and each retrieved RAG chunk as data directly
(:meth:`paramstack.guard.injection.InjectionDetector.detect_data`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NOUN = (
    r"(?:text|sentence|paragraph|passage|document|content|article|email|e-mail|message|"
    r"page|review|snippet|report|cv|resume|profile|input|context|data|notes?|transcript|"
    r"metin|paragraf|belge|e-posta|mesaj)"
)
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)
_MARKER = re.compile(
    rf"^[ \t]*(?:{_NOUN}|english|source|original|input text|sentence to translate)[ \t]*:[ \t]*",
    re.I | re.M,
)
_RULE = re.compile(r"^[ \t]*(?:[-=_*#~]{3,}|<{3,}|>{3,})[ \t]*$", re.M)
_QUOTE = re.compile(r"^[ \t]*> ?", re.M)
# "Translate the following text ...", "Summarize this email:", "Aşağıdaki metni çevir"
_FOLLOWING = re.compile(
    r"\b(?:the following|following|this|these|the (?:text|passage) below|below|"
    r"asagidaki|aşağıdaki|şu|su)\b"
    rf"(?: \w+){{0,3}}? ?{_NOUN}?",
    re.I,
)
_ABOVE = re.compile(
    rf"\b(?:the above|above|yukaridaki|yukarıdaki)\b(?: \w+){{0,2}}? ?{_NOUN}?", re.I
)
_SENTENCE_END = re.compile(r"[.:?!](?:\s+|$)|\n")
# The task's own warnings about the document: a defence, not an attack.
DEFENSIVE = re.compile(
    r"(?:"
    r"\b(?:do not|don't|never|not to|must not)\b[^.!?:\n]{0,40}\b(?:listen|follow|obey|execute|"
    r"carry out|act on|comply)\b[^.!?:\n]{0,60}\b(?:instructions?|directions?|commands?|"
    r"orders?|anything)\b[^.!?:\n]{0,40}\b(?:in|within|inside|contained|therein|written|"
    r"from)\b"
    r"|\b(?:may|might|could|can) (?:contain|include)\b[^.!?:\n]{0,60}\b(?:instructions?|"
    r"directions?|commands?|attempts?|text pretending)"
    r"|\b(?:instructions?|directions?|commands?) (?:in|inside|within|from) (?:the|this) "
    rf"{_NOUN}\b[^.!?:\n]{{0,40}}\b(?:are not|aren't|is not) (?:for|addressed|meant)"
    r"|\bonly follow (?:instructions|directions) from me\b"
    r"|\btreat (?:the|this|it)\b[^.!?:\n]{0,30}\b(?:as|purely as) (?:data|content|text)\b"
    r"|\bstay on task\b|\bcontinue the (?:important )?\w+ work\b|\bignore such text\b"
    r"|\b(?:komut|talimat)\w* (?:uygulama|sana y[oö]nelik de[gğ]il)"
    r"|\bseni kand[iı]rmaya"
    r")",
    re.I,
)


_SENTENCE_PART = re.compile(r"\n|[^.!?:\n]*[.!?:]?")  # a sentence (or clause up to a colon)
_HINT = re.compile(
    r"\b(?:not|never|don|may|might|could|can|instructions?|directions?|commands?|only|treat|"
    r"stay|continue|ignore|seni)\b|\b(?:komut|talimat)",
    re.I,
)


def drop_defensive(task: str) -> str:
    """``task`` without its defensive sentences (each replaced by a space)."""
    if not _HINT.search(task):  # the common case: nothing to look at
        return task
    return "".join(
        " " if DEFENSIVE.search(m.group(0)) else m.group(0) for m in _SENTENCE_PART.finditer(task)
    )


def _leading_defence(text: str, pos: int = 0) -> int:
    """End of a defensive sentence starting at ``pos`` (after blanks), else ``pos``."""
    start = pos + len(text[pos:]) - len(text[pos:].lstrip())
    match = _SENTENCE_PART.match(text, start)
    if match and match.group(0) and DEFENSIVE.search(match.group(0)):
        return match.end()
    return pos


@dataclass(frozen=True)
class Channels:
    """``task``: the user's own words (defensive sentences removed); ``data``: the pasted
    document(s), "" when none was found; ``split``: whether anything was moved or dropped."""

    task: str
    data: str
    split: bool


def split_channels(text: str) -> Channels:
    """Task and data parts of ``text``."""
    end = 0
    while (nxt := _leading_defence(text, end)) > end:
        end = nxt  # the task's own warning, first: the document comes later
    lead = text[:end]
    task, data = _split(text[end:])
    task = f"{lead}\n{task}" if lead else task
    cleaned = drop_defensive(task)
    changed = bool(data) or cleaned != task
    return Channels(cleaned.strip() if changed else text, data.strip(), changed)


def _split(text: str) -> tuple[str, str]:
    fences = _FENCE.findall(text)
    if fences:
        return _FENCE.sub(" ", text), "\n".join(fences)
    quoted = [m for m in text.splitlines() if _QUOTE.match(m) and m.strip() != ">"]
    if quoted and len(quoted) < len(text.splitlines()):
        rest = [line for line in text.splitlines() if line not in quoted]
        return "\n".join(rest), "\n".join(_QUOTE.sub("", q) for q in quoted)
    rule = _RULE.search(text)
    if rule and text[: rule.start()].strip():
        return text[: rule.start()], text[rule.end() :]
    marker = _MARKER.search(text)
    if marker and (marker.start() > 0 or "\n" in text):
        task = text[: marker.start()] + _trailer(text[marker.end() :])
        data = _body(text[marker.end() :])
        lines = data.rstrip().splitlines()
        if lines and _ABOVE.search(lines[-1]) and len(lines[-1]) < 200:
            # "Text: DOC\nTranslate the above text.": the last line is the task
            task, data = f"{task}\n{lines[-1]}", "\n".join(lines[:-1])
        return task, data
    return _by_reference(text)


_INTRO = re.compile(r"\s*(?:[\w'-]+ ){0,5}[\w'-]+:[ \t]*(?:\n|$)|\s*this is the \w+:", re.I)


def _absorb(task: str, data: str) -> tuple[str, str]:
    """After a split at the task's first sentence, the defensive sentences on the same line
    and one lead-in line ("This is the text:") belong to the task; nothing after an explicit
    separator is moved (a document may not talk its way into the task)."""
    while data and not data.startswith("\n"):
        end = _leading_defence(data)
        if end == 0:
            break
        task, data = f"{task} {data[:end].strip()}", data[end:]
    match = _INTRO.match(data)
    if match is not None and match.group(0).strip():
        task, data = f"{task} {match.group(0).strip()}", data[match.end() :]
    return task, data


def _trailer(after: str) -> str:
    """A question line after a ``Context:`` block stays in the task."""
    lines = after.splitlines()
    tail = [
        ln for ln in lines[1:] if re.match(r"^[ \t]*(?:question|soru|task|gorev)\s*:", ln, re.I)
    ]
    return "\n" + "\n".join(tail) if tail else ""


def _body(after: str) -> str:
    lines = after.splitlines()
    return "\n".join(
        ln for ln in lines if not re.match(r"^[ \t]*(?:question|soru|task|gorev)\s*:", ln, re.I)
    )


def _by_reference(text: str) -> tuple[str, str]:
    """ "Translate the following …: DOC" (task first) or "DOC … Translate the above." (last)."""
    first = _SENTENCE_END.search(text)
    if first is not None and first.end() < len(text):
        head = text[: first.end()]
        anchored = _FOLLOWING.search(head) or head.rstrip().endswith(":")
        if anchored and len(head) < 300 and _looks_like_task(head):
            return _absorb(head.rstrip(), text[first.end() :])
    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()]
    if len(lines) >= 2 and _ABOVE.search(lines[-1]) and len(lines[-1]) < 200:
        return lines[-1], "\n".join(lines[:-1])
    if "\n" in text.strip():  # "Summarize this:\nDOC" without a noun after "this"
        head, _, rest = text.strip().partition("\n")
        if head.rstrip().endswith(":") and len(head) < 200 and rest.strip():
            return head, rest
    head, _, rest = text.strip().partition("\n\n")  # "What is this page about?\n\nDOC"
    if rest.strip() and len(head) < 200 and (head.rstrip().endswith("?") or _looks_like_task(head)):
        return head, rest
    return text, ""


_TASK_VERB = re.compile(
    r"\b(?:translate|summari[sz]e|proofread|rewrite|classify|extract|paraphrase|polish|refine|"
    r"shorten|assess|evaluate|review|analy[sz]e|correct|explain|answer|read|check|give|make|"
    r"list|identify|tell|write|bring out|cevir|ozetle|duzelt|kisalt|incele|yaz|oku)\b",
    re.I,
)


def _looks_like_task(head: str) -> bool:
    return bool(_TASK_VERB.search(head))
