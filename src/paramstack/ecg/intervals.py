"""QT / QTc and ST deviation per beat, from neurokit2's wavelet delineation.

Delineation fails on some beats (small or flat T waves, noise), so every figure is checked
for physiological plausibility and a strip reports medians over the beats that passed, with
their count: a QT from two beats of twelve says so. ST deviation is measured on the
un-filtered signal against each beat's own PR-segment baseline (filters that remove
baseline wander also move the ST segment), at J + 60 ms.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
QT_RANGE_S = (0.2, 0.7)
J_OFFSET_S = 0.06
QTC_PROLONGED_S = 0.47  # Bazett; AHA/ACC/HRS flag values are 0.45 (men) and 0.46-0.47 (women)
ST_ELEVATION_MV = 0.1
ST_DEPRESSION_MV = -0.05


def _fiducials(x: Array, fs: float, peaks: npt.NDArray[np.int64]) -> dict[str, Array]:
    import neurokit2 as nk

    rate = round(fs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit warns on every beat it cannot delineate
        clean = nk.ecg_clean(x, sampling_rate=rate)
        _, waves = nk.ecg_delineate(clean, peaks, sampling_rate=rate, method="dwt")
    keys = ("ECG_P_Offsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Offsets")
    out = {}
    for key in keys:
        values = np.asarray(waves.get(key, []), dtype=np.float64)
        out[key] = values if len(values) == len(peaks) else np.full(len(peaks), np.nan)
    return out


def beat_intervals(x: Array, fs: float, peaks: npt.NDArray[np.int64]) -> list[dict[str, Any]]:
    """Per beat: ``qt_s``, ``qtc_bazett_s``, ``qtc_fridericia_s``, ``st_mv`` (None where the
    delineation failed or gave an implausible value)."""
    if len(peaks) < 3:
        return [
            {"qt_s": None, "qtc_bazett_s": None, "qtc_fridericia_s": None, "st_mv": None}
        ] * len(peaks)
    f = _fiducials(x, fs, peaks)
    rr = np.diff(peaks) / fs
    beats = []
    for i, peak in enumerate(peaks):
        prev_rr = float(rr[i - 1] if i > 0 else rr[0])
        next_peak = peaks[i + 1] if i + 1 < len(peaks) else len(x)
        onset, offset = f["ECG_R_Onsets"][i], f["ECG_R_Offsets"][i]
        t_end, p_end = f["ECG_T_Offsets"][i], f["ECG_P_Offsets"][i]
        qt = None
        if not (math.isnan(onset) or math.isnan(t_end)) and t_end < next_peak:
            value = float(t_end - onset) / fs
            qt = value if QT_RANGE_S[0] <= value <= QT_RANGE_S[1] else None
        values = {
            "qt_s": qt,
            "qtc_bazett_s": None if qt is None else qt / math.sqrt(prev_rr),
            "qtc_fridericia_s": None if qt is None else qt / prev_rr ** (1 / 3),
            "st_mv": _st(x, fs, int(peak), onset, offset, p_end),
        }
        beats.append({k: None if v is None else round(v, 5) for k, v in values.items()})
    return beats


def _st(x: Array, fs: float, peak: int, onset: float, offset: float, p_end: float) -> float | None:
    """Amplitude at J + 60 ms minus the PR-segment baseline (P offset to QRS onset, or the
    40-20 ms before the QRS onset when the P wave was not delineated)."""
    if math.isnan(onset) or math.isnan(offset) or not onset < peak < offset:
        return None
    start = int(p_end) if not math.isnan(p_end) and p_end < onset else int(onset - 0.04 * fs)
    stop = int(onset) if start < onset - 0.01 * fs else int(onset - 0.02 * fs)
    j = int(offset + J_OFFSET_S * fs)
    if start < 0 or stop <= start or j >= len(x):
        return None
    return float(x[j] - np.mean(x[start:stop]))


def interval_summary(beats: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the measured beats, the counts, and screening flags (not a diagnosis)."""

    def median(key: str) -> float | None:
        values = [b[key] for b in beats if b[key] is not None]
        return round(float(np.median(values)), 4) if values else None

    qtc = median("qtc_bazett_s")
    st = median("st_mv")
    return {
        "qt_s": median("qt_s"),
        "qtc_bazett_s": qtc,
        "qtc_fridericia_s": median("qtc_fridericia_s"),
        "st_mv": st,
        "beats_with_qt": sum(b["qt_s"] is not None for b in beats),
        "beats_with_st": sum(b["st_mv"] is not None for b in beats),
        "qtc_prolonged": None if qtc is None else qtc >= QTC_PROLONGED_S,
        "st_elevation": None if st is None else st >= ST_ELEVATION_MV,
        "st_depression": None if st is None else st <= ST_DEPRESSION_MV,
    }
