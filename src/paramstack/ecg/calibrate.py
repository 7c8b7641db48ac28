"""Patient-wise cross-validation on the training records: a k-fold ensemble and its
decision bias.

Inter-patient ECG figures hinge on where the S and V decision thresholds sit, and those
must never be chosen on the test patients (DS2). Each member of the ensemble is trained on
the training records minus one fold of whole records; every held-out beat is scored by the
member that never saw its patient, and the per-class logit bias that maximises the chosen
objective on those out-of-fold logits (``bias_objective``; the default config's: the smallest
margin over de Chazal 2004's S/V figures) becomes part of the model (``logit_bias``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from paramstack.ecg.beats import BeatSet
from paramstack.ecg.config import EcgTrainConfig
from paramstack.ecg.metrics import DS2_CLASS_TOTALS, PUBLISHED_ANCHORS, confusion_matrix
from paramstack.ecg.models import BeatClassifier, BeatEnsemble
from paramstack.ecg.records import AAMI_CLASSES
from paramstack.ecg.tracking import TrackingRun
from paramstack.errors import InvalidInput

Progress = Callable[[int, int, float], None]
BIAS_CLASSES = ("S", "V", "F")  # N is the reference; Q is too rare in DS1 to calibrate
BIAS_GRID = np.round(np.arange(-4.0, 4.01, 0.25), 2)
SCORED_CLASSES = ("S", "V")


def record_folds(data: BeatSet, k: int) -> list[npt.NDArray[np.bool_]]:
    """``k`` beat masks, each holding whole records. Records are sorted by their S, then V,
    beat count and dealt round-robin, so every fold holds some ectopic-rich patients."""
    records = np.unique(data.record)
    if k > len(records):
        raise InvalidInput(f"cv_folds={k} but only {len(records)} records", param="cv_folds")
    s, v = AAMI_CLASSES.index("S"), AAMI_CLASSES.index("V")

    def weight(r: int) -> tuple[int, int, str]:
        labels = data.labels[data.record == r]
        return -int((labels == s).sum()), -int((labels == v).sum()), data.record_names[r]

    order = sorted((int(r) for r in records), key=weight)
    return [np.isin(data.record, order[f::k]) for f in range(k)]


def class_figures(
    labels: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """Se, +P and F1 in percent for the scored classes (None where undefined)."""
    out: dict[str, Any] = {}
    for name in SCORED_CLASSES:
        c = AAMI_CLASSES.index(name)
        tp = int(((labels == c) & (predicted == c)).sum())
        ref, pred = int((labels == c).sum()), int((predicted == c).sum())
        se = 100 * tp / ref if ref else None
        ppv = 100 * tp / pred if pred else None
        f1 = 200 * tp / (ref + pred) if ref + pred else None
        out.update({f"{name}_se": se, f"{name}_ppv": ppv, f"{name}_f1": f1})
    return out


OBJECTIVE_TEXT = {
    "f1": "mean of S F1 and V F1 on the out-of-fold beats",
    "s_f2": "mean of S F2 and V F1 on the out-of-fold beats",
    "dechazal": "smallest margin over de Chazal 2004's S/V Se and +P on the out-of-fold beats, "
    "+P at DS2's published class mix (ties: the margins' sum)",
}

Objective = Callable[[npt.NDArray[np.float32], npt.NDArray[np.int64]], float]


def _objective(logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> float:
    figures = class_figures(labels, logits.argmax(axis=1))
    return float(np.mean([figures[f"{c}_f1"] or 0.0 for c in SCORED_CLASSES]))


def f_beta(
    labels: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], c: int, beta: float
) -> float:
    """F-beta in percent for class ``c``: recall counts ``beta**2`` times precision."""
    tp = float(((labels == c) & (predicted == c)).sum())
    ref, pred = float((labels == c).sum()), float((predicted == c).sum())
    den = beta**2 * ref + pred
    return 100 * (1 + beta**2) * tp / den if den else 0.0


def s_f2_objective(logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> float:
    """Mean of S F2 and V F1: a missed SVEB weighs more than a false S alarm."""
    predicted = logits.argmax(axis=1)
    s, v = AAMI_CLASSES.index("S"), AAMI_CLASSES.index("V")
    return (f_beta(labels, predicted, s, 2.0) + f_beta(labels, predicted, v, 1.0)) / 2


def choose_bias(
    logits: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    objective: Objective = _objective,
    highest: Mapping[str, float] | None = None,
) -> tuple[npt.NDArray[np.float32], float]:
    """Coordinate ascent over BIAS_GRID for the BIAS_CLASSES' logit offsets, maximising
    ``objective`` (default: the mean S/V F1); starts at zero and only moves for a strict gain.
    ``highest`` caps a class's offset (e.g. ``{"F": 0.0}``)."""
    bias = np.zeros(logits.shape[1], dtype=np.float32)
    best = objective(logits, labels)
    caps = dict(highest or {})
    for _ in range(4):
        moved = False
        for name in BIAS_CLASSES:
            c = AAMI_CLASSES.index(name)
            for value in BIAS_GRID[np.less_equal(BIAS_GRID, caps.get(name, np.inf))]:
                trial = bias.copy()
                trial[c] = value
                score = objective(logits + trial, labels)
                if score > best + 1e-9:
                    best, bias, moved = score, trial, True
        if not moved:
            break
    return bias, best


