"""The per-document part of ``data clean``: runs in worker processes, one document at a time.

Order matters for the report: a document is counted against the first filter it fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from paramstack.data.dedup import exact_hash, signature
from paramstack.data.ingest import Doc
from paramstack.data.langid import identify
from paramstack.data.normalise import normalise
from paramstack.data.quality import (
    ENGLISH_STOP_WORDS,
    TURKISH_STOP_WORDS,
    c4_filter,
    fineweb_quality,
    gopher_quality,
    gopher_repetition,
)
from paramstack.guard.pii import PatternRecognizer, detect, mask

STAGES = (
    "empty",
    "language",
    "gopher_quality",
    "gopher_repetition",
    "c4",
    "fineweb",
    "exact_dedup",
    "near_dedup",
)


@dataclass(frozen=True)
class CleanConfig:
    """Every knob of ``data clean`` (``configs/data/clean.yaml`` holds the defaults)."""

    languages: tuple[str, ...] = ("tr",)
    min_language_prob: float = 0.65
    gopher_quality: bool = True
    gopher_repetition: bool = True
    c4: bool = True
    c4_min_sentences: int = 5
    c4_terminal_punct: bool = True
    fineweb: bool = True
    near_dedup_threshold: float = 0.8
    shingle_words: int = 5
    num_perm: int = 128
    pii: bool = True
    shard_docs: int = 10_000
    workers: int = 0  # 0 = one per CPU core


@dataclass
class Outcome:
    """What a worker sends back: the cleaned document, or the stage that dropped it."""

    doc: Doc
    stage: str | None
    reason: str | None = None
    language: str = ""
    pii_spans: int = 0
    key: bytes = b""
    hashvalues: npt.NDArray[np.uint32] = field(default_factory=lambda: np.zeros(0, np.uint32))


@lru_cache(maxsize=1)
def _recognizer() -> PatternRecognizer:
    return PatternRecognizer()


def _mask_pii(text: str) -> tuple[str, int]:
    """The guard's checksum-validated masker (TCKN, VKN, IBAN, cards, phones, e-mail…)."""
    spans = detect(text, [_recognizer()])
    return mask(text, spans), len(spans)


def clean_one(doc: Doc, cfg: CleanConfig) -> Outcome:
    text = normalise(doc.text)
    if not text:
        return Outcome(doc, "empty", "empty")
    lang, prob = identify(text)
    if lang not in cfg.languages or prob < cfg.min_language_prob:
        return Outcome(doc, "language", f"language_{lang}", language=lang)
    stop_words = TURKISH_STOP_WORDS if lang == "tr" else ENGLISH_STOP_WORDS
    if cfg.gopher_quality and (reason := gopher_quality(text, stop_words)):
        return Outcome(doc, "gopher_quality", reason, lang)
    if cfg.gopher_repetition and (reason := gopher_repetition(text)):
        return Outcome(doc, "gopher_repetition", reason, lang)
    if cfg.c4:
        text, reason = c4_filter(text, cfg.c4_min_sentences, cfg.c4_terminal_punct)
        if reason:
            return Outcome(doc, "c4", reason, lang)
    if cfg.fineweb and (reason := fineweb_quality(text)):
        return Outcome(doc, "fineweb", reason, lang)
    spans = 0
    if cfg.pii:
        text, spans = _mask_pii(text)
    return Outcome(
        Doc(doc.id, text, doc.source),
        None,
        language=lang,
        pii_spans=spans,
        key=exact_hash(text),
        hashvalues=signature(text, cfg.shingle_words, cfg.num_perm),
    )


def clean_batch(batch: list[Doc], cfg: CleanConfig) -> list[Outcome]:
    return [clean_one(doc, cfg) for doc in batch]
