"""Beats and features: windows around R peaks, RR-interval features, per-beat normalisation,
resampling to the model's rate. The same functions serve training, evaluation and strips, so
a model sees identical inputs in the lab and in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from paramstack.ecg.morphology import MORPHOLOGY_FEATURES, morphology_features
from paramstack.ecg.records import BEAT_SYMBOLS, SYMBOL_TO_AAMI, EcgRecord
from paramstack.ecg.rhythm import AF_FEATURES, af_columns
from paramstack.ecg.signal import bandpass, remove_baseline
from paramstack.errors import Conflict, InvalidInput

RR_FEATURES: tuple[str, ...] = (
    "pre_rr_s",
    "post_rr_s",
    "local_rr_s",
    "record_rr_s",
    "pre_over_local",
    "post_over_local",
    "pre_over_record",
    "local_over_record",
    "rr_irregularity",
)
# The scalar model input per beat: RR features, then morphology against the running template
# (``ecg.morphology``), then the rhythm's AF features on 10-beat windows (``ecg.rhythm``,
# read by the feature model's AF gate). CNN members read the RR part; the ensemble's feature
# model a prefix; a gated one all of them.
GATE_FEATURES: tuple[str, ...] = tuple(f"af_{name}" for name in AF_FEATURES)
BEAT_FEATURES: tuple[str, ...] = RR_FEATURES + MORPHOLOGY_FEATURES + GATE_FEATURES
# The beat itself, and the beat minus the patient's running template. The names travel in
# meta.json and the registry lineage: a model trained on other channels is refused, not fed.
BEAT_CHANNEL_NAMES: tuple[str, ...] = ("beat_zscore", "beat_minus_running_template")
BEAT_CHANNELS = len(BEAT_CHANNEL_NAMES)
TEMPLATE_BEATS = 45  # beats in the causal running template (~40 s; a 10 s strip: all of it)
LOCAL_BEATS = 10  # de Chazal 2004: local average over the preceding beats (~10 s of rhythm)
IRREGULARITY_BEATS = 8  # RR intervals each side for the rhythm-irregularity feature
LOWPASS_HZ = 40.0


@dataclass(frozen=True)
class BeatWindow:
    """Samples kept around each R peak at the model's rate: ``before`` + ``after``."""

    before: int
    after: int

    @property
    def length(self) -> int:
        return self.before + self.after


