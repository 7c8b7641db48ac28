"""Strip-like scalar inputs (session 7, ECG round 4): training tiles a record into 10 s strips
and computes each beat's inputs with the very code a served strip runs; the F-bias cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from paramstack.config import Settings
from paramstack.ecg.beats import BEAT_FEATURES, BeatWindow, condition, resample
from paramstack.ecg.calibrate import choose_bias, s_f2_objective
from paramstack.ecg.config import load_config
from paramstack.ecg.dataset import load_beats
from paramstack.ecg.records import BEAT_SYMBOLS, read_record
from paramstack.ecg.signal import detect_r_peaks
from paramstack.ecg.strip import analyze_strip
from paramstack.ecg.strip_inputs import strip_inputs, strip_like_columns, strip_starts
from paramstack.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
TINY = ROOT / "configs" / "ecg" / "tiny.yaml"
FS, WINDOW = 180.0, BeatWindow(64, 80)
LENGTH = 1800  # a 10 s strip at FS


def record_at_model_rate(
    name: str, seconds: float = 60.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The record's first ``seconds`` at the tiny model's rate, with its reference beats."""
    record = read_record(MITDB, name)
    is_beat = np.array([s in BEAT_SYMBOLS for s in record.beat_symbols])
    x = resample(record.signal[: int(seconds * record.fs)], record.fs, FS)
    peaks = np.round(record.beat_samples[is_beat] * (FS / record.fs)).astype(np.int64)
    return x, peaks[peaks < len(x)]


def test_served_strip_reads_the_shared_strip_inputs() -> None:
    x, _ = record_at_model_rate("208")
    strip = x[LENGTH : 2 * LENGTH]
    seen: dict[str, Any] = {}

    def capture(beats: Any, features: Any) -> Any:
        seen.update(beats=beats, features=features)
        return np.zeros((len(beats), 5), np.float32)

    analyze_strip(capture, strip, FS, model_fs=FS, window=(64, 80),
                  labels=list("NSVFQ"), n_features=len(BEAT_FEATURES))  # fmt: skip
    peaks = detect_r_peaks(strip, FS, method="neurokit")
    beats, features, _ = strip_inputs(condition(strip, FS), peaks, WINDOW, FS, len(BEAT_FEATURES))
    assert np.array_equal(seen["features"], features)
    assert np.array_equal(seen["beats"], beats)


def test_training_columns_are_each_beats_strip_inputs() -> None:
    x, peaks = record_at_model_rate("208")  # 60 s, bigeminy-rich
    columns = strip_like_columns(x, peaks, WINDOW, FS)
    fits = (peaks >= WINDOW.before) & (peaks + WINDOW.after <= len(x))
    assert np.isfinite(columns[fits]).all()  # every beat a record window holds has inputs
    starts = strip_starts(len(x), FS)
    assert starts[:2] == [0, LENGTH] and LENGTH // 2 in starts and starts[-1] == len(x) - LENGTH
    expected = np.full_like(columns, np.nan)
    for start in starts:  # priority order: the first strip that holds a beat's window wins
        inside = np.flatnonzero((peaks >= start) & (peaks < start + LENGTH))
        segment = condition(x[start : start + LENGTH], FS)
        _, features, keep = strip_inputs(segment, peaks[inside] - start, WINDOW, FS, 29)
        rows = inside[keep]
        fresh = np.isnan(expected[rows, 0])
        expected[rows[fresh]] = features[fresh]
    assert np.array_equal(columns, expected, equal_nan=True)
    # the beats cut by the first tiling's edges come from the shifted tiling, not the record
    edge = (peaks % LENGTH < WINDOW.before) | (peaks % LENGTH + WINDOW.after > LENGTH)
    assert (edge & fits).sum() >= 2
    whole = strip_inputs(condition(x, FS), peaks, WINDOW, FS, 29)[1]
    record_average = list(BEAT_FEATURES).index("record_rr_s")
    strip_means = set(np.round(columns[fits, record_average], 5))
    assert len(strip_means) > 3  # one "record" average per strip, not the record's
    assert not np.allclose(columns[fits][:, record_average], whole[:, record_average])


