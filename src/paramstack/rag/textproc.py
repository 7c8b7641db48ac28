"""Turkish-aware normalisation and the lexical view of a text (BM25 terms as a sparse vector).

Lexical matching runs on :func:`paramstack.guard.textnorm.fold` of the Turkish lower-cased
text (``İ``/``I``/``ı``/``i`` meet, diacritics go), truncated to a 5-character prefix: a light
stemmer that was measured to beat every dense model alone on Turkish passages. Terms are hashed
to 31-bit ids so any engine with sparse vectors stores them (no vocabulary to keep in sync);
the engine supplies the IDF, we supply the saturated term frequency (BM25's k1 and b).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter

from paramstack.guard.textnorm import fold, turkish_lower
from paramstack.rag.types import SparseVec

PREFIX = 5
K1 = 1.2
B = 0.75
AVG_TERMS = 120.0
_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """NFC, unified spaces and at most one blank line: the text that chunks and offsets use."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACE.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def terms(text: str, prefix: int = PREFIX) -> list[str]:
    """Case-folded, prefix-truncated word terms (``İstanbul'da`` → ``istan``, ``da``)."""
    folded = fold(turkish_lower(text))
    return [w[:prefix] for w in _WORD.findall(folded)]


def term_id(term: str) -> int:
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


def doc_sparse(text: str, avg_terms: float = AVG_TERMS) -> SparseVec:
    """BM25 document side: tf·(k1+1) / (tf + k1·(1 − b + b·len/avg)) per hashed term."""
    counts = Counter(term_id(t) for t in terms(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / avg_terms)
    ids = sorted(counts)
    return SparseVec(ids, [counts[i] * (K1 + 1) / (counts[i] + norm) for i in ids])


def query_sparse(text: str) -> SparseVec:
    """BM25 query side: each distinct term once (the engine's IDF modifier weighs it)."""
    ids = sorted({term_id(t) for t in terms(text)})
    return SparseVec(ids, [1.0] * len(ids))
