"""Why served strips call N beats F with the feature head (issue 4): the same beats scored with
the head's inputs computed from the 10 s strip (as served) and from the whole record (as in
training), one input group swapped at a time, plus the candidate fixes on the strip inputs.

Every strip beat within 100 ms of a reference beat is scored; the CNN part always sees the
strip's own inputs, so each row differs from "served" only in what its name says.

    python bench/ecg_strip_head.py var/build/ecg-ensemble --records 106,119,208,209,223,201
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from paramstack.ecg.beats import (
    BEAT_FEATURES,
    RR_FEATURES,
    BeatWindow,
    condition,
    resample,
)
from paramstack.ecg.feature_model import neutralise
from paramstack.ecg.models import BeatEnsemble
from paramstack.ecg.records import BEAT_SYMBOLS, SYMBOL_TO_AAMI, read_record
from paramstack.ecg.signal import detect_r_peaks
from paramstack.ecg.strip_inputs import strip_inputs
from paramstack.ecg.train import load_trained

ROOT = Path(__file__).resolve().parents[1]
AAMI = ("N", "S", "V", "F", "Q")
F = AAMI.index("F")
Array = npt.NDArray[np.float32]


def features(x: npt.NDArray[np.float64], peaks: npt.NDArray[np.int64], fs: float,
             w: BeatWindow) -> tuple[Array, Array, npt.NDArray[np.bool_]]:  # fmt: skip
    """(beats, 29 per-beat inputs, kept): ``strip.analyze_strip``'s own code path."""
    return strip_inputs(x, peaks, w, fs, len(BEAT_FEATURES))


def record_rows(name: str, db: Path, fs: float, w: BeatWindow, n_in: int) -> tuple[Array, ...]:
    """For every strip beat matched to a reference beat: strip beats, strip inputs, the same
    beat's whole-record inputs (reference R peaks, as in training) and its AAMI label."""
    rec = read_record(db, name)
    is_beat = np.array([s in BEAT_SYMBOLS for s in rec.beat_symbols])
    ref_s = rec.beat_samples[is_beat] / rec.fs
    labels = np.array([SYMBOL_TO_AAMI[BEAT_SYMBOLS.index(s)] for s in rec.beat_symbols
                       if s in BEAT_SYMBOLS])  # fmt: skip
    whole = condition(resample(rec.signal, rec.fs, fs), fs)
    _, rec_in, rec_keep = features(whole, np.round(ref_s * fs).astype(np.int64), fs, w)
    rec_index = np.flatnonzero(rec_keep)
    out: list[list[Array]] = [[], [], [], []]
    for start in np.arange(0.0, len(rec.signal) / rec.fs - 10, 60.0):
        a = int(start * rec.fs)
        raw = resample(rec.signal[a : a + int(10 * rec.fs)], rec.fs, fs)
        peaks = detect_r_peaks(raw, fs, method="neurokit")
        if len(peaks) < 2:
            continue
        beats, strip_in, keep = features(condition(raw, fs), peaks, fs, w)
        t = start + peaks[keep] / fs
        i = np.abs(ref_s[rec_index][None, :] - t[:, None]).argmin(1)
        ok = np.abs(ref_s[rec_index][i] - t) <= 0.1
        matched = labels[rec_index][i[ok]].astype(np.float32)
        for part, value in zip(out, (beats[ok], strip_in[ok], rec_in[i[ok]], matched), strict=True):
            part.append(value)
    return tuple(np.concatenate(p)[:, :n_in] if k in (1, 2) else np.concatenate(p)
                 for k, p in enumerate(out))  # fmt: skip


def f_minus_n(logits: Array, rows: npt.NDArray[np.bool_]) -> float:
    """Mean F-vs-N log-odds over ``rows``."""
    return float(np.mean(logits[rows, F] - logits[rows, 0]))