@dataclass(frozen=True)
class BeatSet:
    """Model inputs and labels for many beats (possibly from several records)."""

    beats: npt.NDArray[np.float32]  # [n, BEAT_CHANNELS, window] (see beat_windows)
    rr: npt.NDArray[np.float32]  # [n, len(BEAT_FEATURES)] raw (the model normalises them)
    labels: npt.NDArray[np.int64]  # index into the label scheme's classes (AAMI by default)
    record: npt.NDArray[np.int64]  # index into ``record_names``
    record_names: tuple[str, ...]
    symbols: npt.NDArray[np.int64]  # index into BEAT_SYMBOLS (the annotation itself)

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: npt.NDArray[np.bool_]) -> BeatSet:
        return BeatSet(
            self.beats[mask],
            self.rr[mask],
            self.labels[mask],
            self.record[mask],
            self.record_names,
            self.symbols[mask],
        )

    def labelled(self, scheme: str) -> BeatSet:
        """The same beats labelled by ``scheme``: ``aami`` classes or MIT-BIH ``symbols``."""
        if scheme == "aami":
            return self
        if scheme != "symbols":
            raise InvalidInput(f"unknown label scheme {scheme!r}; valid: aami, symbols")
        return BeatSet(
            self.beats, self.rr, self.symbols, self.record, self.record_names, self.symbols
        )

    @staticmethod
    def concat(parts: list[BeatSet]) -> BeatSet:
        names: list[str] = []
        records = []
        for part in parts:
            records.append(part.record + len(names))
            names.extend(part.record_names)
        return BeatSet(
            np.concatenate([p.beats for p in parts]),
            np.concatenate([p.rr for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate(records),
            tuple(names),
            np.concatenate([p.symbols for p in parts]),
        )


def check_beat_channels(names: object) -> None:
    """Refuse a model whose recorded beat channels are not the ones this code computes (e.g.
    one trained on the earlier centred ±8-beat template): same shapes, different inputs, so
    it would run and be silently wrong."""
    if names is not None and list(names) != list(BEAT_CHANNEL_NAMES):  # type: ignore[call-overload]
        raise Conflict(
            f"model was trained on beat channels {names}, this code computes "
            f"{list(BEAT_CHANNEL_NAMES)}: retrain (paramstack ecg train) and re-export it",
            code="incompatible_model",
        )


def check_beat_features(names: object) -> int:
    """How many of BEAT_FEATURES a model reads: models exported before the morphology
    features read the RR prefix; any other list is refused, not fed."""
    if names is None:
        return len(RR_FEATURES)
    listed = list(names)  # type: ignore[call-overload]
    if listed != list(BEAT_FEATURES[: len(listed)]):
        raise Conflict(
            f"model was trained on beat features {listed}, this code computes "
            f"{list(BEAT_FEATURES)}: retrain (paramstack ecg train) and re-export it",
            code="incompatible_model",
        )
    return len(listed)


def resample(x: npt.NDArray[np.float64], fs_in: float, fs_out: float) -> npt.NDArray[np.float64]:
    """Polyphase resampling (anti-aliased) by the closest small rational ratio."""
    from scipy.signal import resample_poly

    if fs_in <= 0 or fs_out <= 0:
        raise InvalidInput("sampling rates must be positive", param="fs")
    if abs(fs_in - fs_out) < 1e-9:
        return np.asarray(x, dtype=np.float64)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return np.asarray(resample_poly(x, ratio.numerator, ratio.denominator), dtype=np.float64)


def condition(x: npt.NDArray[np.float64], fs: float) -> npt.NDArray[np.float64]:
    """Median-filter baseline removal, then a 40 Hz low-pass (muscle noise, mains hum)."""
    return bandpass(remove_baseline(x, fs), fs, low_hz=0.0, high_hz=LOWPASS_HZ)


def _irregularity(rr: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per RR interval: median |ΔRR| / median RR over ±IRREGULARITY_BEATS intervals."""
    from numpy.lib.stride_tricks import sliding_window_view

    k = min(IRREGULARITY_BEATS, (len(rr) - 1) // 2)
    if k < 1:
        return np.zeros(len(rr))
    windows = sliding_window_view(np.pad(rr, k, mode="reflect"), 2 * k + 1)
    spread = np.median(np.abs(np.diff(windows, axis=1)), axis=1)
    return np.asarray(spread / np.median(windows, axis=1), dtype=np.float64)


def rr_features(peaks_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """RR features per beat from R-peak times in seconds (see RR_FEATURES).

    ``rr_irregularity`` (median |successive RR difference| / median RR around the beat) tells
    a premature beat in a regular rhythm from an irregular rhythm such as atrial
    fibrillation, where short RRs are normal beats; medians keep one ectopic beat from
    raising it. On DS2 most supraventricular false positives were AF beats.

    The first beat has no pre-RR and the last no post-RR: each borrows its neighbour, so
    every beat gets a value. The record average is over all RR intervals given (the whole
    record in training, the whole strip in serving).
    """
    t = np.asarray(peaks_s, dtype=np.float64)
    if len(t) < 2:
        raise InvalidInput("RR features need at least two beats", code="too_few_beats")
    rr = np.diff(t)
    pre = np.concatenate([[rr[0]], rr])
    post = np.concatenate([rr, [rr[-1]]])
    cumulative = np.concatenate([[0.0], np.cumsum(pre)])
    idx = np.arange(len(t))
    start = np.maximum(0, idx + 1 - LOCAL_BEATS)
    count = idx + 1 - start
    local = (cumulative[idx + 1] - cumulative[start]) / count
    irregular = _irregularity(rr)[np.maximum(idx - 1, 0)]
    record = np.full(len(t), rr.mean())
    features = np.stack(
        [
            pre,
            post,
            local,
            record,
            pre / local,
            post / local,
            pre / record,
            local / record,
            irregular,
        ],
        axis=1,
    )
    return features.astype(np.float32)


def running_template(windows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The patient's typical beat as seen at each beat, label-free and causal: the median of
    the last TEMPLATE_BEATS beats (the beat itself included). The first beats of a record, and
    every beat of a strip shorter than that (a 10 s strip), share the median of the first
    TEMPLATE_BEATS beats (a warm-up, as a monitor would buffer). Chunked to bound memory on
    30-minute records."""
    from numpy.lib.stride_tricks import sliding_window_view

    n = min(TEMPLATE_BEATS, len(windows))
    out = np.empty_like(windows)
    out[:n] = np.median(windows[:n], axis=0)
    for start in range(0, len(windows) - n + 1, 1024):
        view = sliding_window_view(windows[start : start + 1024 + n - 1], n, axis=0)
        out[start + n - 1 : start + n - 1 + len(view)] = np.median(view, axis=2)
    return out


def beat_windows(
    x: npt.NDArray[np.float64], peaks: npt.NDArray[np.int64], window: BeatWindow
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Model input ``[n, 2, window]`` for the peaks whose window fits in ``x``, and that mask.

    Channel 0 is the beat z-scored on its own (per-beat normalisation removes the gain
    differences between patients and leads, which an inter-patient model would otherwise
    learn as identity). Channel 1 is the beat minus the patient's running template (see
    ``running_template``), scaled by that template's spread: "how unlike this patient's
    usual beat", which tells an ectopic beat in a bundle-branch-block patient from his
    normal, already wide, QRS.
    """
    beats, _, keep = beat_inputs(x, peaks, window, fs=None)
    return beats, keep


def beat_inputs(
    x: npt.NDArray[np.float64],
    peaks: npt.NDArray[np.int64],
    window: BeatWindow,
    fs: float | None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """``beat_windows`` plus the morphology features ``[n, len(MORPHOLOGY_FEATURES)]`` of the
    same beats at model rate ``fs`` (skipped, zero columns, when ``fs`` is None)."""
    peaks = np.asarray(peaks, dtype=np.int64)
    keep = (peaks - window.before >= 0) & (peaks + window.after <= len(x))
    starts = peaks[keep] - window.before
    offsets = np.arange(window.length)
    windows = np.asarray(x, dtype=np.float64)[starts[:, None] + offsets[None, :]]
    windows = windows - windows.mean(axis=1, keepdims=True)
    n_morph = 0 if fs is None else len(MORPHOLOGY_FEATURES)
    if len(windows) == 0:
        empty = np.zeros((0, BEAT_CHANNELS, window.length), np.float32)
        return empty, np.zeros((0, n_morph), np.float32), keep
    template = running_template(windows)
    own = windows / (windows.std(axis=1, keepdims=True) + 1e-6)
    deviation = (windows - template) / (template.std(axis=1, keepdims=True) + 1e-6)
    morph = (
        np.zeros((len(windows), 0), np.float32)
        if fs is None
        else morphology_features(windows, template, window.before, fs)
    )
    return np.stack([own, deviation], axis=1).astype(np.float32), morph, keep


def record_beats(record: EcgRecord, model_fs: float, window: BeatWindow) -> BeatSet:
    """Every annotated beat of a record as model inputs, located at the reference R peaks."""
    is_beat = np.array([s in BEAT_SYMBOLS for s in record.beat_symbols], dtype=bool)
    samples = record.beat_samples[is_beat]
    symbols = np.array(
        [BEAT_SYMBOLS.index(s) for s in record.beat_symbols if s in BEAT_SYMBOLS], dtype=np.int64
    )
    labels = np.asarray(SYMBOL_TO_AAMI, dtype=np.int64)[symbols]
    rr = rr_features(samples / record.fs)
    af = af_columns(samples / record.fs)
    x = condition(resample(record.signal, record.fs, model_fs), model_fs)
    peaks = np.round(samples * (model_fs / record.fs)).astype(np.int64)
    beats, morph, keep = beat_inputs(x, peaks, window, model_fs)
    return BeatSet(
        beats=beats,
        rr=np.concatenate([rr[keep], morph, af[keep]], axis=1),
        labels=labels[keep],
        record=np.zeros(int(keep.sum()), dtype=np.int64),
        record_names=(record.name,),
        symbols=symbols[keep],
    )
