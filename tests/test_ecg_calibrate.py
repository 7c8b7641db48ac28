"""Patient-wise cross-validation: whole-record folds, the decision bias, the k-fold
ensemble trained end to end on real MIT-BIH records (reduced size)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from paramstack.config import Settings
from paramstack.ecg.beats import BeatSet
from paramstack.ecg.calibrate import _objective, choose_bias, class_figures, record_folds
from paramstack.ecg.config import load_config
from paramstack.ecg.export import export_ecg_onnx
from paramstack.ecg.train import load_trained, new_model, train_ecg
from paramstack.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
TINY = ROOT / "configs" / "ecg" / "tiny.yaml"
CV = ["arch=ensemble", "arch_kwargs={members: [resnet1d, resnet1d, resnet1d]}", "cv_folds=3"]


def _beats(labels_per_record: list[list[int]]) -> BeatSet:
    labels = np.concatenate([np.asarray(r, dtype=np.int64) for r in labels_per_record])
    record = np.concatenate([np.full(len(r), i) for i, r in enumerate(labels_per_record)])
    n = len(labels)
    names = tuple(f"r{i}" for i in range(len(labels_per_record)))
    return BeatSet(
        np.zeros((n, 2, 4), np.float32), np.zeros((n, 9), np.float32), labels, record, names, labels
    )


def test_folds_hold_whole_records_and_spread_the_ectopic_ones() -> None:
    # records 0 and 1 are the only ones with S beats (class 1): they must not share a fold
    data = _beats([[0, 1, 1, 1], [1, 1, 0], [0, 0], [0, 2], [0, 0, 0], [0]])
    folds = record_folds(data, 3)
    assert np.array_equal(np.sum(folds, axis=0), np.ones(len(data)))  # every beat once
    for mask in folds:
        for r in np.unique(data.record):
            inside = mask[data.record == r]
            assert inside.all() or not inside.any()  # a record is never split
    fold_of = [next(i for i, m in enumerate(folds) if m[data.record == r][0]) for r in range(2)]
    assert fold_of[0] != fold_of[1]
    with pytest.raises(InvalidInput, match="cv_folds"):
        record_folds(data, 7)


def test_bias_recovers_a_shifted_decision() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(5, size=4000, p=[0.8, 0.08, 0.08, 0.02, 0.02]).astype(np.int64)
    logits = rng.normal(0.0, 1.0, (4000, 5)).astype(np.float32)
    logits[np.arange(4000), labels] += 3.0
    logits[:, 1] += 2.5  # S over-called: many N beats land in S
    before = _objective(logits, labels)
    bias, after = choose_bias(logits, labels)
    assert after > before + 5
    assert -3.5 <= bias[1] <= -1.0 and bias[0] == 0.0 and bias[4] == 0.0
    fixed = class_figures(labels, (logits + bias).argmax(axis=1))
    assert fixed["S_ppv"] > class_figures(labels, logits.argmax(axis=1))["S_ppv"]
    unbiased = logits.copy()
    unbiased[:, 1] -= 2.5
    assert choose_bias(unbiased, labels)[1] == pytest.approx(_objective(unbiased, labels), abs=3)


def test_cv_folds_config_is_checked() -> None:
    with pytest.raises(InvalidInput, match="cv_folds"):
        load_config(TINY, ["cv_folds=1"])
    with pytest.raises(InvalidInput, match="one member per fold"):
        load_config(TINY, ["cv_folds=3"])  # tiny is a single resnet1d
    with pytest.raises(InvalidInput, match="one member per fold"):
        load_config(TINY, [*CV[:2], "cv_folds=2"])


@pytest.mark.slow
def test_cross_validated_ensemble_end_to_end(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    out = tmp_path / "cv"
    config = load_config(TINY, [f"db={MITDB}", f"out_dir={out}", "epochs=1", "mlflow=false", *CV])
    trained = train_ecg(config, settings=settings)
    calibration = json.loads((out / "meta.json").read_text())["training"]["calibration"]
    assert sorted(r for fold in calibration["folds"] for r in fold) == ["106", "118", "208"]
    assert all(len(fold) == 1 for fold in calibration["folds"])
    bias = [calibration["bias"][c] for c in ("N", "S", "V", "F", "Q")]
    assert trained.model.logit_bias.tolist() == pytest.approx(bias)
    assert calibration["objective_value"] >= np.mean(
        [calibration["out_of_fold_before_bias"][k] or 0.0 for k in ("S_f1", "V_f1")]
    )
    # members differ: each saw a different pair of records
    first, second = (m.state_dict() for m in list(trained.model.members)[:2])
    assert not torch.equal(first["encoder.0.weight"], second["encoder.0.weight"])

    # a rerun resumes every fold from its checkpoint: no epoch runs again
    steps: list[int] = []
    again = train_ecg(config, progress=lambda s, _t, _l: steps.append(s), settings=settings)
    assert steps == [] and again.model.logit_bias.tolist() == pytest.approx(bias)

    # the bias is inside the model, so the ONNX graph applies it too
    with torch.no_grad():
        trained.model.logit_bias.copy_(torch.tensor([0.0, 1.5, -0.5, -2.0, 0.0]))
    torch.save(
        {
            "config": json.loads((out / "meta.json").read_text())["config"],
            "model": trained.model.state_dict(),
        },
        out / "model.pt",
    )
    model, _, _ = load_trained(out)
    assert model.logit_bias.tolist() == [0.0, 1.5, -0.5, -2.0, 0.0]
    artifact = export_ecg_onnx(out, parity_records=["100"], settings=settings)
    assert artifact.meta["metrics"]["parity_max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(artifact.onnx_path))
    packed = np.zeros((1, 2 * 144 + 9), np.float32)
    packed[0, 288:] = 1.0
    shifted = session.run(None, {session.get_inputs()[0].name: packed})[0]  # logits
    with torch.no_grad():
        model.logit_bias.zero_()
        plain = model(torch.zeros(1, 2, 144), torch.ones(1, 9)).numpy()
    assert (shifted - plain)[0] == pytest.approx([0.0, 1.5, -0.5, -2.0, 0.0], abs=1e-4)


def test_models_saved_before_the_bias_still_load(tmp_path: Path) -> None:
    config = load_config(TINY, [f"out_dir={tmp_path}"])
    model = new_model(config)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("logit_bias")}
    torch.save({"config": dataclasses.asdict(config), "model": state}, tmp_path / "model.pt")
    (tmp_path / "meta.json").write_text("{}")
    loaded, _, _ = load_trained(tmp_path)
    assert loaded.logit_bias.tolist() == [0.0] * 5
    del state["head.0.weight"]
    torch.save({"config": dataclasses.asdict(config), "model": state}, tmp_path / "model.pt")
    with pytest.raises(InvalidInput, match="does not match"):
        load_trained(tmp_path)


@pytest.mark.slow
def test_feature_model_trains_exports_and_serves_strips(tmp_path: Path) -> None:
    """The logistic feature head (here on RR + morphology, the widest input) is fitted per
    fold for the bias, lives in the torch graph, survives ONNX export with parity and reads
    the strip's causally computed features."""
    from paramstack.ecg.beats import BEAT_FEATURES, RR_FEATURES
    from paramstack.ecg.morphology import MORPHOLOGY_FEATURES
    from paramstack.ecg.records import read_record
    from paramstack.ecg.strip import analyze_strip, onnx_runner, strip_options

    settings = Settings(home=tmp_path)
    out = tmp_path / "fm"
    overrides = [f"db={MITDB}", f"out_dir={out}", "epochs=1", "mlflow=false", *CV]
    config = load_config(
        TINY,
        [
            *overrides,
            "feature_model_weight=1.0",
            "feature_model_inputs=rr+morphology",
            "feature_model_f_neutral=true",
        ],
    )
    trained = train_ecg(config, settings=settings)
    meta = json.loads((out / "meta.json").read_text())
    n_read = len(RR_FEATURES) + len(MORPHOLOGY_FEATURES)  # no AF gate: its columns unread
    assert meta["rr_features"] == list(BEAT_FEATURES[:n_read])
    record = meta["training"]["calibration"]["feature_model"]
    assert record["weight"] == 1.0 and record["inputs"] == "rr+morphology"
    head = trained.model.features
    assert head is not None and float(head.weight) == 1.0
    assert float(head.linear.weight.abs().sum()) > 0  # fitted, not left at init
    n_class, f_class = 0, 3  # F-neutral: the head's F row is its N row
    assert torch.equal(head.linear.weight[f_class], head.linear.weight[n_class])
    assert float(head.linear.bias[f_class]) == float(head.linear.bias[n_class])
    # the head moves the logits: with its weight at 0 the model gives other outputs
    beats, rr = torch.zeros(4, 2, 144), torch.rand(4, n_read) + 0.5
    with torch.no_grad():
        full = trained.model(beats, rr)
        head.weight.fill_(0.0)
        plain = trained.model(beats, rr)
        head.weight.fill_(1.0)
    assert not torch.allclose(full, plain)

    artifact = export_ecg_onnx(out, parity_records=["100"], settings=settings)
    assert artifact.meta["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert artifact.meta["input_shape"] == [-1, 2 * 144 + n_read]
    signal = read_record(MITDB, "119")
    start = int(signal.fs * 20)
    session = ort.InferenceSession(str(artifact.onnx_path), providers=["CPUExecutionProvider"])
    strip = signal.signal[start : start + int(signal.fs * 10)]
    result = analyze_strip(onnx_runner(session), strip, signal.fs, **strip_options(artifact.meta))
    assert result["summary"]["beats_classified"] >= 8
    # a model exported before the features (no list, or RR only) still gets its nine columns
    old = {**artifact.meta, "rr_features": None}
    assert strip_options(old)["n_features"] == 9


def test_s_f2_objective_moves_the_s_threshold_towards_sensitivity() -> None:
    """F2 counts a missed S beat four times a false alarm, so its bias calls more S than
    the F1 bias on the same logits: S sensitivity up, S +P down."""
    from paramstack.ecg.calibrate import f_beta, s_f2_objective

    labels = np.array([1, 1, 0, 0, 0], np.int64)
    predicted = np.array([1, 0, 1, 0, 0], np.int64)
    assert f_beta(labels, predicted, 1, 1.0) == pytest.approx(50.0)  # tp 1, fn 1, fp 1
    assert f_beta(labels, predicted, 1, 2.0) == pytest.approx(100 * 5 * 1 / (4 * 2 + 2))
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 2], size=4000, p=[0.9, 0.05, 0.05]).astype(np.int64)
    logits = rng.normal(size=(4000, 5)).astype(np.float32)
    logits[np.arange(4000), labels] += 1.5
    logits[:, 3:] -= 10
    f1_bias, _ = choose_bias(logits, labels)
    f2_bias, f2_value = choose_bias(logits, labels, s_f2_objective)
    f1 = class_figures(labels, (logits + f1_bias).argmax(1))
    f2 = class_figures(labels, (logits + f2_bias).argmax(1))
    assert f2["S_se"] > f1["S_se"] and f2["S_ppv"] < f1["S_ppv"]
    assert f2_value == pytest.approx(s_f2_objective(logits + f2_bias, labels))
    with pytest.raises(InvalidInput, match="bias_objective"):
        load_config(TINY, ["bias_objective=f3"])