def parts(model: BeatEnsemble, beats: Array, x: Array) -> tuple[Array, Array, Array]:
    """(CNN logits + bias, head log-odds, gate) for inputs ``x``."""
    assert model.features is not None
    assert model.af_gate is not None
    b, r = torch.from_numpy(beats), torch.from_numpy(x)
    with torch.inference_mode():
        cnn = model.member_logits(b, r).mean(0) + model.logit_bias
        return cnn.numpy(), model.features(r).numpy(), model.af_gate(r).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--records", default="106,119,208,209,223,201")
    parser.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    parser.add_argument("--bias", help="S,V,F logit bias replacing the model's (a variant's)")
    args = parser.parse_args()
    model, config, meta = load_trained(args.model_dir)
    assert isinstance(model, BeatEnsemble)
    assert model.features is not None
    model.eval()
    if args.bias:
        with torch.no_grad():
            for c, value in zip("SVF", args.bias.split(","), strict=True):
                model.logit_bias[AAMI.index(c)] = float(value)
    print("bias", dict(zip(AAMI, model.logit_bias.tolist(), strict=True)))
    w = BeatWindow(config.before, config.after)
    n_in, n_rr = len(meta["rr_features"]), len(RR_FEATURES)
    n_head = model.features.n_features
    coef = model.features.linear.weight.detach().numpy()
    std = model.features.std.numpy()
    names = list(meta["rr_features"])
    rows: dict[str, list[float]] = {}
    for name in args.records.split(","):
        beats, strip_in, rec_in, y = record_rows(name, args.db, config.model_fs, w, n_in)
        swaps = {
            "served (strip inputs)": strip_in,
            "head on record RR": np.concatenate([rec_in[:, :n_rr], strip_in[:, n_rr:]], 1),
            "head on record P/morph": np.concatenate(
                [strip_in[:, :n_rr], rec_in[:, n_rr:n_head], strip_in[:, n_head:]], 1),
            "head+gate on record inputs": rec_in,
        }  # fmt: skip
        cnn, _, _ = parts(model, beats, strip_in)
        result: dict[str, float] = {}
        for label, x in swaps.items():
            _, head, gate = parts(model, beats, strip_in if label.startswith("served") else x)
            logits = cnn + head * (1 - gate)[:, None]
            result[label] = 100 * float(np.mean(logits.argmax(1) == y))
        _, head, gate = parts(model, beats, strip_in)
        no_f = head.copy()
        neutralise(no_f, 0, F)  # F's log-odds set to N's: the head is neutral on F
        result["fix a: head F column neutral"] = 100 * float(
            np.mean((cnn + no_f * (1 - gate)[:, None]).argmax(1) == y)
        )
        result["CNN only (head off)"] = 100 * float(np.mean(cnn.argmax(1) == y))
        served = cnn + head * (1 - gate)[:, None]
        pred = served.argmax(1)
        n_to_f = int(np.sum((y == 0) & (pred == F)))
        _, head_rec, _ = parts(model, beats, rec_in)
        true_n = y == 0
        # which features move the head's F-vs-N log-odds between strip and record on true N
        dz = (strip_in[true_n, :n_head] - rec_in[true_n, :n_head]).mean(0) / std
        push = float(model.features.weight) * dz * (coef[F] - coef[0])
        top = np.argsort(-np.abs(push))[:3]
        print(f"\n## {name}: {len(y)} beats, served N->F {n_to_f}; head F-N log-odds on true N: "
              f"strip {f_minus_n(head, true_n):+.2f}, record {f_minus_n(head_rec, true_n):+.2f}; "
              f"CNN F-N {f_minus_n(cnn, true_n):+.2f}; largest shifts: "
              + ", ".join(f"{names[k]} {push[k]:+.2f}" for k in top))  # fmt: skip
        for label, value in result.items():
            rows.setdefault(label, []).append(value)
            print(f"| {label} | {value:.1f} |")
    print("\n| variant | " + " | ".join(args.records.split(",")) + " | mean |")
    print("| --- |" + " --- |" * (len(args.records.split(",")) + 1))
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values)
              + f" | {np.mean(values):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
