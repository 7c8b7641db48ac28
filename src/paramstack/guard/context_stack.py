"""A stacked second stage for the injection check: stage 1's logit plus a sentence vector.

Session 5's MiniLM stage *replaced* the n-gram verdict in the uncertain band and lost recall:
the head never saw what stage 1 knew. Here the head is a logistic regression on
``[stage-1 logit, sentence vector]``, fitted on *out-of-fold* stage-1 logits (three template
groups, each scored by a model fitted on the other two), so it can keep stage 1's evidence
and add what the encoder reads. Its thresholds are *matched*: per language, the candidate's
group-mean benign FPR on a calibration set may not exceed what stage 1 reaches there, so a
gain shows up as recall (round 5 in ``docs/guard-injection.md``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paramstack.guard.context_stage import (
    Encode,
    FloatMatrix,
    thresholds_arrays,
    thresholds_from,
)
from paramstack.guard.datasets import Prompt, train_group
from paramstack.guard.injection import InjectionDetector, InjectionHit
from paramstack.guard.injection_model import InjectionModel, TrainConfig, balanced_weights, train
from paramstack.guard.textnorm import guess_lang
from paramstack.guard.thresholds import lang_of

Floats = npt.NDArray[np.float64]
_SLACK = 1e-9


def logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


@dataclass
class StackedHead:
    """Logistic regression over ``[logit, vector]``; ``band`` None = asked for every input."""

    weights: npt.NDArray[np.float32]
    bias: float
    encoder: str = "use-m3"
    band: float | None = 2.0
    lang_thresholds: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.5

    def scores(self, logits: Sequence[float] | Floats, vectors: FloatMatrix) -> Floats:
        x = vectors.astype(np.float64) @ self.weights[1:].astype(np.float64)
        z = x + float(self.weights[0]) * np.asarray(logits, dtype=np.float64) + self.bias
        return np.asarray(1 / (1 + np.exp(-z)), dtype=np.float64)

    def threshold_for(self, text: str) -> float:
        return self.lang_thresholds.get(guess_lang(text), self.threshold)

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(
                fh,
                weights=self.weights,
                bias=np.float64(self.bias),
                encoder=np.array(self.encoder),
                band=np.float64(-1.0 if self.band is None else self.band),
                threshold=np.float64(self.threshold),
                **thresholds_arrays(self.lang_thresholds),
            )

    @classmethod
    def load(cls, path: Path) -> StackedHead:
        with np.load(path, allow_pickle=False) as data:
            band = float(data["band"])
            return cls(
                weights=data["weights"].astype(np.float32),
                bias=float(data["bias"]),
                encoder=str(data["encoder"]),
                band=None if band < 0 else band,
                threshold=float(data["threshold"]),
                lang_thresholds=thresholds_from(data),
            )


def inner_group(row: Prompt) -> int:
    """0 = the inner template hold-out (:func:`channel_cv.inner_held`); 1–3 = the template
    groups whose out-of-fold logits the head fits on."""
    return zlib.crc32(f"inner:{row.fold_key}".encode()) % 4


def oof_logits(rows: Sequence[Prompt], epochs: int, target_fpr: float) -> Floats:
    """Stage-1 logits of ``rows`` (none in the inner hold-out), each from a linear model fitted,
    as stage 1 is, on the other two template groups."""
    groups = [inner_group(r) for r in rows]
    if 0 in groups:
        raise ValueError("inner hold-out rows have no out-of-fold logit here")
    out = np.zeros(len(rows), dtype=np.float64)
    for g in (1, 2, 3):
        fit = [r for r, k in zip(rows, groups, strict=True) if k != g]
        model, _ = train(
            [r.text for r in fit],
            [r.label for r in fit],
            TrainConfig(epochs=epochs, target_fpr=target_fpr, valid_fraction=0.0),
            [train_group(r) for r in fit],
        )
        for i, k in enumerate(groups):
            if k == g:
                out[i] = logit(model.score(rows[i].text))
    return out


def fit_stacked(
    logits: Floats, vectors: FloatMatrix, labels: Sequence[int], groups: Sequence[str], c: float
) -> StackedHead:
    """scikit-learn's logistic regression (training stack only), each (group, label) cell
    weighted equally as in the n-gram model's training; thresholds are set by the caller."""
    from sklearn.linear_model import LogisticRegression

    x = np.hstack([np.asarray(logits, dtype=np.float64)[:, None], vectors.astype(np.float64)])
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(x, np.asarray(labels), sample_weight=balanced_weights(labels, groups) * len(labels))
    return StackedHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


