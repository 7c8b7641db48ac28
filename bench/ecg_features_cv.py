"""DS1 patient-wise CV of a hand-feature beat model beside the CNN (issue 4, lever 1).

The features are the nine RR features plus ``ecg.morphology``'s QRS / P-wave / ST-T
descriptors against the causal running template. Each model is fitted on DS1 minus one fold
of whole records (the folds of ``configs/ecg/default.yaml``, as ``ecg.calibrate`` uses) and
scores the held-out patients; the table gives the out-of-fold figures after the decision bias
chosen by the default objective (mean S/V F1). With ``--cnn`` (OOF logits written by
``bench/ecg_inputs_cv.py --save-logits``) it also scores blends ``CNN + λ · features`` of the
log-probabilities. DS2 is never read. Takes about a minute of CPU.

    python bench/ecg_inputs_cv.py causal:45 --save-logits var/oof
    python bench/ecg_features_cv.py --cnn var/oof/causal_45-seed0.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecg_inputs_cv import ROOT, _raw
from paramstack.ecg.beats import rr_features, running_template
from paramstack.ecg.calibrate import choose_bias, class_figures, record_folds
from paramstack.ecg.morphology import P_WAVE_FEATURES, morphology_features

N_CLASSES = 5
# Column sets: the nine RR features; RR + every morphology feature; RR + the P-wave ones.
INPUTS: dict[str, Any] = {
    "rr": slice(0, 9),
    "rr+morphology": slice(None),
    "rr+p": slice(0, 9 + P_WAVE_FEATURES),
}
Logits = npt.NDArray[np.float32]


def features(raw: list[dict[str, Any]], fs: float, before: int) -> dict[str, Any]:
    """RR + morphology features, labels and record index for every kept DS1 beat."""
    x, labels, record, names = [], [], [], []
    for i, r in enumerate(raw):
        rr = rr_features(r["t"])[r["keep"]]
        morph = morphology_features(r["w"], running_template(r["w"]), before, fs)
        x.append(np.concatenate([rr, morph], axis=1))
        labels.append(r["labels"])
        record.append(np.full(len(r["labels"]), i))
        names.append(r["name"])
    return {"x": np.concatenate(x), "labels": np.concatenate(labels),
            "record": np.concatenate(record), "names": tuple(names)}  # fmt: skip


def _model(kind: str) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if kind == "logistic_balanced":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
        )
    if kind == "hgb":
        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.1, max_leaf_nodes=15, class_weight="balanced",
            random_state=0)  # fmt: skip
    raise SystemExit(f"unknown model {kind!r}")


def out_of_fold(kind: str, data: dict[str, Any], columns: Any) -> Logits:
    folds = record_folds(
        SimpleNamespace(labels=data["labels"], record=data["record"], record_names=data["names"]),
        3,
    )
    logits = np.full((len(data["labels"]), N_CLASSES), np.log(1e-12), np.float32)
    for held in folds:
        model = _model(kind).fit(data["x"][~held][:, columns], data["labels"][~held])
        proba = model.predict_proba(data["x"][held][:, columns])
        logits[np.ix_(held, model.classes_)] = np.log(np.maximum(proba, 1e-12))
    return logits


def row(name: str, logits: Logits, labels: npt.NDArray[np.int64], cpu: float) -> str:
    bias, objective = choose_bias(logits, labels)
    f = class_figures(labels, (logits + bias).argmax(1))
    return (f"| {name} | {objective:.2f} | {f['S_se']:.1f} / {f['S_ppv']:.1f} | "
            f"{f['V_se']:.1f} / {f['V_ppv']:.1f} | {cpu:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="logistic,logistic_balanced,hgb")
    parser.add_argument("--cnn", type=Path, help="OOF logits npz from ecg_inputs_cv.py")
    parser.add_argument("--weights", default="0.25,0.5,1,2")
    parser.add_argument("--inputs", default="rr,rr+morphology", help=", ".join(INPUTS))
    parser.add_argument("--before", type=int, default=64, help="samples before R (as --cnn's)")
    parser.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    args = parser.parse_args()
    data = features(_raw(args.db, 180.0, args.before, 80), 180.0, args.before)
    labels = data["labels"]
    cnn = None
    if args.cnn:
        with np.load(args.cnn) as saved:
            if not np.array_equal(saved["labels"], labels):
                raise SystemExit("CNN logits are for other beats")
            cnn = saved["logits"]
    print("| model | objective | S Se / +P | V Se / +P | CPU s |")
    print("| --- | --- | --- | --- | --- |")
    if cnn is not None:
        print(row("CNN alone", cnn, labels, 0), flush=True)
    for kind in args.models.split(","):
        for tag in args.inputs.split(","):
            cols = INPUTS[tag]
            started = time.process_time()
            logits = out_of_fold(kind, data, cols)
            print(row(f"{kind}, {tag}", logits, labels, time.process_time() - started))
            for weight in (float(w) for w in args.weights.split(",")) if cnn is not None else ():
                print(row(f"CNN + {weight:g} x {kind}, {tag}", cnn + weight * logits, labels, 0))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
