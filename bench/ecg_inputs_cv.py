"""DS1 patient-wise CV of beat-input variants: which template channel (and RR features) to ship.

Every variant trains one ResNet-1D per fold of `configs/ecg/default.yaml`'s record folds (what
`ecg.calibrate.train_cross_validated` trains), scores each DS1 beat with the member that never
saw its patient, and prints the out-of-fold figures before and after the decision bias chosen
by the default objective (mean S/V F1). DS2 is never read. Each variant costs ~200 s CPU.

    python bench/ecg_inputs_cv.py centred:8 causal:45 causal:45+rr --seed 0
    python bench/ecg_inputs_cv.py causal:45 --set class_weighting=inverse_sqrt
    python bench/ecg_inputs_cv.py causal:45 --set before=90   # a wider pre-R window
    python bench/ecg_inputs_cv.py causal:45 --s-weight 3      # a loss weight on S only
    python bench/ecg_inputs_cv.py causal:45 --s-oversample 4  # S beats repeated 4x per epoch

A variant is ``centred:K`` (median of ±K neighbours, the earlier default) or ``causal:N`` (the
shipped running template, median of the last N beats), optionally ``+rr`` for four extra
neighbouring-beat RR features (previous pre-RR and next post-RR over the local mean, pre-RR over
the previous pre-RR, post over pre), and/or ``+tpl`` for the template itself (z-scored) as a third
beat channel.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

import paramstack.ecg.beats as beats_module
import paramstack.ecg.train as train_module
from paramstack.ecg.beats import BeatSet, condition, resample, rr_features
from paramstack.ecg.calibrate import _log_probabilities, choose_bias, class_figures, record_folds
from paramstack.ecg.config import load_config
from paramstack.ecg.models import build_model
from paramstack.ecg.records import BEAT_SYMBOLS, SYMBOL_TO_AAMI, read_record, split_records
from paramstack.train.determinism import torch_run_state

ROOT = Path(__file__).resolve().parents[1]
Windows = npt.NDArray[np.float64]


def _raw(db: Path, fs: float, before: int, after: int) -> list[dict[str, Any]]:
    """Per DS1 record: mean-removed beat windows, all beat times, edge mask, AAMI labels."""
    out = []
    for name in split_records(db, "ds1"):
        record = read_record(db, name)
        is_beat = np.array([s in BEAT_SYMBOLS for s in record.beat_symbols])
        samples = record.beat_samples[is_beat]
        symbols = [BEAT_SYMBOLS.index(s) for s in record.beat_symbols if s in BEAT_SYMBOLS]
        x = condition(resample(record.signal, record.fs, fs), fs)
        peaks = np.round(samples * fs / record.fs).astype(np.int64)
        keep = (peaks - before >= 0) & (peaks + after <= len(x))
        w = x[(peaks[keep] - before)[:, None] + np.arange(before + after)[None]]
        labels = np.asarray(SYMBOL_TO_AAMI, dtype=np.int64)[symbols][keep]
        out.append({"name": name, "w": w - w.mean(1, keepdims=True), "t": samples / record.fs,
                    "keep": keep, "labels": labels})  # fmt: skip
    return out


def _centred(w: Windows, k: int) -> Windows:
    k = min(k, (len(w) - 1) // 2)
    padded = np.pad(w, ((k, k), (0, 0)), mode="reflect")
    return np.asarray(np.median(sliding_window_view(padded, 2 * k + 1, axis=0), axis=2))


def _causal(w: Windows, n: int) -> Windows:
    beats_module.TEMPLATE_BEATS = n
    return beats_module.running_template(w)


def _extra_rr(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    rr = np.diff(t)
    pre, post = np.concatenate([[rr[0]], rr]), np.concatenate([rr, [rr[-1]]])
    local = rr_features(t)[:, 2].astype(np.float64)
    prev_pre = np.concatenate([[pre[0]], pre[:-1]])
    next_post = np.concatenate([post[1:], [post[-1]]])
    extra = np.stack([prev_pre / local, next_post / local, pre / prev_pre, post / pre], 1)
    return extra.astype(np.float32)


def _s_weighted(weight: float) -> Any:
    """A class_weights replacement: ``weight`` on S, 1 on the other classes present."""
    import torch

    def class_weights(labels: npt.NDArray[np.int64], _scheme: str, n_classes: int) -> Any:
        w = (np.bincount(labels, minlength=n_classes) > 0).astype(np.float32)
        w[1] *= weight
        return torch.tensor(w)

    return class_weights


def _s_oversampled(factor: int) -> Any:
    """An epoch_indices replacement: the capped epoch with every S beat repeated ``factor``
    times (lever 3b; the jitter/noise augmentation makes the repeats differ)."""
    original = train_module.epoch_indices

    def epoch_indices(labels: npt.NDArray[np.int64], cap: int | None, seed: int) -> Any:
        order = original(labels, cap, seed)
        extra = np.repeat(order[labels[order] == 1], factor - 1)
        return np.random.default_rng(seed + 7).permutation(np.concatenate([order, extra]))

    return epoch_indices


def variant_beats(raw: list[dict[str, Any]], variant: str) -> BeatSet:
    kind, _, rest = variant.partition(":")
    size, *extras = rest.split("+")
    parts = []
    for r in raw:
        w = r["w"]
        template = _centred(w, int(size)) if kind == "centred" else _causal(w, int(size))
        own = w / (w.std(1, keepdims=True) + 1e-6)
        deviation = (w - template) / (template.std(1, keepdims=True) + 1e-6)
        rr = rr_features(r["t"])
        if "rr" in extras:
            rr = np.concatenate([rr, _extra_rr(r["t"])], 1)
        stack = [own, deviation]
        if "tpl" in extras:
            stack.append(template / (template.std(1, keepdims=True) + 1e-6))
        labels, channels = r["labels"], np.stack(stack, 1).astype(np.float32)
        record = np.zeros(len(labels), dtype=np.int64)
        parts.append(BeatSet(channels, rr[r["keep"]], labels, record, (r["name"],), labels.copy()))
    return BeatSet.concat(parts)


def run_variant(
    raw: list[dict[str, Any]],
    variant: str,
    seed: int,
    overrides: list[str],
    save: Path | None = None,
) -> dict[str, Any]:
    data = variant_beats(raw, variant)
    train_module.RR_FEATURES = tuple(f"rr{i}" for i in range(data.rr.shape[1]))
    n_channels = data.beats.shape[1]

    def new_model(config: Any, arch: str | None = None) -> Any:
        n_rr = len(train_module.RR_FEATURES)
        return build_model(arch or config.arch, window=config.before + config.after, n_rr=n_rr,
                           n_classes=5, channels=n_channels)  # fmt: skip

    train_module.new_model = new_model
    started = time.process_time()
    with TemporaryDirectory() as tmp:
        config = load_config(
            ROOT / "configs/ecg/default.yaml", [f"seed={seed}", "mlflow=false", *overrides]
        )
        logits = np.zeros((len(data), 5), np.float32)
        with torch_run_state(config.seed, 1):
            for i, held in enumerate(record_folds(data, config.cv_folds)):
                member, _ = train_module.fit_model(
                    config, data.select(~held), "resnet1d", checkpoint_path=Path(tmp) / f"{i}.pt"
                )
                logits[held] = _log_probabilities(member, data.select(held))
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        np.savez(save / f"{variant.replace(':', '_')}-seed{seed}.npz", logits=logits,
                 labels=data.labels)  # fmt: skip
    bias, objective = choose_bias(logits, data.labels)
    after = class_figures(data.labels, (logits + bias).argmax(1))
    return {"variant": variant, "objective": objective, "cpu_s": time.process_time() - started,
            **after}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="centred:K | causal:N, optionally +rr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="config key=value")
    parser.add_argument("--s-weight", type=float, help="loss weight on S (others 1; lever 2)")
    parser.add_argument("--s-oversample", type=int, help="repeat S beats N times per epoch")
    parser.add_argument("--save-logits", type=Path, help="write each variant's OOF logits here")
    parser.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    args = parser.parse_args()
    if args.s_weight is not None:
        train_module.class_weights = _s_weighted(args.s_weight)
    if args.s_oversample is not None:
        train_module.epoch_indices = _s_oversampled(args.s_oversample)
    window = load_config(ROOT / "configs/ecg/default.yaml", args.set)  # --set before=90 widens
    raw = _raw(args.db, window.model_fs, window.before, window.after)
    print("| variant | objective | S Se / +P | V Se / +P | CPU s |")
    print("| --- | --- | --- | --- | --- |")
    for variant in args.variants:
        r = run_variant(raw, variant, args.seed, args.set, args.save_logits)
        print(f"| {variant} | {r['objective']:.2f} | {r['S_se']:.1f} / {r['S_ppv']:.1f} | "
              f"{r['V_se']:.1f} / {r['V_ppv']:.1f} | {r['cpu_s']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