def test_reweighted_figures_carry_rates_over_to_ds2s_class_mix() -> None:
    """Se is the population's own; +P is recomputed with every true class rescaled to the
    target totals, so a detector's +P rises where its class is more common."""
    from paramstack.ecg.calibrate import reweighted_figures

    # 10 N (2 called S, 1 called V), 5 S (4 found), 4 V (3 found, 1 called S)
    labels = np.array([0] * 10 + [1] * 5 + [2] * 4, np.int64)
    predicted = np.array([0] * 7 + [1] * 2 + [2] + [1] * 4 + [0] + [2] * 3 + [1], np.int64)
    totals = {"N": 100, "S": 50, "V": 8, "F": 0, "Q": 0}
    figures = reweighted_figures(labels, predicted, totals)
    # S column: N 2/10 of 100 = 20, S 4/5 of 50 = 40, V 1/4 of 8 = 2 → +P 40 / 62
    assert figures["S_se"] == pytest.approx(80.0)
    assert figures["S_ppv"] == pytest.approx(100 * 40 / 62)
    # V column: N 1/10 of 100 = 10, V 3/4 of 8 = 6 → +P 6 / 16
    assert figures["V_se"] == pytest.approx(75.0)
    assert figures["V_ppv"] == pytest.approx(100 * 6 / 16)
    same = {"N": 10, "S": 5, "V": 4, "F": 0, "Q": 0}  # the data's own mix: plain +P
    plain = class_figures(labels, predicted)
    assert reweighted_figures(labels, predicted, same)["S_ppv"] == pytest.approx(plain["S_ppv"])


