"""DS1 out-of-fold check of the feature head's F column (issue 4, served strips call N beats F).

Re-runs the default training's calibration from an existing training directory's member
checkpoints (no CNN is retrained: ``fit_model`` resumes them) and captures the out-of-fold
CNN logits and the AF-gated head that the bias is chosen on. Then scores, with the bias of
each row's objective chosen on those out-of-fold logits (DS2 is never read):

- default: CNN + 2 x head, bias by mean(S F2, V F1) (the session 6 default);
- fix a: the head's F log-odds set to its N log-odds (the head adds S and V evidence only);
- fix c: the default's logits, bias chosen by mean(S F2, V F1, F F1) (F in the objective).

    python bench/ecg_fhead_cv.py var/build/ecg-ensemble   # copies it to <dir>-fhead first
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import paramstack.ecg.calibrate as calibrate
from paramstack.ecg.calibrate import choose_bias, class_figures, f_beta, s_f2_objective
from paramstack.ecg.config import load_config
from paramstack.ecg.records import AAMI_CLASSES
from paramstack.ecg.train import train_ecg

ROOT = Path(__file__).resolve().parents[1]
N, S, V, F = (AAMI_CLASSES.index(c) for c in "NSVF")
Floats = npt.NDArray[np.float32]
captured: dict[str, Any] = {}


def _capture(original: Any) -> Any:
    def wrapped(config: Any, ensemble: Any, data: Any, folds: Any, logits: Floats) -> Any:
        combined, record = original(config, ensemble, data, folds, logits)
        captured.update(cnn=logits.copy(), combined=combined.copy(), labels=data.labels.copy())
        return combined, record

    return wrapped


def sf2_f_objective(logits: Floats, labels: npt.NDArray[np.int64]) -> float:
    """mean(S F2, V F1, F F1): the S-F2 objective with F's F1 as a third term."""
    f_f1 = f_beta(labels, logits.argmax(axis=1), F, 1.0)
    return (2 * s_f2_objective(logits, labels) + f_f1) / 3


def row(name: str, logits: Floats, labels: npt.NDArray[np.int64], objective: Any) -> str:
    bias, _ = choose_bias(logits, labels, objective)
    predicted = (logits + bias).argmax(1)
    f = class_figures(labels, predicted)
    sf2 = s_f2_objective(logits + bias, labels)
    tp = float(((labels == F) & (predicted == F)).sum())
    f_se = 100 * tp / max(float((labels == F).sum()), 1.0)
    f_ppv = 100 * tp / max(float((predicted == F).sum()), 1.0)
    n_to_f = int(((labels == N) & (predicted == F)).sum())
    acc = 100 * float((predicted == labels).mean())
    return (f"| {name} | {sf2:.2f} | {f['S_se']:.1f} / {f['S_ppv']:.1f} | {f['V_se']:.1f} / "
            f"{f['V_ppv']:.1f} | {f_se:.1f} / {f_ppv:.1f} | {n_to_f} | "
            f"{acc:.2f} | S {bias[S]:+g} V {bias[V]:+g} F {bias[F]:+g} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a default training's output directory")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ecg" / "default.yaml")
    args = parser.parse_args()
    work = args.model_dir.with_name(args.model_dir.name + "-fhead")
    if not work.exists():
        shutil.copytree(args.model_dir, work)
    calibrate._add_feature_model = _capture(calibrate._add_feature_model)  # type: ignore[attr-defined]
    config = load_config(args.config, [f"out_dir={work}", "mlflow=false"])
    train_ecg(config)
    cnn, combined, labels = captured["cnn"], captured["combined"], captured["labels"]
    head = (combined - cnn) / config.feature_model_weight  # gated out-of-fold head
    neutral_f = head.copy()
    neutral_f[:, F] = head[:, N]
    fix_a = cnn + config.feature_model_weight * neutral_f
    print("| variant | S-F2 objective | S Se / +P | V Se / +P | F Se / +P | N called F | "
          "accuracy % | bias |")  # fmt: skip
    print("|" + " --- |" * 8)
    print(row("CNN alone (S-F2 bias)", cnn, labels, s_f2_objective))
    print(row("default: CNN + 2 x gated head", combined, labels, s_f2_objective))
    print(row("fix a: head F := head N", fix_a, labels, s_f2_objective))
    print(row("fix c: default, bias by mean(S F2, V F1, F F1)", combined, labels, sf2_f_objective))
    print(row("fix a + c", fix_a, labels, sf2_f_objective))


if __name__ == "__main__":
    main()
