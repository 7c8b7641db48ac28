"""A tiny prompt-injection classifier: hashed character n-grams + logistic regression in numpy.

Why not scikit-learn: the gateway must start without the training stack, and scoring a 1 kB
prompt has to cost microseconds. Features are computed vectorised (a rolling multiply-shift
hash over the code points of the de-obfuscated text, n = 2..5), so scoring is a handful of
numpy calls, about 50 µs per kB. Training is full-batch Adam on the same sparse features
(``np.bincount`` gradients), seconds on two cores for a few thousand prompts.

The model file is an ``.npz`` (weights, bias, n-gram orders, hash bits, calibrated threshold)
with a ``.meta.json`` beside it (data counts, metrics, timings) — no pickle, so loading a
model file cannot run code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.guard.textnorm import deobfuscate, guess_lang

_MULT = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(1099511628211)
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def features(text: str, orders: Sequence[int], bits: int) -> IntArray:
    """Hashed n-gram ids (with repeats: term frequency) of the de-obfuscated, padded text."""
    norm = f" {deobfuscate(text)} "
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    shift = np.uint64(64 - bits)
    ids: list[npt.NDArray[np.uint64]] = []
    with np.errstate(over="ignore"):
        rolling = codes.copy()
        for n in range(2, max(orders) + 1):
            if len(codes) < n:
                break
            rolling = rolling[:-1] * _STEP + codes[n - 1 :]
            if n in orders:
                salted = (rolling + np.uint64(n)) * _MULT
                ids.append(salted >> shift)
    if not ids:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(ids).astype(np.int64)


@dataclass
class InjectionModel:
    """Weights plus the settings they were trained with; ``score`` returns P(injection)."""

    weights: FloatArray
    bias: float
    orders: tuple[int, ...] = (2, 3, 4, 5)
    bits: int = 18
    threshold: float = 0.5
    lang_thresholds: dict[str, float] = field(default_factory=dict)

    def threshold_for(self, text: str) -> float:
        """The calibrated threshold of the text's language (``guess_lang``), else the global one.

        One global threshold is the strictest language's: English benign prompts look more
        like attacks than Turkish ones do, so a shared threshold cost Turkish recall.
        """
        return self.lang_thresholds.get(guess_lang(text), self.threshold)

    def score(self, text: str) -> float:
        idx = features(text, self.orders, self.bits)
        if idx.size == 0:
            return float(1 / (1 + np.exp(-self.bias)))
        logit = float(self.weights[idx].sum()) / float(np.sqrt(idx.size)) + self.bias
        return float(1 / (1 + np.exp(-logit)))

    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                weights=self.weights,
                bias=np.float64(self.bias),
                orders=np.array(self.orders),
                bits=np.int64(self.bits),
                threshold=np.float64(self.threshold),
                lang_names=np.array(sorted(self.lang_thresholds), dtype="U8"),
                lang_values=np.array(
                    [self.lang_thresholds[k] for k in sorted(self.lang_thresholds)],
                    dtype=np.float64,
                ),
            )
        if meta is not None:
            path.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, path: Path) -> InjectionModel:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                weights=data["weights"].astype(np.float32),
                bias=float(data["bias"]),
                orders=tuple(int(x) for x in data["orders"]),
                bits=int(data["bits"]),
                threshold=float(data["threshold"]),
                lang_thresholds={
                    str(k): float(v)
                    for k, v in zip(
                        data.get("lang_names", []), data.get("lang_values", []), strict=True
                    )
                },
            )


@dataclass(frozen=True)
class TrainConfig:
    orders: tuple[int, ...] = (2, 3, 4, 5)
    bits: int = 18
    epochs: int = 150
    lr: float = 0.05
    l2: float = 1e-5
    target_fpr: float = 0.03
    valid_fraction: float = 0.25
    seed: int = 0


def train(
    texts: Sequence[str], labels: Sequence[int], cfg: TrainConfig, groups: Sequence[str] = ()
) -> tuple[InjectionModel, dict[str, Any]]:
    """Fit on a split of the rows; each (group, label) cell gets equal total weight.

    ``groups`` (e.g. the language) keeps a big English attack set from drowning a small
    Turkish benign one, the imbalance behind DATA.md's "Turkish = attack" failure. The
    threshold is set on the held-back ``valid_fraction`` (training scores are overconfident):
    at most ``target_fpr`` of the benign validation rows of *each* group score above it, per
    language when groups are named ``<lang>:<family>`` (:func:`datasets.train_group`).
    """
    started = time.perf_counter()
    groups = list(groups) or ["all"] * len(texts)
    order = np.random.default_rng(cfg.seed).permutation(len(texts))
    n_valid = int(len(texts) * cfg.valid_fraction)
    valid, fit = order[:n_valid], order[n_valid:]
    model = _fit([texts[i] for i in fit], [labels[i] for i in fit], cfg, [groups[i] for i in fit])
    per_lang: dict[str, float] = {}
    for group in sorted(set(groups)):
        benign = np.sort(
            [model.score(texts[i]) for i in valid if labels[i] == 0 and groups[i] == group]
        )
        if len(benign):
            k = int(np.floor(cfg.target_fpr * len(benign)))
            lang = group.split(":")[0]
            per_lang[lang] = max(per_lang.get(lang, 0.0), float(benign[-k - 1]) + 1e-6)
    model.lang_thresholds = {k: min(0.99, v) for k, v in per_lang.items()}
    model.threshold = max(model.lang_thresholds.values(), default=0.5)
    meta = {
        "rows": len(texts),
        "fit_rows": len(fit),
        "valid_rows": len(valid),
        "attacks": int(sum(labels)),
        "config": cfg.__dict__,
        "threshold": model.threshold,
        "lang_thresholds": model.lang_thresholds,
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return model, meta


def _fit(
    texts: Sequence[str], labels: Sequence[int], cfg: TrainConfig, groups: Sequence[str]
) -> InjectionModel:
    y = np.asarray(labels, dtype=np.float32)
    rows = [features(t, cfg.orders, cfg.bits) for t in texts]
    lengths = np.array([len(r) for r in rows])
    cols = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    row_of = np.repeat(np.arange(len(rows)), lengths)
    vals = np.repeat(1 / np.sqrt(np.maximum(lengths, 1)), lengths).astype(np.float32)
    sample_w = _balanced_weights(labels, groups)
    dim = 1 << cfg.bits
    w = np.zeros(dim, dtype=np.float32)
    b = 0.0
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b = v_b = 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, cfg.epochs + 1):
        logits = np.bincount(row_of, weights=w[cols] * vals, minlength=len(rows)) + b
        probs = 1 / (1 + np.exp(-logits))
        resid = ((probs - y) * sample_w).astype(np.float32)
        grad_w = np.bincount(cols, weights=resid[row_of] * vals, minlength=dim).astype(np.float32)
        grad_w += cfg.l2 * w
        grad_b = float(resid.sum())
        m_w = beta1 * m_w + (1 - beta1) * grad_w
        v_w = beta2 * v_w + (1 - beta2) * grad_w * grad_w
        w -= cfg.lr * (m_w / (1 - beta1**step)) / (np.sqrt(v_w / (1 - beta2**step)) + eps)
        m_b = beta1 * m_b + (1 - beta1) * grad_b
        v_b = beta2 * v_b + (1 - beta2) * grad_b * grad_b
        b -= cfg.lr * (m_b / (1 - beta1**step)) / (np.sqrt(v_b / (1 - beta2**step)) + eps)
    return InjectionModel(w.astype(np.float32), float(b), cfg.orders, cfg.bits)


def _balanced_weights(labels: Sequence[int], groups: Sequence[str]) -> npt.NDArray[np.float32]:
    cells: dict[tuple[str, int], int] = {}
    for g, lab in zip(groups, labels, strict=True):
        cells[(g, lab)] = cells.get((g, lab), 0) + 1
    total = float(len(labels))
    weight = [total / (len(cells) * cells[(g, lab)]) for g, lab in zip(groups, labels, strict=True)]
    return np.asarray(weight, dtype=np.float32) / total
