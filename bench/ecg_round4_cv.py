"""One candidate of ECG round 4 (issue 4, session 7): DS1 out of fold and the served-strip check
in one command, printed as one table row (rule in docs/ecg.md, "Session 7 (ECG round 4)").

Copies a default training's directory, re-runs its calibration with ``--set`` overrides (the
CNN members' checkpoints are resumed, nothing is retrained), captures the out-of-fold logits
the bias was chosen on, and scores 10 s strips every 60 s of six DS1 records with the torch
model on the strip's own inputs (``bench/ecg_strip_head.py``'s "served" row, equal to the
ONNX strip path). DS2 is never read.

    python bench/ecg_round4_cv.py var/build/s6 --name A --set scalar_inputs=strip
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

import paramstack.ecg.calibrate as calibrate
from paramstack.ecg.beats import BeatWindow
from paramstack.ecg.calibrate import choose_bias, class_figures, dechazal_margins, s_f2_objective
from paramstack.ecg.config import load_config
from paramstack.ecg.models import BeatEnsemble
from paramstack.ecg.records import AAMI_CLASSES
from paramstack.ecg.train import load_trained, train_ecg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ecg_fhead_cv import _capture, captured
from ecg_strip_head import parts, record_rows

ROOT = Path(__file__).resolve().parents[1]
N, S, V, F = (AAMI_CLASSES.index(c) for c in "NSVF")


def out_of_fold(logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> str:
    """Objective, S, V, F figures, N called F and accuracy of the biased out-of-fold logits."""
    predicted = logits.argmax(1)
    f = class_figures(labels, predicted)
    tp = float(((labels == F) & (predicted == F)).sum())
    f_se = 100 * tp / max(float((labels == F).sum()), 1.0)
    f_ppv = 100 * tp / max(float((predicted == F).sum()), 1.0)
    n_to_f = int(((labels == N) & (predicted == F)).sum())
    margins = dechazal_margins(labels, predicted)
    return (f"{s_f2_objective(logits, labels):.2f} | {min(margins.values()):+.2f} ("
            f"{', '.join(f'{v:+.1f}' for v in margins.values())}) | "
            f"{f['S_se']:.1f} / {f['S_ppv']:.1f} | "
            f"{f['V_se']:.1f} / {f['V_ppv']:.1f} | {f_se:.1f} / {f_ppv:.1f} | {n_to_f} | "
            f"{100 * float((predicted == labels).mean()):.2f}")  # fmt: skip


def strip_accuracy(model_dir: Path, records: list[str], db: Path) -> list[float]:
    """Served-strip accuracy % per record (torch model on the strip's own inputs)."""
    model, config, meta = load_trained(model_dir)
    assert isinstance(model, BeatEnsemble)
    w = BeatWindow(config.before, config.after)
    out = []
    for name in records:
        beats, strip_in, _, y = record_rows(name, db, config.model_fs, w, len(meta["rr_features"]))
        cnn, head, gate = parts(model, beats, strip_in)
        logits = cnn + head * (1 - gate)[:, None]
        out.append(100 * float(np.mean(logits.argmax(1) == y)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a default training's output directory")
    parser.add_argument("--name", required=True, help="the candidate's name (row label)")
    parser.add_argument("--set", action="append", default=[], help="config override k=v")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ecg" / "default.yaml")
    parser.add_argument("--records", default="106,119,208,209,223,201")
    parser.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    parser.add_argument("--cnn-alone", action="store_true", help="also the CNN-alone row")
    parser.add_argument("--save", type=Path, help="write the out-of-fold logits (.npz) here")
    args = parser.parse_args()
    work = args.model_dir.with_name(f"{args.model_dir.name}-r4-{args.name}")
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(args.model_dir, work)
    calibrate._add_feature_model = _capture(calibrate._add_feature_model)  # type: ignore[attr-defined]
    config = load_config(args.config, [*args.set, f"out_dir={work}", "mlflow=false"])
    started = time.process_time()
    trained = train_ecg(config)
    bias = trained.model.logit_bias.numpy()
    caps = None if config.bias_f_max is None else {"F": config.bias_f_max}
    oof = out_of_fold(captured["combined"] + bias, captured["labels"])
    records = args.records.split(",")
    strips = strip_accuracy(work, records, args.db)
    print(f"CPU {time.process_time() - started:.0f} s; model in {work}")
    head = "| candidate | S-F2 objective | de Chazal min margin (S Se, S +P, V Se, V +P; +P at "
    head += "DS2 mix) | S Se / +P | V Se / +P | F Se / +P | DS1 N called F | "
    print(head + "OOF accuracy % | " + " | ".join(records) + " | strip mean % | bias S / V / F |")
    print("|" + " --- |" * (10 + len(records)))
    if args.save:  # the out-of-fold arrays, for diagnoses across candidates
        np.savez(args.save, bias=bias, **captured)
    if args.cnn_alone:  # diagnosis: the CNN members alone on the same inputs, own S-F2 bias
        cnn = captured["cnn"]
        cnn_bias, _ = choose_bias(cnn, captured["labels"], s_f2_objective, caps)
        print(f"| {args.name}: CNN alone | {out_of_fold(cnn + cnn_bias, captured['labels'])} |")
    print(f"| {args.name} {' '.join(args.set)} | {oof} | "
          + " | ".join(f"{a:.1f}" for a in strips)
          + f" | {np.mean(strips):.2f} | {bias[S]:+g} / {bias[V]:+g} / {bias[F]:+g} |")  # fmt: skip


if __name__ == "__main__":
    main()