@dataclass
class FirstStage:
    """What stage 1 says about each text: a final hit (pattern / decoded run), its flag, its
    logit and the margin to its language threshold's logit."""

    final: npt.NDArray[np.bool_]
    flag: npt.NDArray[np.bool_]
    logit: Floats
    margin: Floats
    lang: list[str]


def first_stage(detector: InjectionDetector, texts: Sequence[str]) -> FirstStage:
    model = detector.model
    if model is None:
        raise ValueError("the stacked stage needs stage 1's classifier (its logit)")
    final, flag, logits, margin, langs = [], [], [], [], []
    for text in texts:
        hit = detector.detect(text)
        z = logit(model.score(text))
        limit = detector.fixed_threshold or model.threshold_for(text)
        final.append(hit is not None and hit.rule != "injection.classifier")
        flag.append(hit is not None)
        logits.append(z)
        margin.append(z - logit(limit))
        langs.append(guess_lang(text))
    return FirstStage(
        np.array(final, dtype=bool),
        np.array(flag, dtype=bool),
        np.array(logits),
        np.array(margin),
        langs,
    )


def asked(first: FirstStage, band: float | None) -> npt.NDArray[np.bool_]:
    """Inputs that reach the head: no final hit, and (with a band) the logit in the band."""
    near = np.ones_like(first.final) if band is None else np.abs(first.margin) <= band
    return np.asarray(~first.final & near, dtype=bool)


def stacked_flags(first: FirstStage, head: StackedHead, scores: Floats) -> npt.NDArray[np.bool_]:
    limits = np.array([head.lang_thresholds.get(lang, head.threshold) for lang in first.lang])
    ask = asked(first, head.band)
    return np.asarray(first.final | np.where(ask, scores >= limits, first.flag), dtype=bool)


def match_thresholds(
    head: StackedHead, first: FirstStage, scores: Floats, groups: Sequence[str]
) -> dict[str, float]:
    """Per language, the lowest head threshold at which the benign calibration rows' group-mean
    FPR (stage-1 verdicts outside the band included) does not exceed stage 1's on them;
    sets ``head.lang_thresholds`` and returns the target per language."""
    ask = asked(first, head.band)
    targets: dict[str, float] = {}
    for lang in sorted({lang_of(g) for g in groups}):
        idx = [i for i, g in enumerate(groups) if lang_of(g) == lang]
        sizes: dict[str, int] = {}
        for i in idx:
            sizes[groups[i]] = sizes.get(groups[i], 0) + 1

        def weight(i: int, sizes: dict[str, int] = sizes) -> float:
            return 1 / (sizes[groups[i]] * len(sizes))

        targets[lang] = sum(weight(i) for i in idx if first.flag[i])
        flagged = sum(weight(i) for i in idx if not ask[i] and first.flag[i])
        ranked = sorted((i for i in idx if ask[i]), key=lambda i: -scores[i])
        threshold = float(scores[ranked[0]]) + 1e-6 if ranked else 0.99
        for i in ranked:
            flagged += weight(i)
            if flagged > targets[lang] + _SLACK:
                break
            threshold = float(scores[i])
        head.lang_thresholds[lang] = threshold
    head.threshold = max(head.lang_thresholds.values(), default=0.5)
    return targets


class StackedDetector:
    """Stage 1 plus the stacked head (serving path: one text at a time)."""

    def __init__(self, first: InjectionDetector, head: StackedHead, encode: Encode) -> None:
        if first.model is None:
            raise ValueError("the stacked stage needs stage 1's classifier (its logit)")
        self.first = first
        self.model: InjectionModel = first.model
        self.head = head
        self.encode = encode
        self.asked = 0

    def detect(self, text: str) -> InjectionHit | None:
        hit = self.first.detect(text)
        if hit is not None and hit.rule != "injection.classifier":
            return hit
        z = logit(self.model.score(text))
        limit = self.first.fixed_threshold or self.model.threshold_for(text)
        if self.head.band is not None and abs(z - logit(limit)) > self.head.band:
            return hit
        self.asked += 1
        score = float(self.head.scores([z], self.encode([text]))[0])
        if score >= self.head.threshold_for(text):
            return InjectionHit("injection.context_classifier", score)
        return None
