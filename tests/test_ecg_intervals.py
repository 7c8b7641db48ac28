"""QT/QTc and ST deviation per beat on simulated ECG with a known change planted."""

from __future__ import annotations

import math

import neurokit2 as nk
import numpy as np
import pytest

from paramstack.ecg.intervals import beat_intervals, interval_summary
from paramstack.ecg.signal import detect_r_peaks

FS = 360.0


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, np.ndarray]:
    x = nk.ecg_simulate(duration=10, sampling_rate=int(FS), heart_rate=70, random_state=1)
    return x, detect_r_peaks(x, FS)


def test_qt_is_plausible_and_qtc_follows_the_formulas(
    simulated: tuple[np.ndarray, np.ndarray],
) -> None:
    x, peaks = simulated
    beats = beat_intervals(x, FS, peaks)
    summary = interval_summary(beats)
    assert summary["beats_with_qt"] >= len(peaks) - 2
    assert 0.35 <= summary["qt_s"] <= 0.5
    rr = np.diff(peaks) / FS
    for i, beat in enumerate(beats[1:], start=1):
        if beat["qt_s"] is not None:
            assert beat["qtc_bazett_s"] == pytest.approx(
                beat["qt_s"] / math.sqrt(rr[i - 1]), abs=1e-4
            )
            assert beat["qtc_fridericia_s"] == pytest.approx(
                beat["qt_s"] / rr[i - 1] ** (1 / 3), abs=1e-4
            )


def test_a_planted_st_elevation_is_measured(simulated: tuple[np.ndarray, np.ndarray]) -> None:
    x, peaks = simulated
    before = interval_summary(beat_intervals(x, FS, peaks))
    raised = x.copy()
    for peak in peaks:  # +0.2 mV over the ST segment (J point to the T wave) of every beat
        start, stop = peak + int(0.05 * FS), peak + int(0.16 * FS)
        raised[start:stop] += 0.2 * np.hanning(stop - start) ** 0.2
    after = interval_summary(beat_intervals(raised, FS, peaks))
    assert not before["st_elevation"]
    assert after["st_elevation"]
    assert 0.12 <= after["st_mv"] - before["st_mv"] <= 0.25


def test_too_few_beats_measure_nothing() -> None:
    x = nk.ecg_simulate(duration=2, sampling_rate=int(FS), heart_rate=60, random_state=0)
    peaks = detect_r_peaks(x, FS)[:2]
    summary = interval_summary(beat_intervals(x, FS, peaks))
    assert summary["qt_s"] is None and summary["beats_with_qt"] == 0
    assert summary["qtc_prolonged"] is None
