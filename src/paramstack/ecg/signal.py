"""ECG signal processing: baseline, filters, denoising, spectrum, power-line cancelling,
R-peak detection (with Se/+P against reference annotations) and HRV.

Everything takes a 1-D float array and its sampling rate ``fs`` in Hz, so it works at any
rate; scipy, PyWavelets and neurokit2 are imported inside the functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from paramstack.errors import InvalidInput

Array = npt.NDArray[np.float64]


def _odd(n: float) -> int:
    k = max(1, round(n))
    return k if k % 2 else k + 1


def remove_baseline(x: Array, fs: float, windows_s: tuple[float, float] = (0.2, 0.6)) -> Array:
    """Subtract the baseline found by two cascaded median filters (de Chazal et al. 2004).

    200 ms removes QRS complexes and P waves, 600 ms removes T waves; what is left is the
    wander, whatever its shape (a high-pass filter would distort the ST segment).
    """
    from scipy.ndimage import median_filter

    baseline = np.asarray(x, dtype=np.float64)
    for w in windows_s:
        baseline = median_filter(baseline, size=_odd(w * fs), mode="nearest")
    return np.asarray(x, dtype=np.float64) - baseline


def bandpass(
    x: Array, fs: float, low_hz: float = 0.5, high_hz: float = 40.0, order: int = 3
) -> Array:
    """Zero-phase Butterworth band-pass (``low_hz`` = 0 gives a low-pass)."""
    from scipy.signal import butter, sosfiltfilt

    nyquist = fs / 2.0
    high = min(high_hz, 0.95 * nyquist)
    if low_hz < 0 or high <= low_hz:
        raise InvalidInput(f"band {low_hz}-{high_hz} Hz is invalid at fs={fs} Hz")
    if low_hz == 0:
        sos = butter(order, high / nyquist, btype="lowpass", output="sos")
    else:
        sos = butter(order, [low_hz / nyquist, high / nyquist], btype="bandpass", output="sos")
    return np.asarray(sosfiltfilt(sos, x), dtype=np.float64)


def wavelet_denoise(
    x: Array, fs: float, wavelet: str = "sym8", keep_below_hz: float = 10.0
) -> Array:
    """Soft-threshold the detail coefficients at Donoho's universal threshold.

    Only details above ``keep_below_hz`` are thresholded: the coarser bands carry most of
    the P, QRS and T energy, and shrinking them distorts the waves more than it removes
    noise. The noise scale is the median absolute deviation of the finest details / 0.6745,
    robust to the QRS energy that also lives there.
    """
    import pywt

    data = np.asarray(x, dtype=np.float64)
    level = max(1, int(np.floor(np.log2(fs / keep_below_hz))) - 1)
    level = min(level, pywt.dwt_max_level(len(data), wavelet) or 1)
    coeffs = pywt.wavedec(data, wavelet, level=level)
    sigma = np.median(np.abs(coeffs[-1])) / 0.6745
    threshold = sigma * np.sqrt(2.0 * np.log(max(len(data), 2)))
    denoised = [coeffs[0]] + [pywt.threshold(c, threshold, mode="soft") for c in coeffs[1:]]
    return np.asarray(pywt.waverec(denoised, wavelet)[: len(data)], dtype=np.float64)


def welch_spectrum(x: Array, fs: float, segment_s: float = 4.0) -> tuple[Array, Array]:
    """Power spectral density (frequencies in Hz, power per Hz) by Welch's method."""
    from scipy.signal import welch

    nperseg = min(len(x), max(8, int(segment_s * fs)))
    freqs, psd = welch(np.asarray(x, dtype=np.float64), fs=fs, nperseg=nperseg)
    return np.asarray(freqs, dtype=np.float64), np.asarray(psd, dtype=np.float64)


def nlms_powerline_cancel(
    x: Array, fs: float, line_hz: float = 50.0, mu: float = 0.05, harmonics: int = 1
) -> Array:
    """Adaptive noise canceller (Widrow 1975) with sine/cosine references at the mains frequency.

    NLMS adapts the amplitude and phase of each harmonic, so it follows a drifting hum
    that a fixed notch would leave behind, and it leaves the rest of the spectrum alone.
    Returns the error signal, i.e. the ECG with the hum removed.
    """
    if line_hz * harmonics >= fs / 2:
        raise InvalidInput(f"{line_hz} Hz x{harmonics} is above Nyquist at fs={fs} Hz")
    data = np.asarray(x, dtype=np.float64)
    t = np.arange(len(data)) / fs
    refs = np.concatenate(
        [
            np.stack([np.sin(2 * np.pi * k * line_hz * t), np.cos(2 * np.pi * k * line_hz * t)])
            for k in range(1, harmonics + 1)
        ]
    )
    weights = np.zeros(refs.shape[0])
    out = np.empty_like(data)
    for n in range(len(data)):
        r = refs[:, n]
        error = data[n] - weights @ r
        out[n] = error
        weights += (mu / (1e-12 + r @ r)) * error * r
    return out


