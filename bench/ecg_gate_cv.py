"""DS1 patient-wise CV of a rhythm-gated feature model and an S-aware bias (issue 4, session 6).

The feature model's S false alarms sat in AF / flutter records: irregular RR intervals look
premature to a linear RR model. Here its S-vs-N push is gated by the AF probability of each
beat from ``ecg.rhythm``'s detector on 10-beat windows (what a served strip can compute),
refitted per outer fold on the other folds' records only (nested CV), so the held-out patients
never train the gate. Variants (decision rule in ``docs/ecg.md``, written before measuring):

- C0: the CNN alone; C1: CNN + 2 x balanced logistic on RR + P (the opt-in feature model);
- G-hard / G-soft / G-off: C1 with the head's S-vs-N log-odds zeroed where p >= 0.5,
  scaled by 1 - p, or the whole head dropped where p >= 0.5.

Each row: the out-of-fold figures after the bias chosen by the default objective (mean S/V
F1), the S false positives on beats inside reference AF / flutter episodes, and the same
model's figures at the S-aware bias (mean of S F2 and V F1). DS2 is never read.

    python bench/ecg_inputs_cv.py causal:45 --save-logits var/oof    # CNN OOF logits, ~200 s
    python bench/ecg_gate_cv.py --cnn var/oof/causal_45-seed0.npz    # ~1 min CPU
    python bench/ecg_gate_cv.py --cnn A.npz --mix B.npz    # CNN = mean of A's and B's log-probs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecg_features_cv import INPUTS, features, out_of_fold
from ecg_inputs_cv import ROOT, _raw
from paramstack.ecg.calibrate import choose_bias, class_figures, record_folds, s_f2_objective
from paramstack.ecg.records import AAMI_CLASSES, read_record
from paramstack.ecg.rhythm import af_features, rhythm_episodes

AF_WINDOW_BEATS = 10  # export.STRIP_AF_WINDOW_BEATS: the served AF screen's window
GATE_THRESHOLD = 0.5  # AfDetector.threshold
HEAD_WEIGHT = 2.0  # the opt-in feature model's weight
S, N, V = AAMI_CLASSES.index("S"), AAMI_CLASSES.index("N"), AAMI_CLASSES.index("V")
Floats = npt.NDArray[np.float32]


def af_inputs(raw: list[dict[str, Any]], db: Path) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """AF features (10-beat windows) and reference AF/flutter membership of every kept beat."""
    x, inside = [], []
    for r in raw:
        record = read_record(db, r["name"])
        episodes = rhythm_episodes(record.rhythm, record.fs, len(record.signal), "AF")
        t = r["t"]
        member = np.zeros(len(t), dtype=bool)
        for ep in episodes:
            member |= (t >= ep.start_s) & (t < ep.end_s)
        x.append(af_features(t, AF_WINDOW_BEATS)[r["keep"]])
        inside.append(member[r["keep"]])
    return np.concatenate(x), np.concatenate(inside)


def nested_af_probability(
    x: Floats, inside: npt.NDArray[np.bool_], folds: list[npt.NDArray[np.bool_]]
) -> tuple[Floats, list[bool]]:
    """Per held-out group (a fold, or a record), the AF probability from a detector fitted on
    the rest (as ``rhythm_eval.train_af_detector``); a group whose training beats hold no AF
    gets p = 0. DS1's AF beats all sit in one of the three folds, hence the record-wise run."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = np.zeros(len(x), np.float32)
    fitted = []
    for held in folds:
        y = inside[~held]
        fitted.append(bool(y.any() and not y.all()))
        if fitted[-1]:
            model = make_pipeline(
                StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000)
            ).fit(x[~held], y)
            p[held] = model.predict_proba(x[held])[:, 1]
    return p, fitted


