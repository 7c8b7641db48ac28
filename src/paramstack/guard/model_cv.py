"""Template-grouped CV of the injection detector across model kinds and window scoring.

Chooses the whole-prompt classifier (linear or wide-and-deep, with or without sentence
windows) on training data only: the folds of :mod:`channel_cv` (by :attr:`Prompt.fold_key`),
channels off as in the default policy, patterns and decoding layer included. Per fold each
kind is fitted once on the other folds minus the inner template hold-out; each window setting
gets its own thresholds from the hold-out's benign rows, scored the way it will serve
(``byfold``: plus the task x document twins, each scored by its own outer fold's model, so
every language's twin templates reach the calibration — round 4).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from paramstack.guard.channel_cv import fold_of, inner_held, summarise
from paramstack.guard.datasets import Prompt, train_group
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel, TrainConfig, train
from paramstack.guard.thresholds import group_mean_fpr, lang_of, matched_thresholds
from paramstack.guard.thresholds import thresholds as _thresholds

# a calibration row scored out of fold: (whole-text score minus its model's whole-text
# threshold, windowed score, group)
Calib = tuple[float, float, str]


@dataclass(frozen=True)
class ModelCvConfig:
    folds: int = 4
    epochs: int = 150
    target_fpr: float = 0.05
    kinds: tuple[str, ...] = ("linear", "deep")
    windows: tuple[int, ...] = (0, 3)
    window_rows: int = 3  # for a kind named "<kind>:aug" (benign windows fitted as rows)
    # "holdout": window thresholds at target_fpr on the hold-out's whole-prompt rows;
    # "matched": at the whole-text scoring's group-mean FPR, twins included (thresholds.py);
    # "byfold": as matched, every twin scored by its own outer fold's model (fold_twins)
    calibrations: tuple[str, ...] = ("holdout",)


def variant_name(kind: str, windows: int, calibration: str = "holdout") -> str:
    if not windows:
        return kind
    return f"{kind}+w{windows}" + ("" if calibration == "holdout" else f":{calibration}")


def settings(cfg: ModelCvConfig) -> list[tuple[int, str]]:
    """(window width, calibration) pairs; matching only means something with windows on."""
    return [(w, c) for w in cfg.windows for c in cfg.calibrations if w or c == "holdout"]


def fit_kind(rows: list[Prompt], kind: str, cfg: ModelCvConfig) -> tuple[InjectionModel, float]:
    """``kind`` fitted on ``rows`` minus the inner template hold-out; its CPU seconds."""
    fit = [r for r in rows if not inner_held(r)]
    started = time.process_time()
    base, _, extra = kind.partition(":")  # "linear:aug": fitted on benign windows as well
    model, _ = train(
        [r.text for r in fit],
        [r.label for r in fit],
        TrainConfig(
            epochs=cfg.epochs,
            target_fpr=cfg.target_fpr,
            valid_fraction=0.0,
            kind=base,
            window_rows=cfg.window_rows if extra == "aug" else 0,
        ),
        [train_group(r) for r in fit],
        [r.fold_key for r in fit],
    )
    return model, time.process_time() - started


def set_thresholds(
    model: InjectionModel,
    rows: list[Prompt],
    windows: int,
    fpr: float,
    twins: list[Prompt] | None = None,
) -> None:
    """Window setting ``windows`` and per-language thresholds from the inner hold-out's benign
    rows, scored that way (a max over windows scores benign text higher than the whole).

    With ``twins`` (task × document rows of the fit folds) the thresholds are *matched*: the
    whole-text thresholds are set as above, then the window thresholds bring the hold-out's
    benign rows plus its benign twins to the group-mean FPR the whole-text scoring reaches."""
    benign = [r for r in rows if inner_held(r) and r.label == 0]
    groups = [train_group(r) for r in benign]
    model.windows = windows if twins is None else 0
    model.lang_thresholds = _thresholds([model.score(r.text) for r in benign], groups, fpr)
    if twins is not None:
        calib = benign + [r for r in twins if inner_held(r) and r.label == 0]
        whole = [model.score(r.text) for r in calib]
        model.windows = windows
        model.lang_thresholds, _ = matched_thresholds(
            whole,
            [model.score(r.text) for r in calib],
            [train_group(r) for r in calib],
            model.lang_thresholds,
        )
    model.threshold = max(model.lang_thresholds.values(), default=0.5)


def fold_twins(
    model: InjectionModel, fit_rows: list[Prompt], twins: list[Prompt], windows: int, fpr: float
) -> list[Calib]:
    """Benign ``twins`` (of the templates ``model`` never fitted) scored by ``model`` for the
    ``byfold`` calibration, whole text against its own whole-text thresholds."""
    set_thresholds(model, fit_rows, 0, fpr)
    return _calib(model, [r for r in twins if r.label == 0], windows)


def _calib(model: InjectionModel, rows: list[Prompt], windows: int) -> list[Calib]:
    base = dict(model.lang_thresholds)
    out: list[Calib] = []
    for r in rows:
        group = train_group(r)
        model.windows = 0
        margin = model.score(r.text) - base.get(lang_of(group), model.threshold)
        model.windows = windows
        out.append((margin, model.score(r.text), group))
    model.windows = 0
    return out


def set_byfold(
    model: InjectionModel, fit_rows: list[Prompt], windows: int, fpr: float, twins: list[Calib]
) -> None:
    """F2: whole-text thresholds from the inner hold-out (as A); window thresholds matched on
    the hold-out's benign rows plus ``twins`` scored out of fold by their folds' models, each
    flagged by its own model's whole-text thresholds for the target FPR."""
    set_thresholds(model, fit_rows, 0, fpr)
    held = [r for r in fit_rows if inner_held(r) and r.label == 0]
    calib = _calib(model, held, windows) + twins
    groups = [g for _, _, g in calib]
    target = group_mean_fpr(
        [m for m, _, _ in calib], groups, {g: 0.0 for g in map(lang_of, groups)}
    )
    model.windows = windows
    model.lang_thresholds = _thresholds([w for _, w, _ in calib], groups, target)
    model.threshold = max(model.lang_thresholds.values(), default=0.5)