def detect_r_peaks(
    x: Array, fs: float, method: Literal["neurokit", "pantompkins1985", "xqrs"] = "neurokit"
) -> npt.NDArray[np.int64]:
    """R-peak sample indices from neurokit2's detectors or wfdb's XQRS (reused, not rewritten)."""
    data = np.asarray(x, dtype=np.float64)
    if method == "xqrs":
        from wfdb import processing

        peaks = processing.xqrs_detect(data, fs=fs, verbose=False)
        return np.asarray(peaks, dtype=np.int64)
    import neurokit2 as nk

    cleaned = nk.ecg_clean(data, sampling_rate=round(fs), method=method)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=round(fs), method=method)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


@dataclass(frozen=True)
class DetectionScore:
    """Beat-detection figures as in ANSI/AAMI EC57 (match window ±150 ms by default)."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def sensitivity(self) -> float:
        denominator = self.true_positives + self.false_negatives
        return self.true_positives / denominator if denominator else 0.0

    @property
    def positive_predictivity(self) -> float:
        denominator = self.true_positives + self.false_positives
        return self.true_positives / denominator if denominator else 0.0


def score_detections(
    detected: npt.NDArray[np.int64],
    reference: npt.NDArray[np.int64],
    fs: float,
    tolerance_s: float = 0.15,
) -> DetectionScore:
    """Match each reference beat to at most one detection within the tolerance (greedy in time)."""
    det = np.sort(np.asarray(detected, dtype=np.int64))
    used = np.zeros(len(det), dtype=bool)
    tolerance = tolerance_s * fs
    tp = 0
    for ref in np.sort(np.asarray(reference, dtype=np.int64)):
        lo, hi = np.searchsorted(det, [ref - tolerance, ref + tolerance + 1e-9])
        candidates = [i for i in range(lo, hi) if not used[i]]
        if candidates:
            best = min(candidates, key=lambda i: abs(int(det[i]) - int(ref)))
            used[best] = True
            tp += 1
    return DetectionScore(tp, int(len(det) - tp), int(len(reference) - tp))


def hrv_time_domain(rr_s: Array) -> dict[str, float]:
    """Mean NN, SDNN, RMSSD, pNN50 (ms / %) and mean heart rate (bpm) from RR intervals in s."""
    rr = np.asarray(rr_s, dtype=np.float64) * 1000.0
    if len(rr) < 2:
        raise InvalidInput("HRV needs at least two RR intervals", code="too_few_beats")
    diffs = np.diff(rr)
    return {
        "mean_nn_ms": float(rr.mean()),
        "sdnn_ms": float(rr.std(ddof=1)),
        "rmssd_ms": float(np.sqrt(np.mean(diffs**2))),
        "pnn50_pct": float(100.0 * np.mean(np.abs(diffs) > 50.0)),
        "mean_hr_bpm": float(60000.0 / rr.mean()),
    }


def hrv_frequency_domain(rr_s: Array, resample_hz: float = 4.0) -> dict[str, float]:
    """LF (0.04-0.15 Hz) and HF (0.15-0.4 Hz) power (ms²) and LF/HF (Task Force 1996).

    The RR series is interpolated onto an even 4 Hz grid before Welch's method; short
    series (under about 1 min) cannot resolve LF and give unreliable values.
    """
    from scipy.interpolate import CubicSpline

    rr = np.asarray(rr_s, dtype=np.float64) * 1000.0
    if len(rr) < 4:
        raise InvalidInput("frequency-domain HRV needs at least four RR intervals")
    times = np.cumsum(rr) / 1000.0
    grid = np.arange(times[0], times[-1], 1.0 / resample_hz)
    series = CubicSpline(times, rr)(grid)
    freqs, psd = welch_spectrum(series - series.mean(), resample_hz, segment_s=256.0)
    step = freqs[1] - freqs[0] if len(freqs) > 1 else 0.0

    def band(lo: float, hi: float) -> float:
        return float(psd[(freqs >= lo) & (freqs < hi)].sum() * step)

    lf, hf = band(0.04, 0.15), band(0.15, 0.4)
    return {"lf_ms2": lf, "hf_ms2": hf, "lf_hf": lf / hf if hf > 0 else float("nan")}