def gated(head: Floats, p: Floats, kind: str) -> Floats:
    """The head's log-odds with its S-vs-N push gated by the AF probability ``p``."""
    out = head.copy()
    push = head[:, S] - head[:, N]
    if kind == "hard":
        out[:, S] = head[:, N] + np.where(p >= GATE_THRESHOLD, 0.0, push)
    elif kind == "soft":
        out[:, S] = head[:, N] + (1 - p) * push
    elif kind == "off":
        out[p >= GATE_THRESHOLD] = 0.0
    else:
        raise SystemExit(f"unknown gate {kind!r}")
    return out


def mixed_logits(paths: list[Path], labels: npt.NDArray[np.int64]) -> Floats:
    """The mean of several CNNs' out-of-fold log-probabilities (a mixture of CNNs; equal to
    averaging their logits up to a per-beat constant, as ``BeatEnsemble`` does)."""
    members = []
    for path in paths:
        with np.load(path) as saved:
            if not np.array_equal(saved["labels"], labels):
                raise SystemExit(f"CNN logits in {path} are for other beats")
            members.append(saved["logits"])
    return np.mean(members, axis=0).astype(np.float32)


def figures(logits: Floats, labels: npt.NDArray[np.int64], af: npt.NDArray[np.bool_]) -> str:
    cells = []
    for objective in (None, s_f2_objective):
        bias, value = (
            choose_bias(logits, labels)
            if objective is None
            else choose_bias(logits, labels, objective)
        )
        predicted = (logits + bias).argmax(1)
        f = class_figures(labels, predicted)
        s_fp_af = int(((predicted == S) & (labels != S) & af).sum())
        cells.append(
            f"{value:.2f} | {f['S_se']:.1f} / {f['S_ppv']:.1f} | {f['V_se']:.1f} / "
            f"{f['V_ppv']:.1f} | {s_fp_af} | S {bias[S]:+g} V {bias[V]:+g}"
        )
    return " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnn", type=Path, required=True, help="OOF logits from ecg_inputs_cv")
    parser.add_argument("--mix", type=Path, action="append", default=[],
                        help="more OOF logits averaged with --cnn (a mixture of CNNs)")  # fmt: skip
    parser.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    args = parser.parse_args()
    raw = _raw(args.db, 180.0, 64, 80)
    data = features(raw, 180.0, 64)
    labels = data["labels"]
    cnn = mixed_logits([args.cnn, *args.mix], labels)
    x_af, af = af_inputs(raw, args.db)
    folds = record_folds(
        SimpleNamespace(labels=labels, record=data["record"], record_names=data["names"]), 3
    )
    by_record = [data["record"] == r for r in np.unique(data["record"])]
    head = out_of_fold("logistic_balanced", data, INPUTS["rr+p"])
    rows = {
        "C0 CNN alone": cnn,
        "C1 CNN + 2 x balanced logistic RR + P": cnn + HEAD_WEIGHT * head,
    }
    for scheme, groups in (("fold-wise", folds), ("record-wise", by_record)):
        p, fitted = nested_af_probability(x_af, af, groups)
        beat_se = 100 * float((p[af] >= GATE_THRESHOLD).mean())
        beat_fp = 100 * float((p[~af] >= GATE_THRESHOLD).mean())
        print(f"{scheme} gate: fitted for {sum(fitted)} of {len(fitted)} groups; gates "
              f"{beat_se:.1f} % of the {int(af.sum())} AF/flutter beats, {beat_fp:.1f} % of "
              f"the others; S beats gated {int((p[labels == S] >= GATE_THRESHOLD).sum())} of "
              f"{int((labels == S).sum())}")  # fmt: skip
        for kind, label in (("hard", "S push 0 where p >= 0.5"), ("soft", "S push x (1 - p)"),
                            ("off", "head dropped where p >= 0.5")):  # fmt: skip
            rows[f"G-{kind}, {scheme} ({label})"] = cnn + HEAD_WEIGHT * gated(head, p, kind)
    head_cells = "objective | S Se / +P | V Se / +P | S FP in AF | bias"
    print(f"| variant | F1 bias: {head_cells} | S-F2 bias: {head_cells} |")
    print("|" + " --- |" * 11)
    for name, logits in rows.items():
        print(f"| {name} | {figures(logits, labels, af)} |", flush=True)


if __name__ == "__main__":
    main()
