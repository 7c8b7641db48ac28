"""EC57 beat-by-beat (bxb) comparison: match a device's own beat detections to the reference
beats and score them, misses and extra detections included.

The record/strip/context evaluations classify the reference R peaks, so a detector that
misses or adds beats cannot lose anything there. ANSI/AAMI EC57 scores a device on its own
detections: each reference beat is matched to at most one detection within 150 ms; an
unmatched reference beat is a miss (it lowers its class's Se), an unmatched detection an
extra beat (it lowers +P of the class the device gave it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.ecg.metrics import ratio

TOLERANCE_S = 0.150  # EC57's match window, inclusive
_EPS = 1e-9  # so that a pair exactly 150 ms apart matches despite float rounding
EXTRA_ROW = "extra detection"
MISSED_COLUMN = "not detected"


def match_beats(
    reference_s: npt.ArrayLike, detected_s: npt.ArrayLike, tolerance_s: float = TOLERANCE_S
) -> npt.NDArray[np.int64]:
    """For every reference beat, the index of its detection or -1 (a miss). One to one,
    nearest pair first: all pairs within ``tolerance_s`` (inclusive) are taken in order of
    distance (ties: earlier reference, then earlier detection), each side used once."""
    ref = np.asarray(reference_s, dtype=np.float64)
    det = np.asarray(detected_s, dtype=np.float64)
    order = np.argsort(det, kind="stable")
    ordered = det[order]
    lo = np.searchsorted(ordered, ref - tolerance_s - _EPS, side="left")
    hi = np.searchsorted(ordered, ref + tolerance_s + _EPS, side="right")
    counts = hi - lo
    ref_idx = np.repeat(np.arange(len(ref)), counts)
    det_pos = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    det_idx = order[det_pos + np.repeat(lo, counts)]
    distance = np.round(np.abs(ref[ref_idx] - det[det_idx]), 9)  # equal up to float noise
    matched = np.full(len(ref), -1, dtype=np.int64)
    used = np.zeros(len(det), dtype=bool)
    for k in np.lexsort((det_idx, ref_idx, distance)):
        r, d = ref_idx[k], det_idx[k]
        if matched[r] < 0 and not used[d]:
            matched[r], used[d] = d, True
    return matched


def bxb_confusion(
    reference: npt.NDArray[np.int64],
    detected: npt.NDArray[np.int64],
    matched: npt.NDArray[np.int64],
    n_classes: int,
) -> npt.NDArray[np.int64]:
    """``[n+1, n+1]`` counts: rows the reference class then ``EXTRA_ROW`` (detections matched
    to no reference beat), columns the class the device gave then ``MISSED_COLUMN``."""
    cm = np.zeros((n_classes + 1, n_classes + 1), dtype=np.int64)
    given = np.where(matched >= 0, detected[np.maximum(matched, 0)], n_classes)
    np.add.at(cm, (reference, given), 1)
    extra = np.ones(len(detected), dtype=bool)
    extra[matched[matched >= 0]] = False
    np.add.at(cm, (np.full(int(extra.sum()), n_classes), detected[extra]), 1)
    return cm


def bxb_metrics(cm: npt.NDArray[np.int64], classes: tuple[str, ...]) -> dict[str, Any]:
    """Per class Se (misses count against it), +P (extras count against it), F1, and the
    detector's beat Se / +P, in the shape ``metrics.class_metrics`` gives (``fpr`` is None:
    with misses and extras there is no true-negative count)."""
    n = len(classes)
    per_class: dict[str, Any] = {}
    for i, name in enumerate(classes):
        se, ppv = ratio(cm[i, i], cm[i, :].sum()), ratio(cm[i, i], cm[:, i].sum())
        f1 = None if se is None or ppv is None or se + ppv == 0 else 2 * se * ppv / (se + ppv)
        per_class[name] = {
            "support": int(cm[i, :].sum()),
            "se": se,
            "ppv": ppv,
            "f1": f1,
            "fpr": None,
            "missed": int(cm[i, n]),
            "extra": int(cm[n, i]),
        }
    beats, matched = int(cm[:n, :].sum()), int(cm[:n, :n].sum())
    detections = int(cm[:, :n].sum())
    return {
        "beats": beats,
        "accuracy": ratio(np.trace(cm[:n, :n]), beats),
        "classes": per_class,
        "detector": {
            "reference_beats": beats,
            "detections": detections,
            "matched": matched,
            "missed": beats - matched,
            "extra": detections - matched,
            "se": ratio(matched, beats),
            "ppv": ratio(matched, detections),
        },
    }


def bxb_markdown(part: dict[str, Any]) -> list[str]:
    """The detector line and the confusion matrix with its miss column and extra row."""
    det = part["gross"]["detector"]
    classes = part["classes"]
    lines = [
        f"Detector, {part['inputs_label']}: {det['reference_beats']} reference beats, "
        f"{det['detections']} detections, {det['missed']} missed, {det['extra']} extra; beat "
        f"Se {100 * (det['se'] or 0):.2f} %, +P {100 * (det['ppv'] or 0):.2f} % "
        f"(EC57 bxb, match within {1000 * part['bxb']['tolerance_s']:.0f} ms). Strips: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in part["bxb"]["strips"].items())
        + ".",
        "",
        f"Confusion matrix, {part['inputs_label']} (rows reference, columns the class the "
        "served path gave):",
        "",
        "| | " + " | ".join([*classes, MISSED_COLUMN]) + " |",
        "|---" * (len(classes) + 2) + "|",
    ]
    rows = [*(f"**{c}**" for c in classes), f"*{EXTRA_ROW}*"]
    for name, row in zip(rows, part["bxb"]["confusion_matrix"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return [*lines, ""]
