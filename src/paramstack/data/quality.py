"""Heuristic quality filters: the Gopher, C4 and FineWeb rules, with Turkish stop words.

Thresholds are the published ones as datatrove ships them (Rae et al. 2021 "Gopher" §A.1,
Raffel et al. 2020 "C4", Penedo et al. 2024 "FineWeb"); datatrove itself is not a dependency
because its filters need its own pipeline objects and a per-language word tokenizer we do
not need for whitespace-separated Turkish. Each rule returns the name of the first check a
document fails, or ``None``; the C4 rule also removes bad lines, as C4 does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paramstack.data.normalise import turkish_lower

# Frequent Turkish function words (the Gopher rule needs >= 2 of them in a real sentence).
_TR = "ve bir bu da de için ile ki ne o gibi daha çok en ama var mı mi olan olarak kadar sonra "
_TR += "her şey ben sen biz siz onlar ya veya diye değil ise hem bile şu ancak çünkü göre"
TURKISH_STOP_WORDS = frozenset(_TR.split(" "))
ENGLISH_STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
_TERMINAL = (".", "!", "?", '"', "'", "”", "’", "…", ":", ")")
_BULLETS = ("•", "●", "○", "▪", "-", "*", "–", "—", "·")
_POLICY = (
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
    "çerez politikası", "gizlilik politikası", "kullanım koşulları", "çerezleri kullan",
    "çerez kullan",
)  # fmt: skip
_WORD = re.compile(r"\S+")
_ALPHA = re.compile(r"[^\W\d_]")
_SENTENCE = re.compile(r"[.!?…]+(?:\s|$)")


def gopher_quality(text: str, stop_words: frozenset[str] = TURKISH_STOP_WORDS) -> str | None:
    words = _WORD.findall(text)
    n = len(words)
    if n < 50:
        return "gopher_short_doc"
    if n > 100_000:
        return "gopher_long_doc"
    mean_len = sum(len(w) for w in words) / n
    if not 3 <= mean_len <= 10:
        return "gopher_word_length"
    if (text.count("#") + text.count("...") + text.count("…")) / n > 0.1:
        return "gopher_symbol_ratio"
    lines = [line for line in text.split("\n") if line.strip()]
    if sum(line.startswith(_BULLETS) for line in lines) / len(lines) > 0.9:
        return "gopher_bullet_lines"
    if sum(line.rstrip().endswith(("...", "…")) for line in lines) / len(lines) > 0.3:
        return "gopher_ellipsis_lines"
    if sum(bool(_ALPHA.search(w)) for w in words) / n < 0.8:
        return "gopher_alpha_words"
    lowered = {w.strip(".,;:!?\"'()") for w in turkish_lower(text).split()}
    if len(lowered & stop_words) < 2:
        return "gopher_stop_words"
    return None


def _dup_fraction(items: Sequence[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier one, fraction of their characters)."""
    seen: set[str] = set()
    dup_items = dup_chars = 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        seen.add(item)
    total_chars = sum(len(i) for i in items) or 1
    return dup_items / max(len(items), 1), dup_chars / total_chars


def _ngram_ids(ids: npt.NDArray[np.uint64], n: int) -> npt.NDArray[np.int64]:
    """A dense id per distinct n-gram of the word-id sequence (a polynomial hash, then
    ``np.unique``): counting n-grams this way is ~20x faster than Counter over tuples."""
    grams = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    for k in range(n):
        grams = grams * np.uint64(1_000_003) + ids[k : len(ids) - n + 1 + k]
    _, inverse = np.unique(grams, return_inverse=True)
    return inverse.astype(np.int64)


def _ngram_stats(
    ids: npt.NDArray[np.uint64], lengths: npt.NDArray[np.int64], n: int
) -> tuple[float, float]:
    """(characters of the most frequent n-gram times its count, characters covered by n-grams
    occurring more than once), both as a share of all word characters (Gopher's definition)."""
    if len(ids) < n:
        return 0.0, 0.0
    total = max(int(lengths.sum()), 1)
    gram = _ngram_ids(ids, n)
    counts = np.bincount(gram)
    gram_chars = np.convolve(lengths, np.ones(n, np.int64), mode="valid")
    top = int(np.argmax(counts[gram]))
    top_share = float(gram_chars[top] * counts[gram[top]]) / total
    repeated = np.flatnonzero(counts[gram] > 1)
    marks = np.zeros(len(ids) + 1, np.int64)
    np.add.at(marks, repeated, 1)
    np.add.at(marks, repeated + n, -1)
    covered = np.cumsum(marks[:-1]) > 0
    return top_share, float(lengths[covered].sum()) / total


def gopher_repetition(text: str) -> str | None:
    lines = [line for line in text.split("\n") if line.strip()]
    paragraphs = [p for p in re.split(r"\n{2,}", text) if p.strip()]
    line_frac, line_chars = _dup_fraction(lines)
    para_frac, para_chars = _dup_fraction(paragraphs)
    if line_frac > 0.3 or para_frac > 0.3:
        return "gopher_dup_lines"
    if line_chars > 0.2 or para_chars > 0.2:
        return "gopher_dup_line_chars"
    words = _WORD.findall(turkish_lower(text))
    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.uint64)
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    for n, limit in ((2, 0.2), (3, 0.18), (4, 0.16)):
        if _ngram_stats(ids, lengths, n)[0] > limit:
            return f"gopher_top_{n}gram"
    for n, limit in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)):
        if _ngram_stats(ids, lengths, n)[1] > limit:
            return f"gopher_dup_{n}gram"
    return None


def c4_filter(
    text: str, min_sentences: int = 5, terminal_punct: bool = True
) -> tuple[str, str | None]:
    """C4's line rules (keep lines ending in terminal punctuation with >= 3 words, drop
    javascript/policy lines) and document rules (lorem ipsum, curly brace, >= 5 sentences).
    ``terminal_punct=False`` (datatrove's ``filter_no_terminal_punct``) keeps lines that end
    otherwise: one-paragraph letters ending in a signature lose everything to that rule.
    Returns the cleaned text and the failed check, if any."""
    lowered = turkish_lower(text)
    if "lorem ipsum" in lowered:
        return text, "c4_lorem_ipsum"
    if "{" in text:
        return text, "c4_curly_bracket"
    kept = []
    for line, low in zip(text.split("\n"), lowered.split("\n"), strict=True):
        if not line.strip() or (
            (not terminal_punct or line.rstrip().endswith(_TERMINAL))
            and len(line.split()) >= 3
            and "javascript" not in low
            and not any(p in low for p in _POLICY)
            and max(len(w) for w in line.split()) <= 1000
        ):
            kept.append(line)
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    if len(_SENTENCE.findall(cleaned)) < min_sentences:
        return cleaned, "c4_too_few_sentences"
    return cleaned, None


def fineweb_quality(text: str) -> str | None:
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return "fineweb_empty"
    if sum(line.rstrip().endswith(_TERMINAL) for line in lines) / len(lines) < 0.12:
        return "fineweb_line_punct"
    if sum(len(line) <= 30 for line in lines) / len(lines) > 0.67:
        return "fineweb_short_lines"
    _, dup_chars = _dup_fraction(lines)
    if dup_chars > 0.01:
        return "fineweb_char_dup"
    if text.count("\n") / max(len(_WORD.findall(text)), 1) > 0.3:
        return "fineweb_list_ratio"
    return None
