"""A tiny prompt-injection classifier: hashed character n-grams + logistic regression in numpy.

Why not scikit-learn: the gateway must start without the training stack, and scoring a 1 kB
prompt has to cost microseconds. Features are computed vectorised (a rolling multiply-shift
hash over the code points of the de-obfuscated text, n = 2..5), so scoring is a handful of
numpy calls, about 50 µs per kB. Training is full-batch Adam on the same sparse features
(``np.bincount`` gradients), seconds on two cores for a few thousand prompts.

The optional toxicity classifier (``guard train-toxicity``) is the same model type trained on
other labels, so both share one feature pass per text.

The model file is an ``.npz`` (weights, bias, n-gram orders, hash bits, calibrated threshold)
with a ``.meta.json`` beside it (data counts, metrics, timings) — no pickle, so loading a
model file cannot run code.
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.guard.injection_report import by_group, validation
from paramstack.guard.textnorm import deobfuscate, guess_lang
from paramstack.guard.thresholds import matched_thresholds
from paramstack.guard.thresholds import thresholds as _thresholds

_MULT = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(1099511628211)
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def features(
    text: str,
    orders: Sequence[int],
    bits: int,
    word_orders: Sequence[int] = (),
    *,
    norm: str | None = None,
) -> IntArray:
    """Hashed n-gram ids (with repeats: term frequency) of the de-obfuscated, padded text.

    ``word_orders`` adds word n-grams (1 = words, 2 = word pairs) to the character ones: a
    pair like "previous instructions" is one feature instead of a dozen overlapping 5-grams.
    ``norm``: ``deobfuscate(text)`` when the caller has it already (it costs as much as the
    hashing).
    """
    norm = f" {deobfuscate(text) if norm is None else norm} "
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    shift = np.uint64(64 - bits)
    ids: list[npt.NDArray[np.uint64]] = []
    if word_orders:
        ids += _word_ids(norm, word_orders, shift)
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


_WORD = re.compile(r"\w+")


def _word_ids(norm: str, orders: Sequence[int], shift: np.uint64) -> list[npt.NDArray[np.uint64]]:
    """Hashed word n-grams: CRC-32 per word (stable across processes, unlike ``hash``),
    pairs combined with the same multiply-shift as the character n-grams."""
    words = np.fromiter(
        (zlib.crc32(w.encode("utf-8")) for w in _WORD.findall(norm)), dtype=np.uint64
    )
    out = []
    rolling = words
    with np.errstate(over="ignore"):
        for n in range(1, max(orders) + 1):
            if n > 1:
                if len(words) < n:
                    break
                rolling = rolling[:-1] * _STEP + words[n - 1 :]
            if n in orders:
                out.append(((rolling + np.uint64(100 + n)) * _MULT) >> shift)
    return out


@dataclass
class InjectionModel:
    """Weights plus the settings they were trained with; ``score`` returns P(injection)."""

    weights: FloatArray
    bias: float
    orders: tuple[int, ...] = (2, 3, 4, 5)
    bits: int = 18
    threshold: float = 0.5
    lang_thresholds: dict[str, float] = field(default_factory=dict)
    word_orders: tuple[int, ...] = ()
    windows: int = 0  # > 0: also score windows of this many sentences (injection_windows)

    def threshold_for(self, text: str) -> float:
        """The calibrated threshold of the text's language (``guess_lang``), else the global one.

        One global threshold is the strictest language's: English benign prompts look more
        like attacks than Turkish ones do, so a shared threshold cost Turkish recall.
        """
        return self.lang_thresholds.get(guess_lang(text), self.threshold)

    def score(self, text: str, norm: str | None = None) -> float:
        if self.windows:
            from paramstack.guard.injection_windows import window_score

            return window_score(self, text, norm)
        return self.score_ids(features(text, self.orders, self.bits, self.word_orders, norm=norm))

    def id_rows(self, idx: IntArray) -> FloatArray:
        """Per-id contributions, one row per id (summed over a text or a window)."""
        return self.weights[idx][:, None]

    def logits(self, bags: FloatArray) -> FloatArray:
        """Logits of summed, length-normalised :meth:`id_rows` (one bag per row)."""
        return bags[:, 0] + np.float32(self.bias)

    def score_ids(self, idx: IntArray) -> float:
        """P(injection) from precomputed :func:`features` ids (training scores many folds)."""
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
                word_orders=np.array(self.word_orders, dtype=np.int64),
                bits=np.int64(self.bits),
                threshold=np.float64(self.threshold),
                lang_names=np.array(sorted(self.lang_thresholds), dtype="U8"),
                lang_values=np.array(
                    [self.lang_thresholds[k] for k in sorted(self.lang_thresholds)],
                    dtype=np.float64,
                ),
                windows=np.int64(self.windows),
            )
        if meta is not None:
            path.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, path: Path) -> InjectionModel:
        """Either kind of model file (``kind`` = "deep": :mod:`injection_deep`); files from
        before word n-grams or windows load with those off."""
        with np.load(path, allow_pickle=False) as data:
            if "kind" in data.files and str(data["kind"]) == "deep":
                from paramstack.guard.injection_deep import DeepInjectionModel

                return DeepInjectionModel.from_arrays(data)
            return InjectionModel(
                weights=data["weights"].astype(np.float32),
                bias=float(data["bias"]),
                orders=tuple(int(x) for x in data["orders"]),
                word_orders=tuple(int(x) for x in data.get("word_orders", [])),
                bits=int(data["bits"]),
                threshold=float(data["threshold"]),
                lang_thresholds={
                    str(k): float(v)
                    for k, v in zip(
                        data.get("lang_names", []), data.get("lang_values", []), strict=True
                    )
                },
                windows=int(data["windows"]) if "windows" in data.files else 0,
            )


# Weak values: a model lives while some guard uses it (tenant overrides come and go).
_SHARED: weakref.WeakValueDictionary[tuple[str, int, int], InjectionModel] = (
    weakref.WeakValueDictionary()
)
_SHARED_LOCK = threading.Lock()


def load_shared(path: Path) -> InjectionModel:
    """One loaded model per model file (path, mtime, size) for the whole process.

    Every tenant override builds its own guard; without this each one held its own copy of
    the weights (1 MiB at 18 bits) and paid the load again. Models are only read after
    loading, so sharing is safe; a retrained file (new mtime or size) loads afresh.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:  # new, retrained (new mtime or size), or released by its last guard
            found = _SHARED[key] = InjectionModel.load(path)
        return found