def _set(
    model: InjectionModel,
    rows: list[Prompt],
    channel: list[Prompt],
    setting: tuple[int, str],
    cfg: ModelCvConfig,
    twins: list[Calib],
) -> None:
    windows, cal = setting
    if cal == "byfold":
        set_byfold(model, rows, windows, cfg.target_fpr, twins)
    else:
        set_thresholds(model, rows, windows, cfg.target_fpr, channel if cal == "matched" else None)


def model_cv(
    rows: list[Prompt], channel: list[Prompt], dev: list[Prompt], cfg: ModelCvConfig
) -> dict[str, Any]:
    """Out-of-fold flags of ``rows + channel`` per variant (:func:`variant_name`), and each
    variant fitted on all ``rows`` (minus the inner hold-out) judged on ``dev``."""
    judged = rows + channel
    variants = [variant_name(k, w, c) for k in cfg.kinds for w, c in settings(cfg)]
    flags = {v: [False] * len(judged) for v in variants}
    margins = {v: [0.0] * len(judged) for v in variants}
    seconds = {k: 0.0 for k in cfg.kinds}
    fits: dict[tuple[int, str], InjectionModel] = {}
    # byfold twins per (fold, kind, width): scored by the model that never fitted their fold
    by_fold: dict[tuple[int, str, int], list[Calib]] = {}
    widths = sorted({w for w, c in settings(cfg) if c == "byfold"})
    for k in range(cfg.folds):
        fit_rows = [r for r in rows if fold_of(r, cfg.folds) != k]
        for kind in cfg.kinds:
            fits[k, kind], spent = fit_kind(fit_rows, kind, cfg)
            seconds[kind] += spent
            own = [r for r in channel if fold_of(r, cfg.folds) == k]
            for w in widths:
                by_fold[k, kind, w] = fold_twins(fits[k, kind], fit_rows, own, w, cfg.target_fpr)
    for k in range(cfg.folds):
        fit_rows = [r for r in rows if fold_of(r, cfg.folds) != k]
        fit_twins = [r for r in channel if fold_of(r, cfg.folds) != k]
        held = [i for i, r in enumerate(judged) if fold_of(r, cfg.folds) == k]
        for kind in cfg.kinds:
            model = fits[k, kind]
            for setting in settings(cfg):
                others = [
                    c
                    for j in range(cfg.folds)
                    if j != k
                    for c in by_fold.get((j, kind, setting[0]), [])
                ]
                _set(model, fit_rows, fit_twins, setting, cfg, others)
                detector = InjectionDetector(model)
                name = variant_name(kind, *setting)
                for i in held:
                    flags[name][i], margins[name][i] = _judge(detector, model, judged[i].text)
    report: dict[str, Any] = {
        "cv": {v: summarise(judged, f) for v, f in flags.items()},
        "fit_cpu_seconds": {k: round(s / cfg.folds, 1) for k, s in seconds.items()},
        "matched": {v: matched_recall(judged, margins[v], flags[variants[0]]) for v in variants},
    }
    if dev:
        report["dev"] = {}
        for kind in cfg.kinds:
            model, _ = fit_kind(rows, kind, cfg)
            for setting in settings(cfg):
                every = [
                    c for j in range(cfg.folds) for c in by_fold.get((j, kind, setting[0]), [])
                ]
                _set(model, rows, channel, setting, cfg, every)
                detector = InjectionDetector(model)
                report["dev"][variant_name(kind, *setting)] = summarise(
                    dev, [detector.detect(r.text) is not None for r in dev]
                )
    return report


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _judge(detector: InjectionDetector, model: InjectionModel, text: str) -> tuple[bool, float]:
    """The detector's flag and the classifier's logit margin over its threshold (+inf when a
    pattern or the decoding layer flagged: no threshold shift removes that flag)."""
    hit = detector.detect(text)
    if hit is not None and hit.rule != "injection.classifier":
        return True, math.inf
    margin = _logit(model.score(text)) - _logit(model.threshold_for(text))
    return hit is not None, margin


