"""Morphology features against the running template, the scalar-feature contract of
served models, and the logistic feature head's agreement with scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from paramstack.ecg.beats import (
    BEAT_FEATURES,
    GATE_FEATURES,
    RR_FEATURES,
    BeatWindow,
    beat_inputs,
    check_beat_features,
    condition,
    resample,
    running_template,
)
from paramstack.ecg.feature_model import fit_logistic, load_into, log_probabilities, neutralise
from paramstack.ecg.models import FeatureLogistic
from paramstack.ecg.morphology import MORPHOLOGY_FEATURES, morphology_features
from paramstack.ecg.records import read_record
from paramstack.errors import Conflict

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
FS, BEFORE, AFTER = 180.0, 64, 80


def _beat(p_wave: float = 1.0, qrs_width: float = 1.0) -> np.ndarray:
    t = (np.arange(BEFORE + AFTER) - BEFORE) / FS
    p = 0.15 * p_wave * np.exp(-(((t + 0.18) / 0.025) ** 2))
    qrs = np.exp(-((t / (0.012 * qrs_width)) ** 2)) - 0.2 * np.exp(-(((t - 0.03) / 0.01) ** 2))
    tw = 0.3 * np.exp(-(((t - 0.28) / 0.05) ** 2))
    beat = p + qrs + tw
    return np.asarray(beat - beat.mean())


def _features(beats: list[np.ndarray]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    windows = np.stack([_beat()] * 50 + beats) + rng.normal(0, 0.005, (50 + len(beats), 144))
    out = morphology_features(windows, running_template(windows), BEFORE, FS)
    assert out.shape == (len(windows), len(MORPHOLOGY_FEATURES)) and np.isfinite(out).all()
    return {name: out[50:, i] for i, name in enumerate(MORPHOLOGY_FEATURES)}


def test_features_single_out_a_missing_p_wave_and_a_wide_qrs() -> None:
    f = _features([_beat(), _beat(p_wave=0.0), _beat(qrs_width=3.0)])
    normal, no_p, wide = 0, 1, 2
    assert f["qrs_corr"][normal] > 0.99 and f["p_corr"][normal] > 0.9
    assert f["qrs_width_over_template"][normal] == pytest.approx(1.0, abs=0.15)
    assert 0.6 < f["p_energy_over_template"][normal] <= 1.1  # damped by a small floor
    assert f["qrs_deviation"][normal] < 0.02
    # an S-like beat: same QRS, P wave gone
    assert f["qrs_corr"][no_p] > 0.99 and f["qrs_deviation"][no_p] < 0.02
    assert (
        f["p_energy_over_template"][no_p] < 0.3 * f["p_energy_over_template"][normal]
        and f["p_deviation"][no_p] > 0.02
    )
    # a V-like beat: the QRS itself changes
    assert f["qrs_width_over_template"][wide] > 1.5
    assert f["qrs_deviation"][wide] > 5 * f["qrs_deviation"][normal]


def test_features_are_causal_on_a_real_record() -> None:
    record = read_record(MITDB, "119")
    x = condition(resample(record.signal[: int(120 * record.fs)], record.fs, FS), FS)
    peaks = np.round(record.beat_samples * FS / record.fs).astype(np.int64)
    peaks = peaks[peaks < len(x)]
    window = BeatWindow(BEFORE, AFTER)
    _, morph, keep = beat_inputs(x, peaks, window, FS)
    i = 100  # past the warm-up; the future after beat i's window must not move its features
    cut = int(peaks[keep][i]) + AFTER
    later = x.copy()
    later[cut:] *= -3.0
    _, morph_later, _ = beat_inputs(later, peaks, window, FS)
    np.testing.assert_array_equal(morph_later[: i + 1], morph[: i + 1])
    assert not np.allclose(morph_later[i + 1 :], morph[i + 1 :])
    # 119's V beats (bigeminy) change the QRS: lower correlation with the template
    symbols = np.asarray(record.beat_symbols)[: len(peaks)][keep]
    qrs_corr = morph[:, MORPHOLOGY_FEATURES.index("qrs_corr")]
    assert np.median(qrs_corr[symbols == "V"]) < np.median(qrs_corr[symbols == "N"]) - 0.2


def test_served_models_declare_a_prefix_of_the_features() -> None:
    assert check_beat_features(None) == len(RR_FEATURES)  # exported before the features
    assert check_beat_features(list(RR_FEATURES)) == len(RR_FEATURES)
    assert check_beat_features(list(BEAT_FEATURES)) == len(BEAT_FEATURES)
    with pytest.raises(Conflict, match="retrain"):
        check_beat_features(["pre_rr_s", "qrs_corr"])


def test_feature_head_reproduces_the_logistic_regression() -> None:
    rng = np.random.default_rng(1)
    labels = rng.choice([0, 1, 2, 3], size=600, p=[0.7, 0.1, 0.15, 0.05]).astype(np.int64)
    x = (rng.normal(size=(600, 6)) + 0.4 * labels[:, None] * [1.0, -0.5, 0, 0.3, 0, 2.0]) * [
        1,
        10,
        0.1,
        1,
        5,
        1,
    ]
    x = x.astype(np.float32)
    model = fit_logistic(x, labels)
    expected = log_probabilities(model, x, 5)  # class 4 never seen
    head = FeatureLogistic(6, 5)
    load_into(head, model, weight=0.5)
    with torch.no_grad():
        got = head(torch.from_numpy(np.concatenate([x, np.ones((600, 2), np.float32)], 1)))
    got_np = got.numpy()
    # the same log-odds up to a per-beat constant, times the weight (where scikit-learn's
    # probabilities are not clipped at 1e-12)
    fine = (expected[:, :4] > -20).all(axis=1)
    assert fine.mean() > 0.9
    np.testing.assert_allclose(
        (got_np[:, :4] - got_np[:, :1])[fine],
        0.5 * (expected[:, :4] - expected[:, :1])[fine],
        atol=1e-3,
    )
    assert (got_np.argmax(1) == expected.argmax(1)).all() and (got_np[:, 4] < -10).all()
    load_into(head, model, weight=0.0)
    assert float(head(torch.from_numpy(x)).abs().max()) == 0.0
    # F-neutral head: class 3 gets class 0's log-odds, the others are unchanged
    load_into(head, model, weight=0.5, neutral=(0, 3))
    with torch.no_grad():
        neutral = head(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(neutral[:, 3], neutral[:, 0])
    np.testing.assert_allclose(neutral[:, :3], got_np[:, :3], atol=1e-5)
    assert (got_np[:, 3] != got_np[:, 0]).all()
    oof = expected.copy()
    neutralise(oof, 0, 3)
    np.testing.assert_array_equal(oof[:, 3], expected[:, 0])


def test_feature_model_inputs_are_prefixes_and_checked() -> None:
    from paramstack.ecg.config import load_config
    from paramstack.ecg.train import _member_settings, feature_model_columns
    from paramstack.errors import InvalidInput

    assert feature_model_columns("rr") == len(RR_FEATURES)
    assert feature_model_columns("rr+morphology") == len(BEAT_FEATURES) - len(GATE_FEATURES)
    p_wave = BEAT_FEATURES[len(RR_FEATURES) : feature_model_columns("rr+p")]
    assert len(p_wave) == 4 and all(name.startswith("p_") for name in p_wave)
    tiny = Path(__file__).resolve().parents[1] / "configs" / "ecg" / "tiny.yaml"
    with pytest.raises(InvalidInput, match="feature_model_inputs"):
        load_config(tiny, ["arch=ensemble", "feature_model_inputs=qrs"])
    with pytest.raises(InvalidInput, match="needs arch ensemble"):
        load_config(tiny, ["feature_model_weight=1.0"])  # tiny is a single resnet1d
    # the feature model is fitted after the CNN members: changing it keeps their checkpoints
    a = load_config(tiny, ["arch=ensemble", "feature_model_weight=1.0"])
    b = load_config(tiny, ["arch=ensemble", "feature_model_weight=2.0"])
    c = load_config(tiny, ["arch=ensemble", "feature_model_weight=2.0", "lr=0.01"])
    assert _member_settings(a) == _member_settings(b) != _member_settings(c)
    # so is where the run writes and logs: a copied training directory resumes its members
    moved = load_config(tiny, ["arch=ensemble", "out_dir=elsewhere", "mlflow=false"])
    assert _member_settings(moved) == _member_settings(a)
