"""Diagnosis for ECG round 4 (issue 4, session 7): how a trained cross-validated model scores
out of fold on DS1 when every beat's scalar inputs come from the 10 s strip around it, as a
served strip computes them, against the whole-record inputs its training and `ecg evaluate`
use. The model's own members and fold assignment are reused (member i never saw fold i);
the feature head is refitted per fold on the inputs its training used (``scalar_inputs`` of
the model's config) and then fed each variant. DS2 is never read.

    python bench/ecg_served_oof.py var/build/s6 var/build/s6-r4-A
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paramstack.ecg.beats import BeatSet, BeatWindow
from paramstack.ecg.calibrate import _log_probabilities, choose_bias, record_folds, s_f2_objective
from paramstack.ecg.dataset import load_beats
from paramstack.ecg.feature_model import (
    fit_logistic,
    log_probabilities,
    neutralise,
    out_of_fold_gate,
)
from paramstack.ecg.models import BeatEnsemble
from paramstack.ecg.records import AAMI_CLASSES
from paramstack.ecg.train import load_trained, training_records

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ecg_round4_cv import out_of_fold

N, F = AAMI_CLASSES.index("N"), AAMI_CLASSES.index("F")


def scored(model: BeatEnsemble, fitted_on: BeatSet, fed: BeatSet, db: Path,
           neutral_f: bool, weight: float) -> npt.NDArray[np.float32]:  # fmt: skip
    """Out-of-fold logits (before the bias): members and head of each fold on ``fed``."""
    assert model.features is not None
    assert model.af_gate is not None
    folds = record_folds(fitted_on, len(model.members))
    logits = np.zeros((len(fed), model.n_classes), np.float32)
    head = np.zeros_like(logits)
    n = model.features.n_features
    for member, held in zip(model.members, folds, strict=True):
        logits[held] = _log_probabilities(member, fed.select(held))  # type: ignore[arg-type]
        fit = fit_logistic(fitted_on.rr[~held, :n], fitted_on.labels[~held])
        head[held] = log_probabilities(fit, fed.rr[held, :n], model.n_classes)
    if neutral_f:
        neutralise(head, N, F)
    g = model.af_gate
    gated = out_of_fold_gate(
        db, fed.record_names, fed.record, fed.rr[:, g.offset : g.offset + g.n_af]
    )
    head[gated] = 0.0
    return logits + weight * head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", type=Path, nargs="+", help="cross-validated training dirs")
    args = parser.parse_args()
    print("| model | fed | bias | S-F2 objective | S Se / +P | V Se / +P | F Se / +P | "
          "DS1 N called F | OOF accuracy % |")  # fmt: skip
    print("|" + " --- |" * 9)
    for model_dir in args.model_dirs:
        model, config, _ = load_trained(model_dir)
        assert isinstance(model, BeatEnsemble)
        window, db = BeatWindow(config.before, config.after), Path(config.db)
        cache = Path("var") / "cache" / "ecg"
        sets = {
            kind: load_beats(db, training_records(config), config.model_fs, window,
                             cache_dir=cache, scalar_inputs=kind)
            for kind in ("record", "strip")
        }  # fmt: skip
        fitted_on = sets[config.scalar_inputs]
        own = model.logit_bias.numpy()
        for kind, fed in sets.items():
            logits = scored(model, fitted_on, fed, db, config.feature_model_f_neutral,
                            config.feature_model_weight)  # fmt: skip
            caps = None if config.bias_f_max is None else {"F": config.bias_f_max}
            best, _ = choose_bias(logits, fed.labels, s_f2_objective, caps)
            for label, bias in (("model's", own), ("re-chosen", best)):
                b = "/".join(f"{v:+g}" for v in bias[1:4])
                print(f"| {model_dir.name} (head on {config.scalar_inputs}) | {kind} | {label} "
                      f"{b} | {out_of_fold(logits + bias, fed.labels)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
