"""Template-grouped cross-validation of the whole injection detector, channel split on vs off.

The held-out sets may be looked at once per session, so whether the channel-aware mode
becomes the default is decided on training data: each fold's rows (kept together by their
template, :attr:`Prompt.fold_key`) are judged by a detector whose two classifiers were fitted
on the other folds — patterns, decoding layer and both classifiers, exactly as in serving,
once with ``channels`` off and once on. Each fold's models set their thresholds on an inner
hold-out grouped by template, like ``train``'s folds. Rows judged: the whole-prompt training rows
and the task × document family (which only the document model trains on).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from paramstack.guard.datasets import Prompt, train_group
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_data import document_rows
from paramstack.guard.injection_model import InjectionModel, TrainConfig, train
from paramstack.guard.thresholds import thresholds as _thresholds


@dataclass(frozen=True)
class CvConfig:
    folds: int = 4
    epochs: int = 150
    target_fpr: float = 0.05
    data_target_fpr: float = 0.03


def fold_of(row: Prompt, folds: int) -> int:
    """The outer CV fold of ``row``: the rule ``train`` uses, whole templates per fold."""
    return zlib.crc32(row.fold_key.encode()) % folds


def inner_held(row: Prompt) -> bool:
    """Whether ``row`` is in the inner template hold-out that sets a fold model's thresholds."""
    return zlib.crc32(f"inner:{row.fold_key}".encode()) % 4 == 0


def fit_held_out(rows: list[Prompt], epochs: int, fpr: float) -> InjectionModel:
    """Fitted on ``rows`` minus the inner template hold-out; the thresholds come from the
    hold-out's benign rows. A random hold-out (``train`` without folds) shares templates with
    the fit, scores them overconfidently and sets the thresholds too low: a first CV run
    that way flagged 26 % of clean passages in task frames (the trained model's own
    template-grouped figure: 1.8 %)."""
    held = [inner_held(r) for r in rows]
    fit = [r for r, h in zip(rows, held, strict=True) if not h]
    model, _ = train(
        [r.text for r in fit],
        [r.label for r in fit],
        TrainConfig(epochs=epochs, target_fpr=fpr, valid_fraction=0.0),
        [train_group(r) for r in fit],
    )
    benign = [r for r, h in zip(rows, held, strict=True) if h and r.label == 0]
    scores = [model.score(r.text) for r in benign]
    model.lang_thresholds = _thresholds(scores, [train_group(r) for r in benign], fpr)
    model.threshold = max(model.lang_thresholds.values(), default=0.5)
    return model


def detector_cv(
    rows: list[Prompt],
    channel: list[Prompt],
    reference: list[Prompt],
    cfg: CvConfig = CvConfig(),
) -> dict[str, Any]:
    """Out-of-fold flags of every row of ``rows + channel`` with channels off and on; the
    document model trains on ``document_rows`` of the fold's rows plus its ``reference``
    passages. Returns :func:`summarise` per mode."""
    judged = rows + channel

    def fold(row: Prompt) -> int:
        return fold_of(row, cfg.folds)

    flags: dict[str, list[bool]] = {"off": [False] * len(judged), "on": [False] * len(judged)}
    for k in range(cfg.folds):
        fit_rows = [r for r in rows if fold(r) != k]
        fit_channel = [r for r in channel if fold(r) != k]
        fit_ref = [r for r in reference if fold(r) != k]
        whole = fit_held_out(fit_rows, cfg.epochs, cfg.target_fpr)
        docs = document_rows(fit_rows + fit_channel, reference=fit_ref)
        data_model = fit_held_out(docs, cfg.epochs, cfg.data_target_fpr)
        held = [i for i, r in enumerate(judged) if fold(r) == k]
        for mode in ("off", "on"):
            detector = InjectionDetector(whole, None, data_model, channels=mode == "on")
            for i in held:
                flags[mode][i] = detector.detect(judged[i].text) is not None
    return {mode: summarise(judged, f) for mode, f in flags.items()}


def summarise(rows: list[Prompt], flags: list[bool]) -> dict[str, Any]:
    """Per language: recall, benign FPR, benign FPR averaged over training groups (what the
    thresholds target), and the flagged share per (group, label)."""
    out: dict[str, Any] = {}
    for lang in sorted({r.lang for r in rows}):
        cells: dict[tuple[str, int], list[bool]] = {}
        sources: dict[tuple[str, int], list[bool]] = {}
        for row, flag in zip(rows, flags, strict=True):
            if row.lang == lang:
                cells.setdefault((train_group(row), row.label), []).append(flag)
                sources.setdefault((row.source, row.label), []).append(flag)
        pos = [f for (_, y), fs in cells.items() if y == 1 for f in fs]
        neg = [f for (_, y), fs in cells.items() if y == 0 for f in fs]
        benign_groups = [sum(fs) / len(fs) for (_, y), fs in cells.items() if y == 0]
        out[lang] = {
            "recall": round(sum(pos) / max(1, len(pos)), 3),
            "fpr": round(sum(neg) / max(1, len(neg)), 3),
            "fpr_group_mean": round(sum(benign_groups) / max(1, len(benign_groups)), 3),
            "attacks": len(pos),
            "benign": len(neg),
            "flagged": _shares(cells),
            "flagged_by_source": _shares(sources),
        }
    return out


def _shares(cells: dict[tuple[str, int], list[bool]]) -> dict[str, list[float]]:
    """``{"<key>:attack|benign": [flagged share, rows]}``."""
    return {
        f"{g}:{'attack' if y else 'benign'}": [round(sum(fs) / len(fs), 3), len(fs)]
        for (g, y), fs in sorted(cells.items())
    }
