"""The hand-feature model beside the CNN: a class-balanced multinomial logistic regression
on the RR features (optionally with the morphology features, ``beats.BEAT_FEATURES``).

Chosen by DS1 patient-wise CV (``bench/ecg_features_cv.py``): a linear model on normalised
RR intervals generalises to unseen patients' S beats better than the CNN or gradient
boosting fitted to DS1's few S-rich records, as the inter-patient literature found.
scikit-learn fits it; the coefficients then live in the torch graph
(``models.FeatureLogistic``), so ONNX serving needs nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from paramstack.ecg.models import AfGate, FeatureLogistic
from paramstack.ecg.rhythm import GATE_WINDOW_BEATS, AfDetector

LOGISTIC_C = 1.0  # inverse L2 strength on standardised features (scikit-learn's default)
ABSENT_CLASS_LOG_ODDS = -30.0  # a class missing from the training beats is never chosen


def fit_logistic(features: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> Any:
    """A fitted scikit-learn pipeline (standardise, then logistic regression). Classes are
    weighted by inverse frequency: on DS1 CV this beat the unweighted fit in every blend."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = LogisticRegression(C=LOGISTIC_C, max_iter=2000, class_weight="balanced")
    model = make_pipeline(StandardScaler(), logistic)
    return model.fit(np.asarray(features, np.float64), labels)


def log_probabilities(
    model: Any, features: npt.NDArray[np.float32], n_classes: int
) -> npt.NDArray[np.float32]:
    """``[n, n_classes]`` log-probabilities; classes the model never saw get log(1e-12)."""
    out = np.full((len(features), n_classes), np.log(1e-12), dtype=np.float32)
    proba = model.predict_proba(np.asarray(features, np.float64))
    out[:, model.classes_] = np.log(np.maximum(proba, 1e-12))
    return out


def neutralise(rows: npt.NDArray[np.float32], source: int, target: int) -> None:
    """Make the head neutral between two classes, in place: ``target``'s row (log-odds, or
    coefficients and intercept) becomes ``source``'s, so the head never moves a beat from one
    to the other (session 6, ECG round 3: its F column on strip inputs called N beats F)."""
    rows[..., target] = rows[..., source]


def load_into(
    head: FeatureLogistic, model: Any, weight: float, neutral: tuple[int, int] | None = None
) -> None:
    """Copy a fitted pipeline into the torch head: the same log-odds up to a per-beat
    constant (which no argmax or softmax of the sum sees). ``neutral`` = (source, target):
    the target class gets the source's log-odds (``neutralise``)."""
    scaler, logistic = model[0], model[-1]
    n_classes = head.linear.out_features
    coef = np.zeros((n_classes, head.n_features), np.float32)
    intercept = np.full(n_classes, ABSENT_CLASS_LOG_ODDS, np.float32)
    classes = logistic.classes_
    if len(classes) == 2:  # scikit-learn keeps one row: the log-odds of classes[1] vs [0]
        coef[classes[0]], intercept[classes[0]] = 0.0, 0.0
        coef[classes[1]], intercept[classes[1]] = logistic.coef_[0], logistic.intercept_[0]
    else:
        coef[classes], intercept[classes] = logistic.coef_, logistic.intercept_
    if neutral is not None:
        neutralise(coef.T, *neutral)
        neutralise(intercept, *neutral)
    with torch.no_grad():
        head.mean.copy_(torch.from_numpy(scaler.mean_.astype(np.float32)))
        head.std.copy_(torch.from_numpy(np.maximum(scaler.scale_, 1e-6).astype(np.float32)))
        head.linear.weight.copy_(torch.from_numpy(coef))
        head.linear.bias.copy_(torch.from_numpy(intercept))
        head.weight.fill_(weight)


def _detector(db: Path, names: list[str]) -> AfDetector | None:
    """The AF detector on GATE_WINDOW_BEATS windows fitted on ``names``; None without AF."""
    from paramstack.ecg.rhythm_eval import load_rhythm_record, train_af_detector

    try:
        records = [load_rhythm_record(db, n) for n in names]
        return train_af_detector(records, window_beats=GATE_WINDOW_BEATS)
    except ValueError:  # no AF beats (or nothing but AF) among the records
        return None


def gate_mask(detector: AfDetector | None, af_columns: npt.NDArray[np.float32]) -> Any:
    """Beats the detector calls AF (probability >= its threshold, 0.5: log-odds >= 0)."""
    if detector is None:
        return np.zeros(len(af_columns), dtype=bool)
    z = (af_columns - np.asarray(detector.mean)) / np.asarray(detector.scale)
    return z @ np.asarray(detector.coef) + detector.intercept >= 0


def out_of_fold_gate(
    db: Path, names: tuple[str, ...], record: npt.NDArray[np.int64], af: npt.NDArray[np.float32]
) -> npt.NDArray[np.bool_]:
    """The gate for each record's beats from a detector fitted on the other records (not the
    other folds: a training set's AF beats tend to sit in one or two records, all in one
    fold, so a fold-wise refit would never gate them)."""
    out = np.zeros(len(record), dtype=bool)
    for r, name in enumerate(names):
        mask = record == r
        out[mask] = gate_mask(_detector(db, [n for n in names if n != name]), af[mask])
    return out


def fit_gate(gate: AfGate, db: Path, names: tuple[str, ...]) -> AfDetector | None:
    """Fit the AF detector on every training record and copy it into the graph's gate."""
    detector = _detector(db, list(names))
    if detector is not None:
        with torch.no_grad():
            gate.mean.copy_(torch.tensor(detector.mean, dtype=torch.float32))
            gate.std.copy_(torch.tensor(detector.scale, dtype=torch.float32))
            gate.coef.copy_(torch.tensor(detector.coef, dtype=torch.float32))
            gate.intercept.fill_(detector.intercept)
    return detector
