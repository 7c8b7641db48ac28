"""AAMI mapping, record splits, real MIT-BIH reading, RR features, beat windows, EC57 metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paramstack.ecg.beats import (
    BEAT_CHANNELS,
    BEAT_FEATURES,
    RR_FEATURES,
    TEMPLATE_BEATS,
    BeatWindow,
    beat_windows,
    condition,
    record_beats,
    resample,
    rr_features,
    running_template,
)
from paramstack.ecg.metrics import beats_de_chazal, class_metrics, confusion_matrix, ec57_report
from paramstack.ecg.records import (
    AAMI_CLASSES,
    AAMI_MAP,
    DS1,
    DS2,
    PACED_RECORDS,
    intra_patient_split,
    list_records,
    read_record,
    split_records,
)
from paramstack.errors import InvalidInput, NotFound

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"


def test_aami_mapping_follows_ec57() -> None:
    expected = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
    for cls, symbols in expected.items():
        assert all(AAMI_MAP[s] == cls for s in symbols)
    assert set(AAMI_MAP) == set("".join(expected.values()))
    assert "+" not in AAMI_MAP and "~" not in AAMI_MAP  # rhythm / noise marks are not beats


def test_de_chazal_split_is_disjoint_and_excludes_paced_records() -> None:
    assert len(DS1) == len(DS2) == 22 and not set(DS1) & set(DS2)
    assert not (set(DS1) | set(DS2)) & set(PACED_RECORDS)
    assert split_records(MITDB, "ds1") == list(DS1)
    assert split_records(MITDB, "ds2") == list(DS2)
    everything = split_records(MITDB, "all")
    assert len(everything) == 44 and not set(everything) & set(PACED_RECORDS)
    assert len(list_records(MITDB)) == 48
    with pytest.raises(InvalidInput, match="valid: ds1, ds2, all"):
        split_records(MITDB, "ds3")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        list_records(MITDB / "missing")


def test_intra_patient_split_is_a_partition() -> None:
    train, test = intra_patient_split(1000, 0.2, seed=1)
    assert len(test) == 200 and not set(train) & set(test)
    assert sorted({*train, *test}) == list(range(1000))


def test_read_record_prefers_mlii() -> None:
    rec = read_record(MITDB, "114")  # MLII is the second channel in 114
    assert rec.lead == "MLII" and rec.fs == 360.0 and len(rec.signal) == 650_000
    rec100 = read_record(MITDB, "100")
    labels = [label for label in rec100.aami_labels if label is not None]
    assert labels.count("N") == 2239 and labels.count("S") == 33 and labels.count("V") == 1
    assert rec100.rhythm[0] == (18, "(N")
    with pytest.raises(NotFound):
        read_record(MITDB, "999")


def test_rr_features_by_hand() -> None:
    feats = rr_features(np.array([0.0, 1.0, 2.0, 2.5, 3.5]))
    col = {name: feats[:, i] for i, name in enumerate(RR_FEATURES)}
    np.testing.assert_allclose(col["pre_rr_s"], [1, 1, 1, 0.5, 1])
    np.testing.assert_allclose(col["post_rr_s"], [1, 1, 0.5, 1, 1])
    np.testing.assert_allclose(col["record_rr_s"], 0.875)
    assert col["local_rr_s"][3] == pytest.approx(0.875)  # mean of 1, 1, 1, 0.5
    assert col["pre_over_local"][3] == pytest.approx(0.5 / 0.875)
    assert col["pre_over_record"][3] == pytest.approx(0.5 / 0.875)
    regular = np.arange(40) * 0.8
    regular[20] -= 0.3  # one premature beat does not make a rhythm irregular
    feats = rr_features(regular)
    assert np.abs(feats[:, RR_FEATURES.index("rr_irregularity")]).max() < 1e-6
    assert feats[20, RR_FEATURES.index("pre_over_local")] < 0.7
    irregular = np.cumsum(np.random.default_rng(0).uniform(0.4, 1.2, 40))
    assert rr_features(irregular)[:, RR_FEATURES.index("rr_irregularity")].min() > 0.1
    with pytest.raises(InvalidInput):
        rr_features(np.array([1.0]))


def test_beat_windows_drop_edge_beats_and_normalise() -> None:
    x = np.sin(np.linspace(0, 40 * np.pi, 2000)) * 3.0 + 1.0
    beats, keep = beat_windows(x, np.array([10, 500, 1000, 1500, 1995]), BeatWindow(64, 80))
    assert keep.tolist() == [False, True, True, True, False]
    assert beats.shape == (3, BEAT_CHANNELS, 144)
    np.testing.assert_allclose(beats[:, 0].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(beats[:, 0].std(axis=1), 1, atol=1e-3)


def test_running_template_is_causal_and_covers_a_short_strip() -> None:
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(200, 16))
    template = running_template(windows)
    i = 120
    np.testing.assert_allclose(template[i], np.median(windows[i - TEMPLATE_BEATS + 1 : i + 1], 0))
    later = windows.copy()
    later[i + 1 :] += 100.0  # the future must not move the template of beat i or any before
    np.testing.assert_array_equal(running_template(later)[: i + 1], template[: i + 1])
    assert not np.allclose(running_template(later)[i + 1], template[i + 1])
    # warm-up: the first beats share the median of the first TEMPLATE_BEATS
    np.testing.assert_allclose(
        template[:TEMPLATE_BEATS],
        np.median(windows[:TEMPLATE_BEATS], 0)[None].repeat(TEMPLATE_BEATS, 0),
    )
    strip = windows[:12]  # a 10 s strip: every beat's template is the strip's median beat
    np.testing.assert_allclose(running_template(strip), np.median(strip, 0)[None].repeat(12, 0))


@pytest.mark.parametrize(("name", "start_s"), [("106", 260), ("119", 10), ("223", 20)])
def test_template_channel_singles_out_ventricular_beats_in_a_10s_strip(
    name: str, start_s: int
) -> None:
    record = read_record(MITDB, name)
    lo, hi = int(start_s * record.fs), int((start_s + 10) * record.fs)
    x = condition(resample(record.signal[lo:hi], record.fs, 180.0), 180.0)
    inside = (record.beat_samples >= lo) & (record.beat_samples < hi)
    peaks = np.round((record.beat_samples[inside] - lo) * 180.0 / record.fs).astype(np.int64)
    symbols = np.asarray(record.beat_symbols)[inside]
    beats, keep = beat_windows(x, peaks, BeatWindow(64, 80))
    deviation = np.sqrt((beats[:, 1] ** 2).mean(axis=1))
    is_v = symbols[keep] == "V"
    assert is_v.any() and deviation[is_v].min() > 2 * deviation[~is_v].max()


def test_resample_keeps_frequency_at_any_rate() -> None:
    for fs_in in (360.0, 250.0, 500.0):
        t = np.arange(int(fs_in * 4)) / fs_in
        y = resample(np.sin(2 * np.pi * 5 * t), fs_in, 180.0)
        assert len(y) == pytest.approx(4 * 180, abs=1)
        t_out = np.arange(len(y)) / 180.0
        inner = slice(20, -20)
        np.testing.assert_allclose(y[inner], np.sin(2 * np.pi * 5 * t_out)[inner], atol=0.02)


def test_record_beats_on_mitdb_100() -> None:
    data = record_beats(read_record(MITDB, "100"), 180.0, BeatWindow(64, 80))
    assert data.beats.shape[1:] == (BEAT_CHANNELS, 144) and data.rr.shape[1] == len(BEAT_FEATURES)
    counts = np.bincount(data.labels, minlength=5)
    assert counts[AAMI_CLASSES.index("S")] == 33 and counts[AAMI_CLASSES.index("N")] >= 2237
    assert np.isfinite(data.beats).all() and np.isfinite(data.rr).all()


def test_ec57_metrics_on_a_hand_computed_confusion_matrix() -> None:
    # rows reference N S V F Q; columns predicted
    cm = np.array(
        [[90, 5, 3, 2, 0], [2, 8, 0, 0, 0], [1, 0, 18, 1, 0], [0, 0, 1, 3, 0], [0, 0, 0, 0, 1]]
    )
    y_true = np.repeat(np.repeat(np.arange(5), 5), cm.ravel())
    y_pred = np.repeat(np.tile(np.arange(5), 5), cm.ravel())
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 5), cm)
    m = class_metrics(cm, AAMI_CLASSES)
    s, v = m["classes"]["S"], m["classes"]["V"]
    assert s["se"] == pytest.approx(8 / 10) and s["ppv"] == pytest.approx(8 / 13)
    assert s["fpr"] == pytest.approx(5 / (135 - 10))
    assert s["f1"] == pytest.approx(2 * 0.8 * (8 / 13) / (0.8 + 8 / 13))
    assert v["se"] == pytest.approx(18 / 20) and v["ppv"] == pytest.approx(18 / 22)
    assert m["accuracy"] == pytest.approx(120 / 135)
    report = ec57_report(
        y_true, y_pred, np.zeros(len(y_true), dtype=np.int64), ("r1",), AAMI_CLASSES
    )
    assert report["per_record"]["r1"]["accuracy"] == pytest.approx(120 / 135)
    assert beats_de_chazal({"S_se": 80, "S_ppv": 61.5, "V_se": 90, "V_ppv": 81.8}) is False
    assert beats_de_chazal({"S_se": 80, "S_ppv": 61.5, "V_se": 90, "V_ppv": 90}) is True


def test_a_model_trained_on_other_beat_channels_is_refused() -> None:
    from paramstack.ecg.strip import strip_options
    from paramstack.errors import Conflict

    meta = {"task": "ecg-beats", "model_fs": 180.0, "window": {"before": 64, "after": 80}}
    meta["class_labels"] = list(AAMI_CLASSES)
    assert strip_options({**meta, "beat_channels": ["beat_zscore", "beat_minus_running_template"]})
    old = {**meta, "beat_channels": ["beat_zscore", "beat_minus_neighbour_template"]}
    with pytest.raises(Conflict, match="retrain"):
        strip_options(old)