def test_dechazal_bias_lifts_the_worst_margin_to_the_grids_best() -> None:
    """The exhaustive search returns the grid point with the highest smallest margin: no
    single-class move from it raises that margin, and it beats the unbiased logits."""
    from paramstack.ecg.calibrate import BIAS_GRID, choose_bias_dechazal, dechazal_margins

    rng = np.random.default_rng(1)
    labels = rng.choice(5, size=6000, p=[0.88, 0.03, 0.07, 0.015, 0.005]).astype(np.int64)
    logits = rng.normal(size=(6000, 5)).astype(np.float32)
    logits[np.arange(6000), labels] += 2.5
    logits[:, 2] += 1.0  # V over-called: V +P is the worst margin before the bias
    bias, value = choose_bias_dechazal(logits, labels)
    margins = dechazal_margins(labels, (logits + bias).argmax(1))
    assert value == pytest.approx(min(margins.values()))
    before = dechazal_margins(labels, logits.argmax(1))
    assert min(before, key=lambda k: before[k]) == "V_ppv" and value > min(before.values())
    for c in (1, 2, 3):
        for step in (-0.25, 0.25):
            trial = bias.copy()
            trial[c] = np.clip(trial[c] + step, BIAS_GRID[0], BIAS_GRID[-1])
            assert min(dechazal_margins(labels, (logits + trial).argmax(1)).values()) <= value
    assert load_config(TINY, ["bias_objective=dechazal"]).bias_objective == "dechazal"
