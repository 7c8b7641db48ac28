"""Window scoring: a long text is also judged sentence window by sentence window.

Why: the n-gram models divide a text's summed weights by √(number of n-grams), so one
instruction buried in a long benign document is diluted by everything around it. Scoring
windows of a few consecutive sentences as well and keeping the highest score lets the buried
sentence stand alone. The text is featurised once: every n-gram id carries the character
offset where it starts, and window sums are differences of prefix sums over the ids in
offset order, so a window costs a subtraction, not a second hashing pass.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paramstack.guard.injection_model import _MULT, _STEP, InjectionModel, IntArray, features
from paramstack.guard.textnorm import deobfuscate

MIN_SENTENCES = 4  # fewer sentences: the whole text is one window anyway
_SENTENCE_END = re.compile(r"[.!?]+\s+|\n+")
_WORD = re.compile(r"\w+")


def positioned_features(
    padded: str, orders: Sequence[int], bits: int, word_orders: Sequence[int] = ()
) -> tuple[IntArray, IntArray]:
    """The ids of :func:`injection_model.features` on ``padded`` (the de-obfuscated text with
    one space either side), in the same order, and the character offset each one starts at."""
    shift = np.uint64(64 - bits)
    ids: list[npt.NDArray[np.uint64]] = []
    starts: list[IntArray] = []
    if word_orders:
        found = list(_WORD.finditer(padded))
        words = np.fromiter((zlib.crc32(m.group().encode()) for m in found), dtype=np.uint64)
        offsets = np.array([m.start() for m in found], dtype=np.int64)
        rolling = words
        with np.errstate(over="ignore"):
            for n in range(1, max(word_orders) + 1):
                if n > 1:
                    if len(words) < n:
                        break
                    rolling = rolling[:-1] * _STEP + words[n - 1 :]
                if n in word_orders:
                    ids.append(((rolling + np.uint64(100 + n)) * _MULT) >> shift)
                    starts.append(offsets[: len(rolling)])
    codes = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        rolling = codes.copy()
        for n in range(2, max(orders) + 1):
            if len(codes) < n:
                break
            rolling = rolling[:-1] * _STEP + codes[n - 1 :]
            if n in orders:
                ids.append(((rolling + np.uint64(n)) * _MULT) >> shift)
                starts.append(np.arange(len(rolling), dtype=np.int64))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids).astype(np.int64), np.concatenate(starts)


def sentence_bounds(padded: str) -> list[int]:
    """Offsets where sentences start, plus the text's end (sentences = bounds − 1)."""
    bounds = [0] + [m.end() for m in _SENTENCE_END.finditer(padded)]
    if bounds[-1] < len(padded):
        bounds.append(len(padded))
    return sorted(set(bounds))


def window_logit(model: InjectionModel, text: str, norm: str | None = None) -> float:
    """Highest logit over the whole text and every window of ``model.windows`` sentences
    (texts of fewer than :data:`MIN_SENTENCES` sentences: the whole text only)."""
    padded = f" {deobfuscate(text) if norm is None else norm} "
    ids, starts = positioned_features(padded, model.orders, model.bits, model.word_orders)
    if ids.size == 0:
        return float(model.logits(np.zeros((1, model.id_rows(ids).shape[1]), np.float32))[0])
    order = np.argsort(starts, kind="stable")
    sorted_starts = starts[order]
    rows = model.id_rows(ids[order])
    prefix = np.vstack([np.zeros((1, rows.shape[1]), np.float32), np.cumsum(rows, axis=0)])
    bags = [prefix[-1] / np.sqrt(ids.size)]
    bounds = sentence_bounds(padded)
    width = model.windows
    if width > 0 and len(bounds) - 1 >= MIN_SENTENCES:
        cuts = np.searchsorted(sorted_starts, np.array(bounds), side="left")
        lo, hi = cuts[:-width], cuts[width:]
        count = np.maximum(hi - lo, 1)[:, None]
        bags += list((prefix[hi] - prefix[lo]) / np.sqrt(count))
    return float(np.max(model.logits(np.asarray(bags, dtype=np.float32))))


def window_score(model: InjectionModel, text: str, norm: str | None = None) -> float:
    """P(injection) of :func:`window_logit`."""
    return float(1 / (1 + np.exp(-window_logit(model, text, norm))))


def score_twins(
    model: InjectionModel,
    twins: Sequence[tuple[str, str, str]],
    which: Sequence[int],
    out: npt.NDArray[np.float64],
) -> None:
    """Whole-text and window scores of the ``which`` (text, group, fold key) rows into ``out``
    (one row of 2 each): what matched thresholds (``thresholds.matched_thresholds``) compare."""
    for j in which:
        text = twins[j][0]
        ids = features(text, model.orders, model.bits, model.word_orders)
        out[j] = model.score_ids(ids), window_score(model, text)


def sentence_windows(text: str, width: int, limit: int) -> list[str]:
    """Up to ``limit`` windows of ``width`` sentences of a text of at least
    :data:`MIN_SENTENCES` sentences, evenly spaced (first and last included)."""
    bounds = sentence_bounds(text)
    count = len(bounds) - 1 - width + 1
    if len(bounds) - 1 < MIN_SENTENCES or count < 1 or limit < 1:
        return []
    picks = sorted({round(i * (count - 1) / max(1, limit - 1)) for i in range(min(limit, count))})
    return [text[bounds[i] : bounds[i + width]].strip() for i in picks]


def benign_windows(
    texts: Sequence[str],
    labels: Sequence[int],
    groups: Sequence[str],
    fold_keys: Sequence[str],
    width: int,
    limit: int,
) -> tuple[list[str], list[int], list[str], list[str]]:
    """The rows plus windows of every long benign row, appended after them as benign rows of
    group ``<lang>:window`` with the parent's fold key (same fold as their parent).

    Why: a model scored on windows meets sentence triples of benign documents — a README's
    install steps, a frame's bare task — that it never saw alone; fitted on them, it learns
    that an imperative in reference text is no attack. Attack rows add no windows (which of
    their windows holds the instruction is unknown)."""
    keys = list(fold_keys) or list(texts)
    out = (list(texts), list(labels), list(groups), keys.copy())
    for text, label, group, key in zip(texts, labels, groups, keys, strict=True):
        if label != 0:
            continue
        for window in sentence_windows(text, width, limit):
            out[0].append(window)
            out[1].append(0)
            out[2].append(f"{group.split(':')[0]}:window")
            out[3].append(key)
    return out
