"""Verbatim reproduction of protected works: word n-gram (shingle) overlap.

The tenant registers the works it must not reproduce (a folder of ``.txt`` files, or
:meth:`ProtectedCorpus.add`); each work becomes a set of hashed ``n``-word shingles on the
folded text, so case, Turkish dotted/dotless i and punctuation do not hide a copy. An output
is flagged when at least ``threshold`` of its shingles come from one work — a quotation of a
line or two stays under it, a pasted chapter does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from paramstack.guard.textnorm import fold

_WORD = re.compile(r"\w+")


def shingles(text: str, n: int) -> Iterator[int]:
    words = _WORD.findall(fold(text))
    for i in range(len(words) - n + 1):
        yield hash(" ".join(words[i : i + n]))


@dataclass(frozen=True)
class CopyrightHit:
    work: str
    overlap: float
    shingles: int


@dataclass
class ProtectedCorpus:
    """Shingle hash -> index of the work it belongs to (first work wins on a shared shingle)."""

    n: int = 8
    works: list[str] = field(default_factory=list)
    _index: dict[int, int] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        work = len(self.works)
        self.works.append(name)
        for h in shingles(text, self.n):
            self._index.setdefault(h, work)

    @classmethod
    def from_dir(cls, folder: Path | None, n: int) -> ProtectedCorpus:
        corpus = cls(n=n)
        if folder is not None and folder.is_dir():
            for path in sorted(folder.glob("*.txt")):
                corpus.add(path.stem, path.read_text(encoding="utf-8"))
        return corpus

    def match(self, text: str, min_shingles: int) -> CopyrightHit | None:
        """The work with the largest share of ``text``'s shingles, if there are enough."""
        if not self._index:
            return None
        counts: dict[int, int] = {}
        total = 0
        for h in shingles(text, self.n):
            total += 1
            work = self._index.get(h)
            if work is not None:
                counts[work] = counts.get(work, 0) + 1
        if total < min_shingles or not counts:
            return None
        work, hits = max(counts.items(), key=lambda kv: kv[1])
        return CopyrightHit(self.works[work], hits / total, total)
