"""Template-grouped CV of the injection detector with and without the contextual second stage.

Decides the default of the second stage on training data (the held-out sets are looked at
once per session): the folds of :mod:`channel_cv` (by :attr:`Prompt.fold_key`); per fold the
whole-prompt n-gram model and the head fit on the other folds' rows minus an inner template
hold-out, on which the n-gram thresholds and the head's thresholds (rows in the band only)
are set. Sentence vectors are computed once for every row: the encoder is frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paramstack.guard.channel_cv import fit_held_out, fold_of, inner_held, summarise
from paramstack.guard.context_stage import (
    ContextHead,
    ContextualDetector,
    FloatMatrix,
    cached_encoder,
    fit_head,
    in_band,
)
from paramstack.guard.datasets import Prompt, train_group
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.thresholds import thresholds as _thresholds


@dataclass(frozen=True)
class ContextCvConfig:
    folds: int = 4
    epochs: int = 150
    target_fpr: float = 0.05
    band: float = 2.0
    rescue_only: bool = False


def fit_stages(
    rows: list[Prompt], vectors: FloatMatrix, cfg: ContextCvConfig
) -> tuple[InjectionModel, ContextHead]:
    """Both stages on ``rows`` minus the inner template hold-out; thresholds on the hold-out
    (the head's from the held-out rows whose stage-1 score lies in the band)."""
    model = fit_held_out(rows, cfg.epochs, cfg.target_fpr)
    held = [inner_held(r) for r in rows]
    fit = [i for i, h in enumerate(held) if not h]
    out = [i for i, h in enumerate(held) if h]
    head = fit_head(vectors[fit], [rows[i].label for i in fit], [train_group(rows[i]) for i in fit])
    head.band = cfg.band
    set_head_thresholds(head, model, [rows[i] for i in out], vectors[out], cfg.target_fpr)
    return model, head


def set_head_thresholds(
    head: ContextHead,
    model: InjectionModel,
    rows: Sequence[Prompt],
    vectors: FloatMatrix,
    target_fpr: float,
) -> None:
    """Per language, the head threshold whose group-mean benign FPR on the rows that reach
    stage 2 (held out from both stages' fit) is at most ``target_fpr``."""
    reach = [
        i
        for i, r in enumerate(rows)
        if r.label == 0 and in_band(model.score(r.text), model.threshold_for(r.text), head.band)
    ]
    scores = head.scores(vectors[reach]) if reach else np.zeros(0)
    head.lang_thresholds = _thresholds(
        [float(s) for s in scores], [train_group(rows[i]) for i in reach], target_fpr
    )
    head.threshold = max(head.lang_thresholds.values(), default=0.5)


def context_cv(
    rows: list[Prompt],
    channel: list[Prompt],
    vectors: FloatMatrix,
    cfg: ContextCvConfig = ContextCvConfig(),
) -> dict[str, Any]:
    """Out-of-fold flags of ``rows + channel`` (``vectors`` in that order) by stage 1 alone
    ("off") and with the second stage ("on"); the share of rows that reached stage 2."""
    judged = rows + channel
    if len(vectors) != len(judged):
        raise ValueError(f"{len(vectors)} vectors for {len(judged)} rows")

    def fold(row: Prompt) -> int:
        return fold_of(row, cfg.folds)

    flags: dict[str, list[bool]] = {"off": [False] * len(judged), "on": [False] * len(judged)}
    asked = 0
    for k in range(cfg.folds):
        fit_idx = [i for i, r in enumerate(rows) if fold(r) != k]
        model, head = fit_stages([rows[i] for i in fit_idx], vectors[fit_idx], cfg)
        first = InjectionDetector(model)
        held = [i for i, r in enumerate(judged) if fold(r) == k]
        lookup = {judged[i].text: vectors[i] for i in held}
        second = ContextualDetector(
            first, head, cached_encoder(lookup), rescue_only=cfg.rescue_only
        )
        for i in held:
            flags["off"][i] = first.detect(judged[i].text) is not None
            flags["on"][i] = second.detect(judged[i].text) is not None
        asked += second.asked
    report: dict[str, Any] = {mode: summarise(judged, f) for mode, f in flags.items()}
    report["stage2_share"] = round(asked / max(1, len(judged)), 3)
    return report