def matched_recall(
    rows: list[Prompt], margins: list[float], base_flags: list[bool]
) -> dict[str, dict[str, float]]:
    """Post-hoc diagnostic, not a selection rule: per language, the recall a variant reaches
    when one logit shift of its thresholds brings its out-of-fold group-mean benign FPR down
    to the baseline variant's (``base_flags``). Compares how well variants rank, apart from
    where their thresholds happen to land."""
    out: dict[str, dict[str, float]] = {}
    for lang in sorted({r.lang for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.lang == lang]
        benign = [i for i in idx if rows[i].label == 0]
        groups: dict[str, list[int]] = {}
        for i in benign:
            groups.setdefault(train_group(rows[i]), []).append(i)

        def fpr(flags: list[bool], members: dict[str, list[int]] = groups) -> float:
            return sum(sum(flags[i] for i in m) / len(m) for m in members.values()) / len(members)

        def above(shift: float) -> list[bool]:
            return [m > shift for m in margins]

        target = fpr(base_flags)
        shifts = sorted({margins[i] for i in benign if math.isfinite(margins[i])} | {0.0})
        lo, hi = 0, len(shifts) - 1  # smallest shift whose FPR is at most the target
        while lo < hi:
            mid = (lo + hi) // 2
            if fpr(above(shifts[mid])) <= target:
                hi = mid
            else:
                lo = mid + 1
        flagged = above(shifts[lo])
        attacks = [i for i in idx if rows[i].label == 1]
        out[lang] = {
            "shift": round(shifts[lo], 3),
            "fpr_group_mean": round(fpr(flagged), 3),
            "recall": round(sum(flagged[i] for i in attacks) / max(1, len(attacks)), 3),
        }
    return out
