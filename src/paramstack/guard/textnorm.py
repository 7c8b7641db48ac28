"""Text normalisation shared by the checks: Turkish-correct case folding and evasion undoing.

Two views of a text exist on purpose:

* :func:`turkish_lower` is *linguistically* correct lower-casing for Turkish (``İ→i``,
  ``I→ı``); Python's ``str.lower`` turns ``İ`` into ``i̇`` (two code points) and ``I`` into
  ``i``, which corrupts Turkish words and shifts offsets.
* :func:`fold` is an *aggressive matching key*: every i-variant becomes ``i``, Turkish letters
  lose their diacritics, look-alike Cyrillic/Greek letters become Latin, zero-width characters
  vanish. Patterns and keyword lists are written once in this folded ASCII form, so
  ``İGNORE``, ``ıgnore`` and ``іgnore`` (Cyrillic і) all meet the same rule. ``fold`` keeps the
  length of the text (one code point in, one out), so spans found on the folded view are spans
  in the original text.

:func:`deobfuscate` goes further for injection detection only (leetspeak, spaced-out letters);
it does not keep offsets, which that check does not need.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import numpy.typing as npt

_TURKISH_LOWER = str.maketrans({"İ": "i", "I": "ı"})

# Look-alikes seen in evasion payloads (Cyrillic, Greek, Latin small capitals, fullwidth are
# handled by NFKC). One code point each, so offsets survive.
_HOMOGLYPHS = {
    "а": "a",
    "е": "e",
    "о": "o",
    "р": "p",
    "с": "c",
    "у": "y",
    "х": "x",
    "і": "i",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "к": "k",
    "м": "m",
    "н": "h",
    "т": "t",
    "в": "b",
    "г": "r",
    "п": "n",
    "ь": "b",
    "ӏ": "l",
    "А": "a",
    "В": "b",
    "Е": "e",
    "К": "k",
    "М": "m",
    "Н": "h",
    "О": "o",
    "Р": "p",
    "С": "c",
    "Т": "t",
    "Х": "x",
    "У": "y",
    "І": "i",
    "Ј": "j",
    "α": "a",
    "β": "b",
    "ε": "e",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "γ": "y",
    "Α": "a",
    "Β": "b",
    "Ε": "e",
    "Ζ": "z",
    "Η": "h",
    "Ι": "i",
    "Κ": "k",
    "Μ": "m",
    "Ν": "n",
    "Ο": "o",
    "Ρ": "p",
    "Τ": "t",
    "Υ": "y",
    "Χ": "x",
    "ı": "i",
    "İ": "i",
    "ş": "s",
    "Ş": "s",
    "ğ": "g",
    "Ğ": "g",
    "ç": "c",
    "Ç": "c",
    "ö": "o",
    "Ö": "o",
    "ü": "u",
    "Ü": "u",
    "â": "a",
    "Â": "a",
    "î": "i",
    "Î": "i",
    "û": "u",
    "Û": "u",
}
# Zero-width and soft-hyphen characters become a plain space (same length, no glued words).
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_FOLD = str.maketrans({**_HOMOGLYPHS, **dict.fromkeys(_INVISIBLE, " ")})

_LEET = {
    ord(k): v
    for k, v in {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "€": "e",
    }.items()
}
# Letters separated by single spaces, dots, dashes or underscores: "i g n o r e", "i.g.n.o.r.e".
_SPACED = re.compile(
    r"(?<![a-z])[a-z][ .\-_*][a-z][ .\-_*][a-z][ .\-_*][a-z](?:[ .\-_*][a-z])*(?![a-z])"
)
_SEPARATORS = re.compile(r"[ .\-_*]")


def turkish_lower(text: str) -> str:
    """Lower-case with Turkish rules (``İ→i``, ``I→ı``); other letters as ``str.lower``."""
    return text.translate(_TURKISH_LOWER).lower()


_BMP = 0x10000


@lru_cache(maxsize=2)
def _table(leet: bool) -> npt.NDArray[np.uint32]:
    """Code point -> folded code point for the BMP; built on first use, not at import."""
    table = np.arange(_BMP, dtype=np.uint32)
    for cp in range(_BMP):
        char = chr(cp)
        mapped = char.translate(_FOLD).lower()
        if len(mapped) != 1:
            mapped = char
        if not mapped.isascii():
            base = unicodedata.normalize("NFKD", mapped)[:1].translate(_FOLD).lower()[:1]
            mapped = base if base.isascii() and base.isalpha() else mapped
        table[cp] = ord(mapped)
    if leet:
        for src, dst in _LEET.items():
            table[np.nonzero(table == src)[0]] = ord(dst)
    return table


@lru_cache(maxsize=2)
def _ascii_table(leet: bool) -> bytes | None:
    """The ASCII rows of ``_table`` for ``bytes.translate``; None if one maps outside ASCII."""
    rows = [int(cp) for cp in _table(leet)[:128]]
    return bytes(rows) + bytes(range(128, 256)) if max(rows) < 128 else None


def _map(text: str, leet: bool) -> str:
    if text.isascii() and (ascii_rows := _ascii_table(leet)) is not None:
        # most prompts: one C call instead of six numpy passes (~2 µs instead of ~25)
        return text.encode("ascii").translate(ascii_rows).decode("ascii")
    # surrogatepass: a lone surrogate is valid JSON (``"\\ud800"``) and must not become a 500
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    table = _table(leet)
    inside = codes < _BMP
    out = np.where(inside, table[np.where(inside, codes, 0)], codes)
    return out.astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")


def fold(text: str) -> str:
    """Length-preserving matching key: lower-case, i-variants to ``i``, no diacritics/homoglyphs.

    The result has exactly ``len(text)`` code points, so a regex span on the folded text is the
    same span in ``text``. A numpy lookup table makes it ~10 µs per kB (``str.translate`` with a
    dict costs ~60 µs).
    """
    return _map(text, leet=False)


def deobfuscate(text: str) -> str:
    """Undo the common evasions (NFKC, homoglyphs, leetspeak, spaced letters) for detection.

    Digits and ``@$!|`` become the letters they imitate everywhere (``1gn0r3`` → ``ignore``);
    that garbles real numbers, which no injection rule needs. Not offset-preserving: used only
    by the injection check, which reports whole-text findings.
    """
    folded = _map(unicodedata.normalize("NFKC", text), leet=True)
    folded = _SPACED.sub(lambda m: _SEPARATORS.sub("", m.group(0)), folded)
    return " ".join(folded.split())


_TR_LETTERS = frozenset("ğĞıİşŞ")
_TR_WORDS = frozenset(
    [
        "ve",
        "bir",
        "bu",
        "icin",
        "ile",
        "mi",
        "mu",
        "ne",
        "gibi",
        "cok",
        "daha",
        "olarak",
        "sen",
        "ben",
        "bana",
        "sana",
        "simdi",
        "tum",
        "artik",
        "lutfen",
        "misin",
        "musun",
        "nasil",
        "neden",
        "hangi",
        "degil",
        "var",
        "yok",
        "olan",
        "ama",
    ]
)


def guess_lang(text: str) -> str:
    """``tr`` or ``en``: Turkish-only letters or two Turkish function words, else English.

    Only picks which calibrated injection threshold applies, so a cheap guess is enough; the
    letters ğ/ı/İ/ş never occur in English and common function words settle ASCII-only Turkish.
    """
    if not _TR_LETTERS.isdisjoint(text):  # in C: a Python loop per character cost ~0.1 ms/kB
        return "tr"
    words = fold(text[:2000]).split()
    return "tr" if sum(w.strip(".,;:!?") in _TR_WORDS for w in words) >= 2 else "en"
