"""Rhythm episodes: features and detectors on synthetic series with known answers, episode
scoring by hand-counted examples, and the CLI on real MIT-BIH records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.ecg.rhythm import (
    AF_FEATURES,
    AfDetector,
    Episode,
    af_features,
    merge_episodes,
    rhythm_episodes,
    vf_episodes,
    vf_leakage,
)
from paramstack.ecg.rhythm_eval import (
    RhythmRecord,
    episode_counts,
    episode_figures,
    train_af_detector,
)
from paramstack.ecg.signal import bandpass
from paramstack.errors import InvalidInput

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
FS = 360.0


def beat_times(rr: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(rr)])


def regular(n: int, rng: np.random.Generator) -> np.ndarray:
    return 0.8 + rng.normal(0, 0.01, n)


def irregular(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.4, 1.1, n)  # irregularly irregular, like AF


def bigeminy(n: int) -> np.ndarray:
    return np.tile([0.5, 1.1], n // 2)  # spread like AF, but perfectly regular


def feature(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, AF_FEATURES.index(name)]


def test_features_tell_af_from_sinus_and_bigeminy() -> None:
    rng = np.random.default_rng(0)
    sinus = af_features(beat_times(regular(200, rng)))
    af = af_features(beat_times(irregular(200, rng)))
    big = af_features(beat_times(bigeminy(200)))
    assert sinus.shape == (201, len(AF_FEATURES))
    assert np.median(feature(sinus, "cv")) < 0.02 < 0.2 < np.median(feature(af, "cv"))
    assert np.median(feature(big, "autocorr_lag2")) > 0.9  # biased estimator: (32-2)/32
    assert np.median(feature(big, "autocorr_lag1")) < -0.9
    assert abs(np.median(feature(af, "autocorr_lag2"))) < 0.3
    assert np.median(feature(big, "turning_point_ratio")) == pytest.approx(1.0)
    with pytest.raises(InvalidInput, match="at least five beats"):
        af_features(np.array([0.0, 1.0, 2.0]))


def synthetic_record(name: str, parts: list[np.ndarray], af_parts: set[int]) -> RhythmRecord:
    times = beat_times(np.concatenate(parts))
    bounds = np.cumsum([0, *(len(p) for p in parts)])
    reference = [
        Episode(float(times[bounds[i]]), float(times[bounds[i + 1]])) for i in sorted(af_parts)
    ]
    return RhythmRecord(name, times, reference, record=None)  # type: ignore[arg-type]


def test_detector_finds_an_af_episode_and_ignores_bigeminy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train = [
        synthetic_record("t1", [regular(300, rng), irregular(300, rng), bigeminy(300)], {1}),
        synthetic_record("t2", [bigeminy(200), regular(200, rng), irregular(300, rng)], {2}),
    ]
    detector = train_af_detector(train)
    test = synthetic_record(
        "x", [regular(200, rng), irregular(150, rng), bigeminy(200), regular(100, rng)], {1}
    )
    found = detector.episodes(test.beat_times_s)
    assert len(found) == 1
    ref = test.af_reference[0]
    counts = episode_counts(test.af_reference, found)
    assert counts["reference_hit"] == counts["detected_hit"] == 1
    assert abs(found[0].start_s - ref.start_s) < 15 and abs(found[0].end_s - ref.end_s) < 15

    detector.save(tmp_path / "af.json")
    again = AfDetector.load(tmp_path / "af.json")
    assert np.allclose(
        again.probabilities(test.beat_times_s), detector.probabilities(test.beat_times_s)
    )
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(InvalidInput, match="not an AF detector"):
        AfDetector.load(tmp_path / "bad.json")


def test_reference_episodes_come_from_rhythm_annotations() -> None:
    rhythm = [(0, "(N"), (3600, "(AFIB"), (7200, "(AFL"), (9000, "(N"), (10800, "(VFL")]
    assert rhythm_episodes(rhythm, FS, 14400, "AF") == [Episode(10.0, 25.0)]  # AFIB+AFL joined
    assert rhythm_episodes(rhythm, FS, 14400, "VF") == [Episode(30.0, 40.0)]  # until the end
    merged = merge_episodes([Episode(0, 5), Episode(6, 8), Episode(30, 31)], gap_s=2, min_s=2)
    assert merged == [Episode(0, 8)]


def test_episode_figures_count_overlaps_and_durations() -> None:
    reference = [Episode(0, 100), Episode(200, 300), Episode(400, 420)]
    detected = [Episode(50, 150), Episode(210, 260), Episode(600, 610)]
    counts = episode_counts(reference, detected)
    assert counts == {
        "reference": 3,
        "detected": 3,
        "reference_hit": 2,
        "detected_hit": 2,
        "reference_s": 220,
        "detected_s": 160,
        "overlap_s": 100,
    }
    figures = episode_figures(counts)
    assert figures["episode_se"] == pytest.approx(66.67)
    assert figures["duration_se"] == pytest.approx(45.45)
    assert figures["duration_ppv"] == pytest.approx(62.5)
    assert episode_figures({**counts, "detected": 0, "detected_s": 0})["episode_ppv"] is None


def test_vf_filter_flags_a_sinusoid_and_not_a_qrs_train() -> None:
    t = np.arange(0, 20, 1 / FS)
    qrs = np.zeros_like(t)
    for beat in np.arange(0.4, 20, 0.8):  # narrow spikes at 75 bpm
        qrs += np.exp(-(((t - beat) / 0.012) ** 2))
    vf = 0.5 * np.sin(2 * np.pi * 5.0 * t)  # VF is near-sinusoidal at 4-7 Hz
    signal = np.concatenate([qrs, vf, qrs])
    _, leak_qrs = vf_leakage(qrs, FS)
    _, leak_vf = vf_leakage(bandpass(vf, FS, 1.0, 30.0), FS)
    assert leak_qrs.min() > 0.406 > leak_vf.max()
    episodes = vf_episodes(signal, FS)
    assert len(episodes) == 1
    assert 18 <= episodes[0].start_s <= 21 and 39 <= episodes[0].end_s <= 42


def test_rhythm_cli_scores_real_af_and_vf_records(tmp_path: Path) -> None:
    out = tmp_path / "rhythm"
    result = CliRunner().invoke(
        app,
        [
            "ecg", "rhythm", "--db", str(MITDB), "--train-records", "201,203,100,101,106",
            "--test-records", "202,221,105", "--vf-records", "207,100", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "rhythm.json").read_text())
    assert report["af"]["records"] == ["105", "202", "221"]
    af = report["af"]["gross"]
    assert af["reference"] == 15  # 202: 3 AF/AFL episodes, 221: 12; 105 has none
    assert af["episode_se"] >= 80 and af["duration_se"] >= 60
    vf = report["vf"]["gross"]
    assert vf["reference"] == 6 and vf["episode_se"] >= 50  # record 207's VFL episodes
    assert "| **gross** |" in (out / "rhythm.md").read_text()
    assert AfDetector.load(out / "af_detector.json").window_beats == 32

    clash = CliRunner().invoke(
        app,
        ["ecg", "rhythm", "--db", str(MITDB), "--train-records", "202", "--test-records", "202"],
    )
    assert clash.exit_code != 0
    assert "both training and test" in str(clash.exception or clash.output)
