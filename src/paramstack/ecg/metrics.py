"""ANSI/AAMI EC57 classification figures: per-class Se, +P, F1, FPR, gross and per record.

Plain one-vs-rest counts from the 5x5 confusion matrix (rows = reference, columns =
prediction), the way most inter-patient papers report them, so our numbers sit next to
the published anchors below on the same footing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

# Published DS2 (inter-patient) results, in percent; None where the paper gives no figure.
PUBLISHED_ANCHORS: list[dict[str, Any]] = [
    {
        "source": "de Chazal et al. 2004",
        "S_se": 76.0,
        "S_ppv": 38.0,
        "V_se": 77.0,
        "V_ppv": 82.0,
        "S_f1": None,
        "V_f1": None,
        "accuracy": None,
    },
    {
        "source": "Zhang et al. 2014",
        "S_se": 79.1,
        "S_ppv": 36.0,
        "V_se": 85.5,
        "V_ppv": 92.7,
        "S_f1": None,
        "V_f1": None,
        "accuracy": None,
    },
    {
        "source": "Niu et al. 2020",
        "S_se": None,
        "S_ppv": None,
        "V_se": None,
        "V_ppv": None,
        "S_f1": 76.6,
        "V_f1": 89.7,
        "accuracy": 96.4,
    },
]
TARGETS = {"S_se": 80.0, "S_ppv": 50.0, "V_se": 90.0, "V_ppv": 90.0}
# DS2's beats per AAMI class as de Chazal et al. 2004 publish them: the class mix the anchors'
# +P figures are set on.
DS2_CLASS_TOTALS = {"N": 44_259, "S": 1_837, "V": 3_221, "F": 388, "Q": 7}


def confusion_matrix(
    y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64], n_classes: int
) -> npt.NDArray[np.int64]:
    """Counts with rows = reference class and columns = predicted class."""
    flat = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def class_metrics(cm: npt.NDArray[np.int64], classes: tuple[str, ...]) -> dict[str, Any]:
    """Se, +P, F1 and FPR per class (fractions; None when undefined), plus accuracy."""
    total = int(cm.sum())
    out: dict[str, Any] = {"accuracy": ratio(np.trace(cm), total), "beats": total}
    per_class = {}
    for i, name in enumerate(classes):
        tp = int(cm[i, i])
        fn = int(cm[i].sum()) - tp
        fp = int(cm[:, i].sum()) - tp
        tn = total - tp - fn - fp
        se, ppv = ratio(tp, tp + fn), ratio(tp, tp + fp)
        f1 = 2 * se * ppv / (se + ppv) if se is not None and ppv is not None and se + ppv else None
        per_class[name] = {
            "support": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "se": se,
            "ppv": ppv,
            "f1": f1,
            "fpr": ratio(fp, fp + tn),
        }
    out["classes"] = per_class
    return out


def ec57_report(
    y_true: npt.NDArray[np.int64],
    y_pred: npt.NDArray[np.int64],
    record: npt.NDArray[np.int64],
    record_names: tuple[str, ...],
    classes: tuple[str, ...],
) -> dict[str, Any]:
    """Gross figures over all beats, the same per record, and the confusion matrix."""
    cm = confusion_matrix(y_true, y_pred, len(classes))
    per_record = {}
    for r, name in enumerate(record_names):
        mask = record == r
        if mask.any():
            per_record[name] = class_metrics(
                confusion_matrix(y_true[mask], y_pred[mask], len(classes)), classes
            )
    return {
        "classes": list(classes),
        "gross": class_metrics(cm, classes),
        "confusion_matrix": cm.tolist(),
        "per_record": per_record,
    }


def headline(report: dict[str, Any]) -> dict[str, float | None]:
    """S and V Se/+P/F1 and accuracy in percent, the figures the anchors publish."""
    gross = report["gross"]

    def pct(v: float | None) -> float | None:
        return None if v is None else round(100.0 * v, 2)

    out: dict[str, float | None] = {"accuracy": pct(gross["accuracy"])}
    for c in ("S", "V"):
        for key in ("se", "ppv", "f1"):
            out[f"{c}_{key}"] = pct(gross["classes"][c][key])
    return out


def beats_de_chazal(figures: dict[str, float | None]) -> bool:
    """True when every S and V Se/+P figure exceeds de Chazal 2004's."""
    return len(de_chazal_beaten(figures)) == 4


def de_chazal_beaten(figures: dict[str, float | None]) -> list[str]:
    """Which of de Chazal 2004's S and V Se/+P figures these ``figures`` exceed."""
    anchor = PUBLISHED_ANCHORS[0]
    keys = ("S_se", "S_ppv", "V_se", "V_ppv")
    return [k for k in keys if (figures[k] or 0.0) > anchor[k]]
