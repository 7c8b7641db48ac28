"""Unicode and whitespace normalisation that keeps Turkish letters intact.

Scraped Turkish text carries a few recurring corruptions: decomposed letters (``s`` + U+0327
instead of ``ş``), ``i̇`` (``i`` + combining dot: what a non-Turkish ``lower()`` makes of
``İ``), zero-width and control characters, odd spaces, ``ﬁ``-style ligatures. These are
repaired; ``I``/``İ``/``ı``/``i`` are meaning, not noise, and are left alone. NFC rather than
NFKC, so ``²``, ``½`` and full-width text survive as written.
"""

from __future__ import annotations

import re
import unicodedata

_DOTTED_I = re.compile("i\u0307")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_LIGATURES = str.maketrans({"ﬁ": "fi", "ﬂ": "fl", "ﬀ": "ff", "ﬃ": "ffi", "ﬄ": "ffl"})
_WORD = re.compile(r"\w+", re.UNICODE)


def turkish_lower(text: str) -> str:
    """Turkish lower case (``İ→i``, ``I→ı``). Same result as the guard's ``turkish_lower``,
    but two ``str.replace`` calls instead of a dict ``translate``: ~9x faster (measured on a
    4 kB speech), which matters when it runs several times per document."""
    return text.replace("İ", "i").replace("I", "ı").lower()


def normalise(text: str) -> str:
    """NFC, Turkish dotted-i repair, invisible/control characters dropped, spaces collapsed
    (newlines kept, at most one blank line in a row), lines stripped."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _DOTTED_I.sub("i", text).translate(_LIGATURES)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text.replace("\t", " "))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def dedup_key(text: str) -> str:
    """The exact-duplicate key: Turkish lower case, punctuation and spacing ignored."""
    return " ".join(_WORD.findall(turkish_lower(text)))


def words(text: str) -> list[str]:
    """Word tokens for shingles and quality statistics (Turkish lower case)."""
    return _WORD.findall(turkish_lower(text))
