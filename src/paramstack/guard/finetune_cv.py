"""Template-grouped CV of the fine-tuned classifier (round 6): A, F (fused logit), F1.

Per outer fold (``channel_cv.fold_of(row, folds)``, whole templates per fold): A's linear
model fits the fold's whole-prompt rows minus the inner template hold-out and sets its
thresholds there (:func:`channel_cv.fit_held_out`); the MiniLM classifier is fine-tuned on
the same rows plus the fold's task × document rows, minus the calibration templates; F's and
F1's thresholds are matched to A's group-mean benign FPR on the calibration rows (the inner
hold-out's benign rows plus the benign twins of the held task templates, at least one per
language). The dev latent side is judged by every fold's models and pooled.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.guard.channel_cv import fit_held_out, fold_of, inner_held, summarise
from paramstack.guard.context_stack import (
    FirstStage,
    StackedHead,
    first_stage,
    logit,
    match_thresholds,
)
from paramstack.guard.datasets import Prompt, train_group
from paramstack.guard.finetune import FinetuneConfig
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.model_cv import matched_recall

VARIANTS = ("A", "F", "F1")
Floats = np.ndarray[Any, np.dtype[np.float64]]
# (fit texts, labels, groups) -> a scorer of texts (fine-tuned logits); lets tests use a tiny BERT
Tune = Callable[[list[str], list[int], list[str]], Callable[[list[str]], Floats]]


@dataclass(frozen=True)
class FinetuneCvConfig:
    folds: int = 2
    epochs: int = 150
    target_fpr: float = 0.05
    tune: FinetuneConfig = field(default_factory=FinetuneConfig)


def held_tasks(channel: Sequence[Prompt]) -> set[str]:
    """Task templates whose twins calibrate: those in the inner hold-out, and per language the
    one with the lowest ``crc32("inner:" + key)`` when none of that language's is."""
    twins = [r for r in channel if r.label == 0]
    held = {r.fold_key for r in twins if inner_held(r)}
    for lang in sorted({r.lang for r in twins}):
        keys = {r.fold_key for r in twins if r.lang == lang}
        if not keys & held:
            held.add(min(keys, key=lambda k: zlib.crc32(f"inner:{k}".encode())))
    return held


def tunable(row: Prompt, tasks: set[str]) -> bool:
    """Whether the fine-tune may fit a task × document row: not if its task template
    calibrates (a held template's attacks carry the twins' task and document)."""
    return (row.frame or row.fold_key) not in tasks


def _heads() -> dict[str, StackedHead]:
    """Containers for F's and F1's matched thresholds (no weights: the scores are given)."""
    return {v: StackedHead(np.zeros(1, np.float32), 0.0, "finetuned", None) for v in ("F", "F1")}


def _sigmoid(z: Floats) -> Floats:
    return np.asarray(1 / (1 + np.exp(-np.clip(z, -50, 50))), dtype=np.float64)


def _scores(first: FirstStage, ft: Floats) -> dict[str, Floats]:
    return {"F": _sigmoid(first.logit + ft), "F1": _sigmoid(ft)}


def _judge(first: FirstStage, ft: Floats, heads: dict[str, StackedHead]) -> dict[str, Any]:
    """Flags per variant and each one's logit margin over its threshold (for ``matched``)."""
    flags: dict[str, Any] = {"A": first.flag}
    margins: dict[str, Any] = {"A": np.where(first.final, np.inf, first.margin)}
    for v, s in _scores(first, ft).items():
        head = heads[v]
        limits = np.array([head.lang_thresholds.get(g, head.threshold) for g in first.lang])
        flags[v] = first.final | (s >= limits)
        pairs = zip(s, limits, strict=True)
        margin = np.array([logit(float(a)) - logit(float(b)) for a, b in pairs])
        margins[v] = np.where(first.final, np.inf, margin)
    return {"flags": flags, "margins": margins}


