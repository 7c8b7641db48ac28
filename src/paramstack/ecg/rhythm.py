"""Rhythm episodes: atrial fibrillation / flutter from RR irregularity, ventricular flutter /
fibrillation from the signal itself.

AF is an irregularly irregular rhythm: the RR features below describe a window of beats around
each beat (spread, successive differences, turning points, entropy, and the lag-1/lag-2
autocorrelations that tell AF from bigeminy, whose alternating RRs are just as spread but
perfectly regular). Heart rate itself is left out on purpose: it says more about the patient
than about the rhythm, and with it the detector learned DS1's two AF patients. A logistic
regression on these features, trained on DS1 and stored as plain JSON (no pickle), gives a
per-beat AF probability; runs of positive beats become episodes.

VF has no QRS complexes to time, so RR features cannot see it. Kuo & Dillman's "VF filter"
(leakage of a notch filter tuned to the window's own mean frequency) needs no training: a
near-sinusoidal VF signal leaks little (threshold 0.406, Amann et al. 2005), a QRS train a lot.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from paramstack.ecg.signal import bandpass
from paramstack.errors import InvalidInput

Array = npt.NDArray[np.float64]
RHYTHM_GROUPS: dict[str, tuple[str, ...]] = {"AF": ("(AFIB", "(AFL"), "VF": ("(VFL",)}
AF_FEATURES = (
    "cv",
    "rmssd_norm",
    "mad_diff_norm",
    "frac_diff_over_50ms",
    "turning_point_ratio",
    "diff_entropy",
    "autocorr_lag1",
    "autocorr_lag2",
)
VF_LEAKAGE_THRESHOLD = 0.406


@dataclass(frozen=True)
class Episode:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def rhythm_episodes(
    rhythm: list[tuple[int, str]], fs: float, n_samples: int, group: str
) -> list[Episode]:
    """Reference episodes of ``group`` from a record's rhythm annotations (``aux_note``):
    each label lasts until the next rhythm annotation or the end of the record."""
    labels = RHYTHM_GROUPS[group]
    bounds = [*rhythm, (n_samples, "")]
    episodes = [
        Episode(start / fs, end / fs)
        for (start, label), (end, _next) in itertools.pairwise(bounds)
        if label in labels and end > start
    ]
    return merge_episodes(episodes, gap_s=0.0)


def merge_episodes(episodes: list[Episode], gap_s: float, min_s: float = 0.0) -> list[Episode]:
    """Join episodes closer than ``gap_s``, then drop those shorter than ``min_s``."""
    merged: list[Episode] = []
    for ep in sorted(episodes, key=lambda e: e.start_s):
        if merged and ep.start_s - merged[-1].end_s <= gap_s:
            merged[-1] = Episode(merged[-1].start_s, max(merged[-1].end_s, ep.end_s))
        else:
            merged.append(ep)
    return [e for e in merged if e.duration_s >= min_s]


def _autocorr(x: Array, lag: int) -> Array:
    centred = x - x.mean(axis=1, keepdims=True)
    num = (centred[:, lag:] * centred[:, :-lag]).sum(axis=1)
    den = (centred**2).sum(axis=1)
    return np.asarray(np.divide(num, den, out=np.zeros_like(num), where=den > 0), dtype=np.float64)


def af_features(peaks_s: Array, window_beats: int = 32) -> npt.NDArray[np.float32]:
    """AF_FEATURES per beat over the ``window_beats`` RR intervals centred on it (the window is
    clipped at the ends of the series, so every beat gets one)."""
    rr = np.diff(np.asarray(peaks_s, dtype=np.float64))
    if len(rr) < 4:
        raise InvalidInput("rhythm features need at least five beats", code="too_few_beats")
    w = min(window_beats, len(rr))
    windows = sliding_window_view(rr, w)  # (len(rr) - w + 1, w)
    diffs = np.diff(windows, axis=1)
    mean = windows.mean(axis=1)
    median = np.median(windows, axis=1)
    inner = windows[:, 1:-1]
    turning = ((inner > windows[:, :-2]) & (inner > windows[:, 2:])) | (
        (inner < windows[:, :-2]) & (inner < windows[:, 2:])
    )
    relative = np.clip(diffs / mean[:, None], -0.5, 0.5)
    edges = np.linspace(-0.5, 0.5, 17)
    hist = np.stack([np.histogram(row, bins=edges)[0] for row in relative]).astype(np.float64)
    p = hist / hist.sum(axis=1, keepdims=True)
    entropy = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1) / 4.0
    per_window = np.stack(
        [
            windows.std(axis=1) / mean,
            np.sqrt((diffs**2).mean(axis=1)) / mean,
            np.median(np.abs(diffs), axis=1) / median,
            (np.abs(diffs) > 0.05).mean(axis=1),
            turning.mean(axis=1),
            entropy,
            _autocorr(windows, 1),
            _autocorr(windows, 2),
        ],
        axis=1,
    )
    # Beat k (k = 0..len(rr)) takes the window whose centre is nearest to it.
    first = np.clip(np.arange(len(rr) + 1) - w // 2, 0, len(per_window) - 1)
    return per_window[first].astype(np.float32)


GATE_WINDOW_BEATS = 10  # the AF gate's and the served AF screen's window: a 10 s strip's beats


def af_columns(peaks_s: Array) -> npt.NDArray[np.float32]:
    """AF_FEATURES per beat on GATE_WINDOW_BEATS windows, the per-beat model inputs of the
    feature model's AF gate. Under five beats no rhythm can be judged: zeros (a perfectly
    regular rhythm), so the gate stays open."""
    if len(peaks_s) < 5:
        return np.zeros((len(peaks_s), len(AF_FEATURES)), np.float32)
    return af_features(peaks_s, GATE_WINDOW_BEATS)


@dataclass(frozen=True)
class AfDetector:
    """Standardised logistic regression over AF_FEATURES; JSON-serialisable."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    window_beats: int = 32
    threshold: float = 0.5
    min_episode_s: float = 10.0

    def probabilities(self, peaks_s: Array) -> Array:
        x = af_features(peaks_s, self.window_beats).astype(np.float64)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = z @ np.asarray(self.coef) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)

    def episodes(self, peaks_s: Array) -> list[Episode]:
        """Runs of beats above the threshold, as episodes from first to last beat time."""
        t = np.asarray(peaks_s, dtype=np.float64)
        return runs_to_episodes(t, self.probabilities(t) >= self.threshold, self.min_episode_s)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "af-logistic", "features": list(AF_FEATURES), **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AfDetector:
        if data.get("kind") != "af-logistic" or data.get("features") != list(AF_FEATURES):
            raise InvalidInput("not an AF detector for this version's features", param="detector")
        return cls(
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            coef=tuple(data["coef"]),
            intercept=float(data["intercept"]),
            window_beats=int(data["window_beats"]),
            threshold=float(data["threshold"]),
            min_episode_s=float(data["min_episode_s"]),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path) -> AfDetector:
        return cls.from_json(json.loads(path.read_text()))


