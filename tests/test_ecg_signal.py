"""Signal processing on synthetic signals with known answers, and R peaks on a real record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paramstack.ecg import signal as sig
from paramstack.ecg.records import AAMI_MAP, read_record
from paramstack.errors import InvalidInput

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"


def amplitude_at(x: np.ndarray, fs: float, freq: float) -> float:
    """Amplitude of the sinusoid at ``freq`` (single-bin DFT over whole periods)."""
    t = np.arange(len(x)) / fs
    return float(2 * np.abs(np.mean(x * np.exp(-2j * np.pi * freq * t))))


def synthetic_ecg(seconds: float, fs: int, heart_rate: int = 72) -> np.ndarray:
    import neurokit2 as nk

    return np.asarray(
        nk.ecg_simulate(
            duration=seconds, sampling_rate=fs, heart_rate=heart_rate, noise=0.0, random_state=0
        ),
        dtype=np.float64,
    )


@pytest.mark.parametrize("line_hz", [50.0, 60.0])
def test_nlms_removes_mains_hum_and_keeps_the_signal(line_hz: float) -> None:
    fs, seconds = 500.0, 10.0
    t = np.arange(int(fs * seconds)) / fs
    clean = np.sin(2 * np.pi * 1.2 * t)
    hum = 0.5 * np.sin(2 * np.pi * line_hz * t + 0.7)
    out = sig.nlms_powerline_cancel(clean + hum, fs, line_hz=line_hz, mu=0.05)
    settled = slice(int(2 * fs), None)  # after adaptation
    assert amplitude_at((clean + hum)[settled], fs, line_hz) == pytest.approx(0.5, rel=0.02)
    assert amplitude_at(out[settled], fs, line_hz) < 0.5 * 0.05  # > 26 dB down
    assert np.sqrt(np.mean((out - clean)[settled] ** 2)) < 0.03
    with pytest.raises(InvalidInput, match="Nyquist"):
        sig.nlms_powerline_cancel(clean, 100.0, line_hz=60.0)


def test_median_baseline_removal_takes_out_drift() -> None:
    fs = 360
    ecg = synthetic_ecg(20, fs)
    t = np.arange(len(ecg)) / fs
    drift = 1.0 * np.sin(2 * np.pi * 0.2 * t) + 0.3 * t / t[-1]
    cleaned = sig.remove_baseline(ecg + drift, fs)
    reference = sig.remove_baseline(ecg, fs)
    assert np.sqrt(np.mean((cleaned - reference) ** 2)) < 0.1  # drift RMS was 0.72
    assert amplitude_at(cleaned, fs, 0.2) < 0.05  # was 1.0
    assert np.ptp(cleaned) > 0.8 * np.ptp(reference)  # QRS kept


def test_bandpass_passes_the_band_and_attenuates_outside() -> None:
    fs = 500.0
    t = np.arange(int(fs * 20)) / fs
    x = sum(np.sin(2 * np.pi * f * t) for f in (0.1, 10.0, 100.0))
    y = sig.bandpass(x, fs, 0.5, 40.0)
    assert amplitude_at(y, fs, 10.0) == pytest.approx(1.0, abs=0.03)
    assert amplitude_at(y, fs, 0.1) < 0.05
    assert amplitude_at(y, fs, 100.0) < 0.01
    with pytest.raises(InvalidInput):
        sig.bandpass(x, fs, 40.0, 10.0)


def test_welch_finds_the_peak_frequency() -> None:
    fs = 360.0
    t = np.arange(int(fs * 30)) / fs
    freqs, psd = sig.welch_spectrum(np.sin(2 * np.pi * 12.0 * t), fs)
    assert abs(freqs[np.argmax(psd)] - 12.0) <= freqs[1] - freqs[0]


def test_wavelet_denoising_reduces_noise() -> None:
    ecg = synthetic_ecg(10, 360)
    noisy = ecg + np.random.default_rng(0).normal(0, 0.1, len(ecg))
    denoised = sig.wavelet_denoise(noisy, 360)
    assert denoised.shape == ecg.shape
    before = np.sqrt(np.mean((noisy - ecg) ** 2))
    after = np.sqrt(np.mean((denoised - ecg) ** 2))
    assert after < 0.7 * before


@pytest.mark.parametrize(("fs", "heart_rate"), [(250, 60), (360, 72), (500, 110)])
def test_heart_rate_of_a_synthetic_ecg(fs: int, heart_rate: int) -> None:
    peaks = sig.detect_r_peaks(synthetic_ecg(30, fs, heart_rate), fs)
    hrv = sig.hrv_time_domain(np.diff(peaks) / fs)
    assert hrv["mean_hr_bpm"] == pytest.approx(heart_rate, abs=2)


def test_detector_sensitivity_and_predictivity_on_mitdb_100() -> None:
    record = read_record(MITDB, "100")
    n = int(300 * record.fs)  # five minutes
    reference = np.array(
        [
            s
            for s, sym in zip(record.beat_samples, record.beat_symbols, strict=True)
            if sym in AAMI_MAP and s < n
        ]
    )
    detected = sig.detect_r_peaks(record.signal[:n], record.fs)
    score = sig.score_detections(detected, reference, record.fs)
    assert score.sensitivity > 0.995 and score.positive_predictivity > 0.995
    assert score.true_positives + score.false_negatives == len(reference)


def test_score_detections_counts_by_hand() -> None:
    score = sig.score_detections(np.array([100, 205, 400]), np.array([100, 200, 300]), fs=100)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 1, 1)
    assert score.sensitivity == pytest.approx(2 / 3)
    assert score.positive_predictivity == pytest.approx(2 / 3)


def test_hrv_time_domain_known_values() -> None:
    hrv = sig.hrv_time_domain(np.array([0.8, 1.0] * 10))
    assert hrv["mean_nn_ms"] == pytest.approx(900.0)
    assert hrv["rmssd_ms"] == pytest.approx(200.0)
    assert hrv["pnn50_pct"] == pytest.approx(100.0)
    assert hrv["sdnn_ms"] == pytest.approx(np.std([800, 1000] * 10, ddof=1))
    assert hrv["mean_hr_bpm"] == pytest.approx(60000 / 900)
    with pytest.raises(InvalidInput):
        sig.hrv_time_domain(np.array([1.0]))


@pytest.mark.parametrize(("mod_hz", "dominant"), [(0.25, "hf"), (0.1, "lf")])
def test_hrv_frequency_domain_puts_power_in_the_right_band(mod_hz: float, dominant: str) -> None:
    rr, t = [], 0.0
    while t < 300:
        rr.append(0.9 + 0.05 * np.sin(2 * np.pi * mod_hz * t))
        t += rr[-1]
    bands = sig.hrv_frequency_domain(np.array(rr))
    if dominant == "hf":
        assert bands["hf_ms2"] > 10 * bands["lf_ms2"]
    else:
        assert bands["lf_ms2"] > 10 * bands["hf_ms2"]