def finetune_cv(
    rows: list[Prompt],
    channel: list[Prompt],
    dev: list[Prompt],
    tune: Tune,
    cfg: FinetuneCvConfig = FinetuneCvConfig(),
    partial: Path | None = None,
) -> dict[str, Any]:
    """Out-of-fold flags of ``rows + channel`` per variant; ``dev`` judged by each fold's
    models (pooled). ``partial``: a JSON file rewritten after every fold."""
    judged = rows + channel
    flags = {v: np.zeros(len(judged), dtype=bool) for v in VARIANTS}
    margins = {v: np.zeros(len(judged)) for v in VARIANTS}
    dev_flags: dict[str, list[bool]] = {v: [] for v in VARIANTS}
    folds_out: list[dict[str, Any]] = []
    for k in range(cfg.folds):
        t0, c0 = time.time(), time.process_time()
        fit_rows = [r for r in rows if fold_of(r, cfg.folds) != k]
        fit_channel = [r for r in channel if fold_of(r, cfg.folds) != k]
        stage1 = fit_held_out(fit_rows, cfg.epochs, cfg.target_fpr)
        tasks = held_tasks(fit_channel)
        tune_rows = [r for r in fit_rows if not inner_held(r)]
        tune_rows += [r for r in fit_channel if tunable(r, tasks)]
        _log(f"fold {k}: stage 1 fitted; fine-tuning on {len(tune_rows)} rows")
        score = tune(
            [r.text for r in tune_rows],
            [r.label for r in tune_rows],
            [train_group(r) for r in tune_rows],
        )
        calib = [r for r in fit_rows if inner_held(r) and r.label == 0]
        calib += [r for r in fit_channel if not tunable(r, tasks) and r.label == 0]
        detector = InjectionDetector(stage1)
        first = first_stage(detector, [r.text for r in calib])
        heads = _heads()
        groups = [train_group(r) for r in calib]
        targets = {}
        for v, s in _scores(first, score([r.text for r in calib])).items():
            targets[v] = match_thresholds(heads[v], first, s, groups)
        held = [i for i, r in enumerate(judged) if fold_of(r, cfg.folds) == k]
        texts = [judged[i].text for i in held]
        _log(f"fold {k}: calibrated on {len(calib)} rows; judging {len(held)} rows")
        out = _judge(first_stage(detector, texts), score(texts), heads)
        for v in VARIANTS:
            flags[v][held] = out["flags"][v]
            margins[v][held] = out["margins"][v]
        if dev:
            dev_out = _judge(
                first_stage(detector, [r.text for r in dev]), score([r.text for r in dev]), heads
            )
            for v in VARIANTS:
                dev_flags[v] += [bool(f) for f in dev_out["flags"][v]]
        folds_out.append(
            {
                "fold": k,
                "tune_rows": len(tune_rows),
                "calibration_rows": len(calib),
                "held_task_templates": sorted(tasks),
                "thresholds": {
                    "A": stage1.lang_thresholds,
                    **{v: h.lang_thresholds for v, h in heads.items()},
                },
                "matched_target": targets["F"],
                "wall_seconds": round(time.time() - t0),
                "cpu_seconds": round(time.process_time() - c0),
            }
        )
        if partial is not None:
            partial.write_text(json.dumps({"folds": folds_out}, indent=2))
    report: dict[str, Any] = {
        "cv": {v: summarise(judged, [bool(f) for f in flags[v]]) for v in VARIANTS},
        "folds": folds_out,
        # post-hoc diagnostic, not a selection rule: recall when one logit shift of each
        # variant's thresholds brings its out-of-fold group-mean benign FPR down to A's
        "matched": {
            v: matched_recall(judged, [float(m) for m in margins[v]], list(flags["A"]))
            for v in VARIANTS
        },
        "unrounded": {v: exact(judged, flags[v]) for v in VARIANTS},
    }
    if dev:
        pooled = dev + dev
        report["dev"] = {v: summarise(pooled, dev_flags[v]) for v in VARIANTS}
        report["dev_unrounded"] = {v: exact(pooled, np.array(dev_flags[v])) for v in VARIANTS}
    return report


def exact(rows: Sequence[Prompt], flags: Any) -> dict[str, dict[str, float]]:
    """Unrounded recall, FPR and group-mean benign FPR per language (the rule's reading)."""
    out: dict[str, dict[str, float]] = {}
    for lang in sorted({r.lang for r in rows}):
        pos = [bool(f) for r, f in zip(rows, flags, strict=True) if r.lang == lang and r.label == 1]
        cells: dict[str, list[bool]] = {}
        for r, f in zip(rows, flags, strict=True):
            if r.lang == lang and r.label == 0:
                cells.setdefault(train_group(r), []).append(bool(f))
        neg = [f for fs in cells.values() for f in fs]
        out[lang] = {
            "recall": sum(pos) / max(1, len(pos)),
            "fpr": sum(neg) / max(1, len(neg)),
            "fpr_group_mean": sum(sum(fs) / len(fs) for fs in cells.values()) / max(1, len(cells)),
        }
    return out


def _log(message: str) -> None:
    print(f"[cv-finetune {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
