"""PII detection and typed masking (``[EMAIL]``, ``[TCKN]``…), optionally reversible per request.

A :class:`Recognizer` turns a text into :class:`Span` s; the built-in :class:`PatternRecognizer`
uses the checksum-validated finders of :mod:`paramstack.guard.pii_patterns`, and the optional
Presidio NER backend (:mod:`paramstack.guard.pii_ner`, ``pii.presidio`` in the policy) plugs in
behind the same protocol for names and addresses. Overlaps are resolved once, here: the
earlier entity in ``FINDERS`` order wins (names and places come last), then the longer span.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from paramstack.guard.pii_patterns import FINDERS, Span
from paramstack.guard.pii_starts import Starts
from paramstack.guard.textnorm import fold

ENTITIES: tuple[str, ...] = tuple(FINDERS)
_PRIORITY = {name: i for i, name in enumerate(ENTITIES)}
_PLACEHOLDER = re.compile(r"\[([A-Z_]+)_(\d+)\]")
# Every finder's regex needs a decimal digit, an "@" (e-mail) or a ":" (IPv6) in the text it
# scans, and ``fold`` never turns another character into one (a test checks every code point),
# so a text without any has no PII span: most chat turns skip the nine finders and the fold.
NEEDED = re.compile(r"[\d@:]")


class Recognizer(Protocol):
    """Anything that finds PII spans; ``entities`` lists the types it can report."""

    entities: tuple[str, ...]

    def analyze(self, text: str) -> list[Span]: ...


class PatternRecognizer:
    """Regex + checksum recognizers; no model, no I/O, about 0.1 ms per kB."""

    def __init__(self, entities: Iterable[str] | None = None) -> None:
        names = tuple(entities) if entities is not None else ENTITIES
        unknown = sorted(set(names) - set(FINDERS))
        if unknown:
            raise ValueError(f"unknown PII entities {unknown}; valid: {sorted(FINDERS)}")
        self.entities = tuple(n for n in ENTITIES if n in names)
        self._finders = [FINDERS[n] for n in self.entities]

    def analyze(self, text: str) -> list[Span]:
        if NEEDED.search(text) is None:
            return []
        folded, starts = fold(text), Starts(text)
        spans: list[Span] = []
        for finder in self._finders:
            spans.extend(finder(text, folded, starts))
        return spans


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep non-overlapping spans: higher-priority entity first, then the longer one."""
    ordered = sorted(
        spans, key=lambda s: (_PRIORITY.get(s.entity, len(_PRIORITY)), s.start - s.end, s.start)
    )
    kept: list[Span] = []
    for span in ordered:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def detect(text: str, recognizers: Sequence[Recognizer]) -> list[Span]:
    spans: list[Span] = []
    for recognizer in recognizers:
        spans.extend(recognizer.analyze(text))
    return resolve_overlaps(spans)


@dataclass
class MaskSession:
    """Reversible masking for one caller and one request.

    Input PII becomes numbered placeholders (``[EMAIL_1]``); the same value always gets the
    same placeholder, so the model can still refer to "the second e-mail". :meth:`restore`
    puts the originals back into the model's answer for the *same* caller. The mapping lives
    only in this object (never logged, never stored): drop it when the response is sent.
    """

    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_placeholder: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        if key not in self._by_value:
            n = self._counts.get(entity, 0) + 1
            self._counts[entity] = n
            token = f"[{entity}_{n}]"
            self._by_value[key] = token
            self._by_placeholder[token] = value
        return self._by_value[key]

    def restore(self, text: str) -> str:
        """Replace the placeholders this session issued; unknown ``[X_n]`` stay as they are."""
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(0), m.group(0)), text)

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def __repr__(self) -> str:  # never show the values
        return f"MaskSession(placeholders={len(self)})"


def mask(text: str, spans: Sequence[Span], session: MaskSession | None = None) -> str:
    """Replace each span with ``[ENTITY]`` (or a session placeholder); spans must not overlap."""
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for span in spans:
        parts.append(text[last : span.start])
        value = text[span.start : span.end]
        parts.append(
            session.placeholder(span.entity, value) if session is not None else f"[{span.entity}]"
        )
        last = span.end
    parts.append(text[last:])
    return "".join(parts)