@dataclass(frozen=True)
class TrainConfig:
    orders: tuple[int, ...] = (2, 3, 4, 5)
    bits: int = 18
    word_orders: tuple[int, ...] = (1, 2)
    epochs: int = 150
    lr: float = 0.05
    l2: float = 1e-5
    target_fpr: float = 0.03
    valid_fraction: float = 0.25
    folds: int = 0
    seed: int = 0
    kind: str = "linear"  # "deep": the wide-and-deep model of injection_deep
    windows: int = 0  # sentences per scored window (0: the whole text only)
    window_rows: int = 0  # per long benign row, fit this many of its windows as benign rows


def train(
    texts: Sequence[str],
    labels: Sequence[int],
    cfg: TrainConfig,
    groups: Sequence[str] = (),
    fold_keys: Sequence[str] = (),
    twins: Sequence[tuple[str, str, str]] = (),
) -> tuple[InjectionModel, dict[str, Any]]:
    """Fit the model; each (group, label) cell gets equal total weight.

    ``groups`` (e.g. the language) keeps a big English attack set from drowning a small
    Turkish benign one, the imbalance behind DATA.md's "Turkish = attack" failure. Thresholds
    come from scores of rows the scoring model did not fit (training scores are
    overconfident): with ``folds >= 2`` every row gets an out-of-fold score and the final
    model then fits all rows (a 25 % hold-out cost a quarter of the ~100 Turkish attacks and
    left 8-row benign groups to set the threshold); otherwise the held-back
    ``valid_fraction`` is scored. The benign rows' false-positive rate, averaged over groups,
    stays at most ``target_fpr``, per language when groups are named ``<lang>:<family>``
    (:func:`datasets.train_group`). ``fold_keys`` keeps rows generated from one template in
    one fold: otherwise their out-of-fold scores come from a model that saw the template, and
    the thresholds come out too low for new wording.
    With ``cfg.windows`` the thresholds are *matched* (:func:`thresholds.matched_thresholds`):
    set at ``target_fpr`` on the whole-text scores, then the window scores get the thresholds
    that keep the benign rows plus ``twins`` — benign (text, group, fold key) rows scored
    out-of-fold, never fitted (the task × document twins) — at the whole text's group-mean FPR.
    """
    started = time.perf_counter()
    groups = list(groups) or ["all"] * len(texts)
    n_rows = len(texts)  # rows past n_rows are benign windows: fitted, never scored
    if cfg.window_rows:
        from paramstack.guard.injection_windows import benign_windows

        texts, labels, groups, fold_keys = benign_windows(
            texts, labels, groups, fold_keys, cfg.windows or 3, cfg.window_rows
        )
    feats = [features(t, cfg.orders, cfg.bits, cfg.word_orders) for t in texts]
    order = np.random.default_rng(cfg.seed).permutation(len(texts))
    scores = np.zeros(len(texts))
    whole = np.zeros(len(texts))  # whole-text scores when windows are on (matched thresholds)
    twin_fold = [zlib.crc32(key.encode()) % max(1, cfg.folds) for _, _, key in twins]
    twin_scores = np.zeros((len(twins), 2))  # whole text, windows
    if cfg.windows:
        from paramstack.guard.injection_windows import score_twins as _score_twins
    if cfg.folds >= 2 and cfg.valid_fraction > 0:
        fit = order
        valid = order[order < n_rows]
        fold_of = np.zeros(len(texts), dtype=np.int64)
        fold_of[order] = np.arange(len(texts)) % cfg.folds
        if fold_keys:  # rows sharing a key (a template) share a fold
            fold_of = np.array([zlib.crc32(k.encode()) % cfg.folds for k in fold_keys])
        for k in range(cfg.folds):
            held = np.flatnonzero(fold_of == k)
            part = _fit_rows(np.setdiff1d(order, held), feats, labels, groups, cfg)
            held = held[held < n_rows]
            scores[held] = [_score_row(part, texts[int(i)], feats[i]) for i in held]
            if cfg.windows:
                whole[held] = [part.score_ids(feats[i]) for i in held]
                _score_twins(
                    part, twins, [j for j, f in enumerate(twin_fold) if f == k], twin_scores
                )
    else:
        n_valid = int(n_rows * cfg.valid_fraction)
        valid, fit = order[:n_valid], order[n_valid:]
        valid = valid[valid < n_rows]
    model = _fit_rows(fit, feats, labels, groups, cfg)
    if not (cfg.folds >= 2 and cfg.valid_fraction > 0):
        scores[valid] = [_score_row(model, texts[int(i)], feats[i]) for i in valid]
        if cfg.windows:
            whole[valid] = [model.score_ids(feats[i]) for i in valid]
            _score_twins(model, twins, range(len(twins)), twin_scores)
    benign = [i for i in valid if labels[i] == 0]
    benign_groups = [groups[i] for i in benign]
    model.lang_thresholds = _thresholds(
        [float((whole if cfg.windows else scores)[i]) for i in benign],
        benign_groups,
        cfg.target_fpr,
    )
    matched: dict[str, float] = {}
    if cfg.windows:
        model.lang_thresholds, matched = matched_thresholds(
            [float(whole[i]) for i in benign] + twin_scores[:, 0].tolist(),
            [float(scores[i]) for i in benign] + twin_scores[:, 1].tolist(),
            benign_groups + [group for _, group, _ in twins],
            model.lang_thresholds,
        )
    model.threshold = max(model.lang_thresholds.values(), default=0.5)
    meta = {
        "validation": validation(model, [(texts[i], scores[i], labels[i]) for i in valid]),
        "validation_by_group": by_group(
            model, [(texts[i], scores[i], labels[i], groups[i]) for i in valid]
        ),
        "rows": len(texts),
        "fit_rows": len(fit),
        "valid_rows": len(valid),
        "attacks": int(sum(labels)),
        "config": cfg.__dict__,
        "threshold": model.threshold,
        "lang_thresholds": model.lang_thresholds,
        "window_calibration": {"matched_fpr": matched, "twin_rows": len(twins)},
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return model, meta


def _score_row(model: InjectionModel, text: str, ids: IntArray) -> float:
    return model.score(text) if model.windows else model.score_ids(ids)


def _fit_rows(
    rows: IntArray,
    feats: list[IntArray],
    labels: Sequence[int],
    groups: Sequence[str],
    cfg: TrainConfig,
) -> InjectionModel:
    args = ([feats[i] for i in rows], [labels[i] for i in rows], cfg, [groups[i] for i in rows])
    if cfg.kind == "deep":
        from paramstack.guard.injection_deep import fit_deep

        model: InjectionModel = fit_deep(*args)
    else:
        model = _fit(*args)
    model.windows = cfg.windows
    return model


def _fit(
    rows: list[IntArray], labels: Sequence[int], cfg: TrainConfig, groups: Sequence[str]
) -> InjectionModel:
    y = np.asarray(labels, dtype=np.float32)
    lengths = np.array([len(r) for r in rows])
    cols = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    row_of = np.repeat(np.arange(len(rows)), lengths)
    vals = np.repeat(1 / np.sqrt(np.maximum(lengths, 1)), lengths).astype(np.float32)
    sample_w = balanced_weights(labels, groups)
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
    return InjectionModel(
        w.astype(np.float32), float(b), cfg.orders, cfg.bits, word_orders=cfg.word_orders
    )


def balanced_weights(labels: Sequence[int], groups: Sequence[str]) -> npt.NDArray[np.float32]:
    """Row weights summing to 1 that give every (group, label) cell the same total: a family
    of a few hundred generated rows must not outweigh a hand-written set of twenty."""
    cells: dict[tuple[str, int], int] = {}
    for g, lab in zip(groups, labels, strict=True):
        cells[(g, lab)] = cells.get((g, lab), 0) + 1
    total = float(len(labels))
    weight = [total / (len(cells) * cells[(g, lab)]) for g, lab in zip(groups, labels, strict=True)]
    return np.asarray(weight, dtype=np.float32) / total
