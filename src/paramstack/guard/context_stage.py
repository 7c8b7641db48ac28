"""The injection check's contextual second stage: asked only where the n-gram model is unsure.

The n-gram model trades recall for false positives on English documents; a frozen sentence
encoder (:mod:`context_encoder`) reads wording it never saw as n-grams. Encoding costs tens
of milliseconds per kB on a CPU, so it runs only when no pattern fired and the stage-1 score
lies within ``band`` (in logits) of the language's threshold; there its verdict replaces stage
1's. The head is a logistic regression on the sentence vector (numpy at serving time), saved
as an ``.npz`` without pickle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.guard.injection import InjectionDetector, InjectionHit
from paramstack.guard.injection_model import balanced_weights
from paramstack.guard.textnorm import guess_lang

FloatMatrix = npt.NDArray[np.float32]
Encode = Callable[[Sequence[str]], FloatMatrix]


@dataclass
class ContextHead:
    """Logistic regression over unit sentence vectors, per-language thresholds, the band."""

    weights: npt.NDArray[np.float32]
    bias: float
    band: float = 2.0
    lang_thresholds: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.5

    def scores(self, vectors: FloatMatrix) -> npt.NDArray[np.float64]:
        logits = vectors.astype(np.float64) @ self.weights.astype(np.float64) + self.bias
        return np.asarray(1 / (1 + np.exp(-logits)), dtype=np.float64)

    def threshold_for(self, text: str) -> float:
        return self.lang_thresholds.get(guess_lang(text), self.threshold)

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(
                fh,
                weights=self.weights,
                bias=np.float64(self.bias),
                band=np.float64(self.band),
                threshold=np.float64(self.threshold),
                **thresholds_arrays(self.lang_thresholds),
            )

    @classmethod
    def load(cls, path: Path) -> ContextHead:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                weights=data["weights"].astype(np.float32),
                bias=float(data["bias"]),
                band=float(data["band"]),
                threshold=float(data["threshold"]),
                lang_thresholds=thresholds_from(data),
            )


def thresholds_arrays(lang_thresholds: dict[str, float]) -> dict[str, Any]:
    """Per-language thresholds as two arrays for ``np.savez`` (no pickled dict in the file)."""
    names = sorted(lang_thresholds)
    return {
        "lang_names": np.array(names, dtype="U8"),
        "lang_values": np.array([lang_thresholds[k] for k in names], dtype=np.float64),
    }


def thresholds_from(data: Mapping[str, npt.NDArray[Any]]) -> dict[str, float]:
    """The inverse of :func:`thresholds_arrays`, from a loaded ``.npz``."""
    pairs = zip(data["lang_names"], data["lang_values"], strict=True)
    return {str(k): float(v) for k, v in pairs}


def fit_head(
    vectors: FloatMatrix, labels: Sequence[int], groups: Sequence[str], c: float = 4.0
) -> ContextHead:
    """scikit-learn's logistic regression (training stack only), each (group, label) cell
    weighted equally as in the n-gram model's training; thresholds are set by the caller on
    held-out rows (:func:`injection_model._thresholds`)."""
    from sklearn.linear_model import LogisticRegression

    weights = balanced_weights(labels, groups) * len(labels)
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(vectors, np.asarray(labels), sample_weight=weights)
    return ContextHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


def cached_encoder(vectors: dict[str, FloatMatrix]) -> Encode:
    """An :data:`Encode` over precomputed vectors (CV and evaluation encode every row once)."""

    def encode(texts: Sequence[str]) -> FloatMatrix:
        return np.stack([vectors[t] for t in texts])

    return encode


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def in_band(score: float, threshold: float, band: float) -> bool:
    """Whether the stage-1 ``score`` is within ``band`` logits of ``threshold``."""
    return abs(_logit(score) - _logit(threshold)) <= band


class ContextualDetector:
    """Stage 1 (:class:`InjectionDetector`, channels off) plus the second stage in the band."""

    def __init__(
        self,
        first: InjectionDetector,
        head: ContextHead,
        encode: Encode,
        *,
        rescue_only: bool = False,
    ) -> None:
        if first.model is None:
            raise ValueError("the second stage needs stage 1's classifier (its score)")
        self.first = first
        self.model = first.model
        self.head = head
        self.encode = encode
        self.asked = 0  # how many texts reached stage 2 (the share is reported)
        self.rescue_only = rescue_only  # stage 2 may only add flags (stage 1 said benign)

    def uncertain(self, text: str) -> bool:
        """No pattern decides, and the stage-1 score lies in the band."""
        limit = self.first.fixed_threshold
        if limit is None:
            limit = self.model.threshold_for(text)
        return in_band(self.model.score(text), limit, self.head.band)

    def detect(self, text: str) -> InjectionHit | None:
        hit = self.first.detect(text)
        if hit is not None and hit.rule != "injection.classifier":
            return hit  # a pattern or a decoded / ciphered run: not the classifier's doubt
        if (hit is not None and self.rescue_only) or not self.uncertain(text):
            return hit
        self.asked += 1
        score = float(self.head.scores(self.encode([text]))[0])
        if score >= self.head.threshold_for(text):
            return InjectionHit("injection.context_classifier", score)
        return None