DE_CHAZAL_2004 = {k: float(PUBLISHED_ANCHORS[0][k]) for k in ("S_se", "S_ppv", "V_se", "V_ppv")}


def reweighted_figures(
    labels: npt.NDArray[np.int64],
    predicted: npt.NDArray[np.int64],
    totals: Mapping[str, int] = DS2_CLASS_TOTALS,
) -> dict[str, float]:
    """S and V Se / +P in percent with each true class's beats rescaled to ``totals``.

    A label-shift correction: a detector's per-class detection and false-alarm rates carry
    over between populations, its +P follows their class mix (DS1 holds half DS2's S beats,
    so the same detector reads a much lower S +P on DS1)."""
    confusion = confusion_matrix(labels, predicted, len(AAMI_CLASSES)).astype(np.float64)
    present = confusion.sum(axis=1)
    target = np.array([totals[c] for c in AAMI_CLASSES], dtype=np.float64)
    scaled = (
        confusion
        * np.divide(target, present, out=np.zeros_like(target), where=present > 0)[:, None]
    )
    out = {}
    for name in SCORED_CLASSES:
        c = AAMI_CLASSES.index(name)
        called = scaled[:, c].sum()
        out[f"{name}_se"] = float(100 * confusion[c, c] / present[c]) if present[c] else 0.0
        out[f"{name}_ppv"] = float(100 * scaled[c, c] / called) if called else 0.0
    return out


def dechazal_margins(
    labels: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64]
) -> dict[str, float]:
    """Each of de Chazal's four S/V figures minus the baseline, +P at DS2's class mix."""
    figures = reweighted_figures(labels, predicted)
    return {key: figures[key] - floor for key, floor in DE_CHAZAL_2004.items()}


def choose_bias_dechazal(
    logits: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    highest: Mapping[str, float] | None = None,
) -> tuple[npt.NDArray[np.float32], float]:
    """The S/V/F bias on BIAS_GRID (exhaustive) that maximises the smallest of the four
    de Chazal margins (ties: their sum): the issue's target is to beat the baseline on every
    figure, so the worst one is what an operating point must lift."""
    caps = dict(highest or {})
    grids = [BIAS_GRID[np.less_equal(BIAS_GRID, caps.get(c, np.inf))] for c in BIAS_CLASSES]
    columns = [AAMI_CLASSES.index(c) for c in BIAS_CLASSES]
    best_key, best_bias = (-np.inf, -np.inf), np.zeros(logits.shape[1], dtype=np.float32)
    for trial in itertools.product(*grids):
        bias = np.zeros(logits.shape[1], dtype=np.float32)
        bias[columns] = trial
        margins = list(dechazal_margins(labels, (logits + bias).argmax(axis=1)).values())
        key = (min(margins), sum(margins))
        if key > best_key:
            best_key, best_bias = key, bias
    return best_bias, float(best_key[0])


def _log_probabilities(model: BeatClassifier, data: BeatSet) -> npt.NDArray[np.float32]:
    """Log-softmax: the logits up to a per-beat constant, so argmax(· + bias) is unchanged."""
    from paramstack.ecg.evaluate import predict_probabilities

    probs = predict_probabilities(model, data)
    return np.log(np.maximum(probs, 1e-12)).astype(np.float32)