def runs_to_episodes(
    times_s: Array, positive: npt.NDArray[np.bool_], min_s: float
) -> list[Episode]:
    if not positive.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], positive.astype(np.int8), [0]])))
    raw = [
        Episode(float(times_s[a]), float(times_s[b - 1]))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]
    return merge_episodes(raw, gap_s=2.0, min_s=min_s)


def vf_leakage(
    x: Array, fs: float, window_s: float = 4.0, step_s: float = 1.0
) -> tuple[Array, Array]:
    """Kuo & Dillman's VF-filter leakage per window: (window start times s, leakage)."""
    filtered = bandpass(x, fs, low_hz=1.0, high_hz=30.0)
    size, step = int(window_s * fs), int(step_s * fs)
    if len(filtered) < size:
        raise InvalidInput(
            f"VF detection needs at least {window_s:.0f} s of signal", param="signal"
        )
    windows = sliding_window_view(filtered, size)[::step]
    abs_sum = np.abs(windows).sum(axis=1)
    diff_sum = np.abs(np.diff(windows, axis=1)).sum(axis=1)
    half_period = np.floor(np.pi * abs_sum / np.maximum(diff_sum, 1e-12) + 0.5).astype(int)
    leakage = np.ones(len(windows))
    for i, (row, n) in enumerate(zip(windows, half_period, strict=True)):
        if 0 < n < size:
            num = np.abs(row[n:] + row[:-n]).sum()
            den = (np.abs(row[n:]) + np.abs(row[:-n])).sum()
            leakage[i] = num / den if den > 0 else 1.0
    return np.arange(len(windows), dtype=np.float64) * step_s, leakage


def vf_episodes(x: Array, fs: float, min_episode_s: float = 4.0) -> list[Episode]:
    starts, leakage = vf_leakage(x, fs)
    window_s = 4.0
    raw = [
        Episode(float(s), float(s + window_s))
        for s, leak in zip(starts, leakage, strict=True)
        if leak < VF_LEAKAGE_THRESHOLD
    ]
    return merge_episodes(raw, gap_s=0.0, min_s=min_episode_s)