def test_load_beats_strip_inputs_align_with_the_record_beats(tmp_path: Path) -> None:
    record = load_beats(MITDB, ["119"], FS, WINDOW, cache_dir=tmp_path)
    strip = load_beats(MITDB, ["119"], FS, WINDOW, cache_dir=tmp_path, scalar_inputs="strip")
    cached = load_beats(MITDB, ["119"], FS, WINDOW, cache_dir=tmp_path, scalar_inputs="strip")
    assert np.array_equal(strip.labels, record.labels) and np.array_equal(strip.beats, record.beats)
    assert strip.rr.shape == record.rr.shape and np.isfinite(strip.rr).all()
    assert np.array_equal(cached.rr, strip.rr)
    assert not np.allclose(strip.rr[:, 3], record.rr[:, 3])  # record_rr_s: the strip's mean
    with pytest.raises(InvalidInput, match="scalar_inputs"):
        load_beats(MITDB, ["119"], FS, WINDOW, scalar_inputs="window")


def test_f_bias_cap_keeps_f_from_being_a_dump() -> None:
    # logits per group (N, S, V, F, Q): N beats that look S but a little F; true S beats that
    # a lower S offset would lose; a raised F offset moves the look-alikes into F instead
    groups = [(1000, 0, [2.0, 0.0, 0.0, 0.0, 0.0]), (300, 0, [0.0, 1.0, 0.0, -0.5, 0.0]),
              (200, 1, [1.0, 1.5, 0.0, -3.0, 0.0]), (100, 2, [0.0, 0.0, 3.0, 0.0, 0.0]),
              (20, 3, [0.0, 0.0, 0.0, 2.5, 0.0])]  # fmt: skip
    logits = np.concatenate([np.tile(np.float32(row), (n, 1)) for n, _, row in groups])
    labels = np.concatenate([np.full(n, c, np.int64) for n, c, _ in groups])
    free, _ = choose_bias(logits, labels, s_f2_objective)
    capped, _ = choose_bias(logits, labels, s_f2_objective, {"F": 0.0})
    assert free[3] > 0.0  # uncapped, F soaks up would-be S false alarms
    assert capped[3] <= 0.0
    n_to_f = int(((labels == 0) & ((logits + free).argmax(1) == 3)).sum())
    assert n_to_f >= 300 and int(((labels == 0) & ((logits + capped).argmax(1) == 3)).sum()) == 0
    with pytest.raises(InvalidInput, match="scalar_inputs"):
        load_config(TINY, ["scalar_inputs=window"])


@pytest.mark.slow
def test_head_fitted_on_strip_inputs_end_to_end(tmp_path: Path) -> None:
    """``scalar_inputs: strip``: the head is fitted and evaluated on the strip-like inputs
    (its standardisation is their mean), the members resume, old configs keep "record"."""
    from paramstack.ecg.evaluate import evaluate_model
    from paramstack.ecg.train import train_ecg

    assert load_config(TINY).scalar_inputs == "record" and load_config(TINY).bias_f_max is None
    settings = Settings(home=tmp_path)
    out = tmp_path / "strip"
    records = ["106", "201", "208"]
    overrides = [f"db={MITDB}", f"out_dir={out}", "epochs=1", "mlflow=false", "arch=ensemble",
                 "arch_kwargs={members: [resnet1d, resnet1d, resnet1d]}", "cv_folds=3",
                 f"records={json.dumps(records)}", "max_beats_per_record=400",
                 "feature_model_weight=2.0", "feature_model_inputs=rr+p",
                 "feature_model_af_gate=true", "bias_objective=s_f2",
                 "scalar_inputs=strip", "bias_f_max=0"]  # fmt: skip
    trained = train_ecg(load_config(TINY, overrides), settings=settings)
    calibration = json.loads((out / "meta.json").read_text())["training"]["calibration"]
    assert calibration["scalar_inputs"] == "strip" and calibration["bias"]["F"] <= 0.0
    cache = tmp_path / "cache" / "ecg"
    strip = load_beats(MITDB, records, FS, WINDOW, cache_dir=cache, scalar_inputs="strip")
    record = load_beats(MITDB, records, FS, WINDOW, cache_dir=cache)
    keep = np.concatenate([np.flatnonzero(strip.record == r)[:400] for r in range(3)])
    head = trained.model.features
    assert head is not None
    n = head.n_features
    fitted_mean = head.mean.numpy()
    assert np.allclose(fitted_mean, strip.rr[keep, :n].mean(0), rtol=1e-4, atol=1e-5)
    assert not np.allclose(fitted_mean, record.rr[keep, :n].mean(0), rtol=1e-3, atol=1e-4)
    with torch.no_grad():
        member_mean = trained.model.members[0].rr_mean.numpy()  # members: record inputs
    assert not np.allclose(member_mean, strip.rr[keep, :9].mean(0), rtol=1e-3)
    report = evaluate_model(out, records=["119"], settings=settings)
    assert report["model_scalar_inputs"] == "strip" and report["scalar_inputs"] == "record"
    assert report["served_strip"]["scalar_inputs"] == "strip" and report["served_strip"]["headline"]