def _add_feature_model(
    config: EcgTrainConfig,
    ensemble: BeatEnsemble,
    data: BeatSet,
    folds: list[npt.NDArray[np.bool_]],
    cnn_logits: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
    """The out-of-fold logits with the feature model's log-odds added (fitted per fold like
    the CNN members), and the head fitted on all training beats loaded into the ensemble."""
    from paramstack.ecg.feature_model import (
        fit_gate,
        fit_logistic,
        load_into,
        log_probabilities,
        neutralise,
        out_of_fold_gate,
    )

    assert ensemble.features is not None
    features, weight = data.rr[:, : ensemble.features.n_features], config.feature_model_weight
    out_of_fold = np.zeros_like(cnn_logits)
    for held in folds:
        model = fit_logistic(features[~held], data.labels[~held])
        out_of_fold[held] = log_probabilities(model, features[held], ensemble.n_classes)
    neutral = (AAMI_CLASSES.index("N"), AAMI_CLASSES.index("F"))
    if config.feature_model_f_neutral:
        neutralise(out_of_fold, *neutral)
    load_into(
        ensemble.features,
        fit_logistic(features, data.labels),
        weight,
        neutral if config.feature_model_f_neutral else None,
    )
    gate_record = None
    if ensemble.af_gate is not None:
        g = ensemble.af_gate
        columns = data.rr[:, g.offset : g.offset + g.n_af]
        gated = out_of_fold_gate(Path(config.db), data.record_names, data.record, columns)
        out_of_fold[gated] = 0.0  # the CNN alone decides inside AF
        detector = fit_gate(g, Path(config.db), data.record_names)
        gate_record = {
            "kind": "AF detector (ecg.rhythm, 10-beat windows); record-wise refits out of fold",
            "fitted": detector is not None,
            "out_of_fold_gated_beats": int(gated.sum()),
        }
    record = {
        "kind": "class-balanced logistic regression (ecg.feature_model)",
        "inputs": config.feature_model_inputs,
        "weight": weight,
        "out_of_fold_alone": class_figures(data.labels, out_of_fold.argmax(axis=1)),
        "cnn_out_of_fold_before_bias": class_figures(data.labels, cnn_logits.argmax(axis=1)),
        "af_gate": gate_record,
    }
    return cnn_logits + weight * out_of_fold, record


def train_cross_validated(
    config: EcgTrainConfig,
    data: BeatSet,
    out_dir: Path,
    run: TrackingRun,
    progress: Progress | None = None,
    served: BeatSet | None = None,
) -> tuple[BeatEnsemble, list[float], dict[str, Any]]:
    """The k-fold ensemble with its bias set, the mean loss per epoch, and the calibration
    record for meta.json (folds, bias, out-of-fold figures before and after the bias).

    The members train on ``data``; the out-of-fold logits, the feature model and the bias
    read ``served`` (the same beats; with ``scalar_inputs: strip`` their scalar inputs as 10 s
    strips compute them), so the bias is chosen on what the model will be fed."""
    from paramstack.ecg.train import fit_model, new_model

    k, epochs = config.cv_folds, config.epochs
    ensemble = new_model(config)
    if not isinstance(ensemble, BeatEnsemble):
        raise InvalidInput("cv_folds needs arch ensemble", param="cv_folds")
    rr = torch.from_numpy(data.rr)
    ensemble.set_rr_normalisation(rr.mean(dim=0), rr.std(dim=0))
    folds = record_folds(data, k)
    scored = data if served is None else served
    members = list(config.arch_kwargs["members"])
    logits = np.zeros((len(data), ensemble.n_classes), dtype=np.float32)
    fold_losses = []
    for i, (arch, held_out) in enumerate(zip(members, folds, strict=True)):

        def report(epoch: int, _total: int, loss: float, i: int = i) -> None:
            run.log_metric(f"train_loss_fold{i}", loss, epoch)
            if progress is not None:
                progress(i * epochs + epoch, k * epochs, loss)

        member, losses = fit_model(
            config,
            data.select(~held_out),
            arch,
            checkpoint_path=out_dir / f"checkpoint-fold{i}.pt",
            progress=report,
        )
        ensemble.members[i].load_state_dict(member.state_dict())
        logits[held_out] = _log_probabilities(member, scored.select(held_out))
        fold_losses.append(losses)
    feature_record = None
    if ensemble.features is not None:
        logits, feature_record = _add_feature_model(config, ensemble, scored, folds, logits)
    caps = None if config.bias_f_max is None else {"F": config.bias_f_max}
    if config.bias_objective == "dechazal":
        bias, score = choose_bias_dechazal(logits, data.labels, caps)
    else:
        objective = s_f2_objective if config.bias_objective == "s_f2" else _objective
        bias, score = choose_bias(logits, data.labels, objective, caps)
    ensemble.logit_bias.copy_(torch.from_numpy(bias))
    ensemble.eval()
    before = class_figures(data.labels, logits.argmax(axis=1))
    after = class_figures(data.labels, (logits + bias).argmax(axis=1))
    margins = dechazal_margins(data.labels, (logits + bias).argmax(axis=1))
    for key, value in after.items():
        if value is not None:
            run.log_metric(f"oof_{key}", value, 0)
    calibration = {
        "folds": [sorted({data.record_names[r] for r in data.record[m]}) for m in folds],
        "objective": OBJECTIVE_TEXT[config.bias_objective],
        "bias": {c: float(b) for c, b in zip(AAMI_CLASSES, bias, strict=True)},
        "bias_f_max": config.bias_f_max,
        "scalar_inputs": config.scalar_inputs,
        "objective_value": score,
        "out_of_fold_before_bias": before,
        "out_of_fold_after_bias": after,
        "out_of_fold_dechazal_margins_at_ds2_mix": margins,
        "feature_model": feature_record,
    }
    return ensemble, list(np.mean(fold_losses, axis=0)), calibration
