"""Template-grouped CV of the stacked second stage (round 5): A, M1 (band), M2 (every input).

The folds of :mod:`channel_cv` (channels off, so A reproduces ``cv-channels``' "off" and
``cv-models``' A). Per outer fold: stage 1 fits the other folds minus the inner template
hold-out and sets its thresholds there (:func:`channel_cv.fit_held_out`); the head fits the
same rows with out-of-fold stage-1 logits (:func:`context_stack.oof_logits`); M1's and M2's
head thresholds are matched on the hold-out's benign rows plus the benign twins of hold-out
templates. Sentence vectors are computed once per row by the caller (frozen encoder).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.guard.channel_cv import fit_held_out, fold_of, inner_held, summarise
from paramstack.guard.context_stack import (
    FirstStage,
    StackedHead,
    asked,
    first_stage,
    fit_stacked,
    logit,
    match_thresholds,
    oof_logits,
    stacked_flags,
)
from paramstack.guard.context_stage import FloatMatrix
from paramstack.guard.datasets import Prompt, train_group
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.model_cv import matched_recall

VARIANTS = ("A", "M1", "M2")


@dataclass(frozen=True)
class StackCvConfig:
    folds: int = 4
    epochs: int = 150
    target_fpr: float = 0.05
    band: float = 2.0
    c: float = 4.0
    encoder: str = "use-m3"


@dataclass
class Stages:
    """A fitted fold: stage 1 and the two heads (M1 with the band, M2 without)."""

    model: InjectionModel
    m1: StackedHead
    m2: StackedHead
    targets: dict[str, float]


def fit_stages(
    rows: list[Prompt],
    vectors: FloatMatrix,
    twins: list[Prompt],
    twin_vectors: FloatMatrix,
    cfg: StackCvConfig,
) -> Stages:
    """Stage 1 and the heads on ``rows`` (``vectors`` in that order); thresholds matched on
    the inner hold-out's benign rows plus the benign ``twins`` of hold-out templates."""
    model = fit_held_out(rows, cfg.epochs, cfg.target_fpr)
    fit = [i for i, r in enumerate(rows) if not inner_held(r)]
    logits = oof_logits([rows[i] for i in fit], cfg.epochs, cfg.target_fpr)
    head = fit_stacked(
        logits,
        vectors[fit],
        [rows[i].label for i in fit],
        [train_group(rows[i]) for i in fit],
        cfg.c,
    )
    held = [i for i, r in enumerate(rows) if inner_held(r) and r.label == 0]
    held_twins = [i for i, r in enumerate(twins) if inner_held(r) and r.label == 0]
    calib = [rows[i] for i in held] + [twins[i] for i in held_twins]
    calib_vectors = np.vstack([vectors[held], twin_vectors[held_twins]])
    first = first_stage(InjectionDetector(model), [r.text for r in calib])
    scores = head.scores(first.logit, calib_vectors)
    groups = [train_group(r) for r in calib]
    heads = []
    for band in (cfg.band, None):
        h = StackedHead(head.weights, head.bias, cfg.encoder, band)
        targets = match_thresholds(h, first, scores, groups)
        heads.append(h)
    return Stages(model, heads[0], heads[1], targets)


def judge(stages: Stages, texts: list[str], vectors: FloatMatrix) -> dict[str, Any]:
    """Flags of A, M1, M2 on ``texts``, how many reached each head, and each variant's logit
    margin over its own threshold (for the post-hoc ``matched`` diagnostic)."""
    first: FirstStage = first_stage(InjectionDetector(stages.model), texts)
    scores = stages.m1.scores(first.logit, vectors)
    out: dict[str, Any] = {"A": first.flag, "asked": {}, "margins": {}}
    fixed = np.where(first.flag, np.inf, -np.inf)
    out["margins"]["A"] = np.where(first.final, np.inf, first.margin)
    for name, head in (("M1", stages.m1), ("M2", stages.m2)):
        out[name] = stacked_flags(first, head, scores)
        ask = asked(first, head.band)
        out["asked"][name] = int(ask.sum())
        limits = np.array([head.lang_thresholds.get(g, head.threshold) for g in first.lang])
        margin = np.array([logit(s) - logit(t) for s, t in zip(scores, limits, strict=True)])
        out["margins"][name] = np.where(ask, margin, fixed)
    return out


def stack_cv(
    rows: list[Prompt],
    channel: list[Prompt],
    dev: list[Prompt],
    vectors: FloatMatrix,
    cfg: StackCvConfig = StackCvConfig(),
    save_head: Path | None = None,
) -> dict[str, Any]:
    """Out-of-fold flags of ``rows + channel`` per variant, and the variants fitted on all
    ``rows`` (as in a fold) judged on ``dev``; ``vectors`` in the order rows, channel, dev.
    ``save_head``: where the all-rows M1 head goes (for ``bench/guard_context.py``)."""
    judged = rows + channel
    if len(vectors) != len(judged) + len(dev):
        raise ValueError(f"{len(vectors)} vectors for {len(judged) + len(dev)} rows")
    row_vec, twin_vec = vectors[: len(rows)], vectors[len(rows) : len(judged)]
    flags = {v: np.zeros(len(judged), dtype=bool) for v in VARIANTS}
    margins = {v: np.zeros(len(judged)) for v in VARIANTS}
    reached = {"M1": 0, "M2": 0}
    started = time.process_time()
    for k in range(cfg.folds):
        fit = [i for i, r in enumerate(rows) if fold_of(r, cfg.folds) != k]
        fit_twins = [i for i, r in enumerate(channel) if fold_of(r, cfg.folds) != k]
        stages = fit_stages(
            [rows[i] for i in fit],
            row_vec[fit],
            [channel[i] for i in fit_twins],
            twin_vec[fit_twins],
            cfg,
        )
        held = [i for i, r in enumerate(judged) if fold_of(r, cfg.folds) == k]
        out = judge(stages, [judged[i].text for i in held], vectors[held])
        for v in VARIANTS:
            flags[v][held] = out[v]
            margins[v][held] = out["margins"][v]
        for v in reached:
            reached[v] += out["asked"][v]
    report: dict[str, Any] = {
        "cv": {v: summarise(judged, [bool(f) for f in flags[v]]) for v in VARIANTS},
        "cv_share_reaching_head": {v: round(n / len(judged), 3) for v, n in reached.items()},
        "cpu_seconds": round(time.process_time() - started, 1),
        # post-hoc diagnostic, not a selection rule: recall when one logit shift of each
        # variant's thresholds brings its out-of-fold group-mean benign FPR down to A's
        "matched": {
            v: matched_recall(judged, [float(m) for m in margins[v]], list(flags["A"]))
            for v in VARIANTS
        },
    }
    if dev:
        stages = fit_stages(rows, row_vec, channel, twin_vec, cfg)
        if save_head is not None:
            stages.m1.save(save_head)
        out = judge(stages, [r.text for r in dev], vectors[len(judged) :])
        report["dev"] = {v: summarise(dev, [bool(f) for f in out[v]]) for v in VARIANTS}
        report["dev_share_reaching_head"] = {
            v: round(n / len(dev), 3) for v, n in out["asked"].items()
        }
        report["dev_thresholds"] = {
            "stage1": stages.model.lang_thresholds,
            "M1": stages.m1.lang_thresholds,
            "M2": stages.m2.lang_thresholds,
            "matched_target": stages.targets,
            "head_logit_weight": float(stages.m1.weights[0]),
        }
    return report