def test_strip_members_retrains_members_and_needs_strip_inputs() -> None:
    from paramstack.ecg.train import _member_settings

    old = load_config(TINY)
    strip_head = load_config(TINY, ["scalar_inputs=strip", "bias_f_max=0"])
    strip_all = load_config(TINY, ["scalar_inputs=strip", "strip_members=true"])
    saved_before = _member_settings(old)
    assert saved_before is not None
    assert _member_settings(strip_head) == _member_settings(old) == saved_before  # resumes
    assert "strip_members" not in saved_before  # checkpoints saved before the option match
    assert _member_settings(strip_all) != _member_settings(old)  # members are retrained
    with pytest.raises(InvalidInput, match="strip_members"):
        load_config(TINY, ["strip_members=true"])


def _part(labels: list[int], predicted: list[int], kind: str) -> dict[str, Any]:
    from paramstack.ecg.evaluate import INPUT_LABELS
    from paramstack.ecg.metrics import beats_de_chazal, de_chazal_beaten, ec57_report, headline
    from paramstack.ecg.records import AAMI_CLASSES

    y, p = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    part = ec57_report(y, p, np.zeros(len(y), np.int64), ("100",), AAMI_CLASSES)
    figures = headline(part)
    part.update(headline=figures, beats_de_chazal_2004=beats_de_chazal(figures),
                de_chazal_2004_beaten=de_chazal_beaten(figures), scalar_inputs=kind,
                inputs_label=INPUT_LABELS[kind])  # fmt: skip
    return part


def test_report_shows_served_strip_figures_beside_record_ones(tmp_path: Path) -> None:
    """Session 7: the Markdown report puts the strip-input row under the record-input row,
    each with the de Chazal figures it beats; an unknown ``inputs`` is refused up front."""
    from paramstack.ecg.evaluate import evaluate_model, markdown_report, write_report
    from paramstack.ecg.metrics import PUBLISHED_ANCHORS, TARGETS

    truth = [0] * 80 + [1] * 10 + [2] * 10
    record = _part(truth, truth, "record")  # every beat right: beats every anchor
    strip = _part(truth, [0] * 80 + [0] * 6 + [1] * 4 + [2] * 10, "strip")  # S Se 40 %
    report = {**record, "served_strip": strip, "split": "custom", "split_note": "inter-patient",
              "database": "db", "records": ["100"], "r_peaks": "reference annotations",
              "model_dir": "m", "arch": "ensemble", "model_scalar_inputs": "record",
              "anchors": PUBLISHED_ANCHORS, "targets": TARGETS}  # fmt: skip
    text = markdown_report(report)
    rows = [line for line in text.splitlines() if line.startswith("| **this model")]
    assert rows[0].startswith("| **this model, whole-record inputs** | 100.0 |")
    assert rows[1].startswith("| **this model, served 10 s strip inputs** | 40.0 | 100.0 |")
    assert "On served 10 s strip inputs this model does NOT beat" in text
    assert "(beaten: S_ppv, V_se, V_ppv)" in text and "30 min of context" in text
    assert "| record | beats | record N Se |" in text and "| strip S Se | strip S +P |" in text
    write_report(report, tmp_path)
    assert {"confusion.png", "confusion-strip.png", "anchors.png"} <= {
        p.name for p in tmp_path.iterdir()
    }
    with pytest.raises(InvalidInput, match="unknown inputs 'window'"):
        evaluate_model(tmp_path / "no-model", inputs="window")
