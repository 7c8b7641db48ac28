"""Per-beat model inputs as a served 10 s strip computes them, in one place for serving and
training.

A served strip has no record to average over: its RR features use the strip's own mean RR,
its P/morphology features the strip's median beat as template, its AF columns the strip's R
peaks. A head trained on whole-record inputs read those differently on strips (session 6,
ECG round 3: served DS1 strips lost 0.7-3.9 points to the CNN alone). ``strip_inputs`` is
what ``strip.analyze_strip`` calls; ``strip_like_columns`` tiles a whole record into strips
and calls the same function, so a model can be fitted and scored on exactly what it will be
served (``EcgTrainConfig.scalar_inputs: strip``, session 7, ECG round 4).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from paramstack.ecg.beats import (
    BEAT_FEATURES,
    TEMPLATE_BEATS,
    BeatWindow,
    beat_inputs,
    condition,
    resample,
    rr_features,
)
from paramstack.ecg.records import BEAT_SYMBOLS, EcgRecord
from paramstack.ecg.rhythm import af_columns

STRIP_SECONDS = 10.0  # the served strip (the bench and the gateway's typical request)
Floats = npt.NDArray[np.float32]


def strip_inputs(
    conditioned: npt.NDArray[np.float64],
    peaks: npt.NDArray[np.int64],
    window: BeatWindow,
    fs: float,
    n_features: int | None = None,
    first: int = 0,
) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """(beats ``[k, 2, window]``, the first ``n_features`` of BEAT_FEATURES ``[k, n]``, the
    mask of the peaks whose window fits) from one strip alone. Needs two peaks or more;
    ``n_features`` None reads the RR features only (models exported before morphology).
    ``peaks[:first]`` are context (session 7): they count in the RR and AF columns and the
    running template, but get no inputs of their own (mask False); only the TEMPLATE_BEATS - 1
    of them the template reads are windowed, so the inputs equal those of the whole run."""
    rr = rr_features(peaks / fs)
    wanted = rr.shape[1] if n_features is None else n_features
    morph_fs = fs if wanted > rr.shape[1] else None
    lead = max(0, first - (TEMPLATE_BEATS - 1))
    beats, morph, tail = beat_inputs(conditioned, peaks[lead:], window, morph_fs)
    context = int(tail[: first - lead].sum())  # windowed context beats: the template's only
    beats, morph = beats[context:], morph[context:]
    keep = np.zeros(len(peaks), dtype=bool)
    keep[first:] = tail[first - lead :]
    gate = af_columns(peaks / fs) if wanted > rr.shape[1] + morph.shape[1] else None
    features = np.concatenate([rr[keep], morph, *([] if gate is None else [gate[keep]])], 1)
    return beats, np.ascontiguousarray(features[:, :wanted], dtype=np.float32), keep


def strip_starts(n_samples: int, fs: float, seconds: float = STRIP_SECONDS) -> list[int]:
    """Strip starts in priority order: a tiling from 0, a tiling shifted by half a strip (its
    strips hold, near their middle, the beats the first tiling cut at an edge), and one strip
    ending at the record's end (a short last tile's beats)."""
    length = round(seconds * fs)
    first = list(range(0, max(n_samples - length, 0) + 1, length))
    second = list(range(length // 2, max(n_samples - length, 0) + 1, length))
    return [*first, *second, max(n_samples - length, 0)]


def strip_like_columns(
    resampled: npt.NDArray[np.float64],
    peaks: npt.NDArray[np.int64],
    window: BeatWindow,
    fs: float,
    seconds: float = STRIP_SECONDS,
    context_s: float = 0.0,
) -> Floats:
    """BEAT_FEATURES ``[len(peaks), n]`` for every peak, each from the first strip of
    ``strip_starts`` in which its window fits, computed by ``strip_inputs`` on that strip's
    own signal (``condition`` of the resampled segment, as the gateway does); rows of peaks no
    strip holds stay NaN. ``resampled`` is the record at the model's rate ``fs``.
    ``context_s`` > 0 (session 7): each strip is served with the ``context_s`` seconds that
    precede it (fewer at the record's start), as ``analyze_strip(..., context=...)`` analyses
    them: one segment, inputs kept for the strip's own peaks."""
    peaks = np.asarray(peaks, dtype=np.int64)
    out = np.full((len(peaks), len(BEAT_FEATURES)), np.nan, dtype=np.float32)
    done = np.zeros(len(peaks), dtype=bool)
    length = round(seconds * fs)
    for start in strip_starts(len(resampled), fs, seconds):
        inside = np.flatnonzero((peaks >= start) & (peaks < start + length))
        if len(inside) < 2 or done[inside].all():
            continue
        begin = max(0, start - round(context_s * fs))
        seen = np.flatnonzero((peaks >= begin) & (peaks < start + length))
        segment = condition(resampled[begin : start + length], fs)
        _, features, keep_seen = strip_inputs(
            segment, peaks[seen] - begin, window, fs, len(BEAT_FEATURES), len(seen) - len(inside)
        )
        rows = inside[keep_seen[len(seen) - len(inside) :]]
        fresh = ~done[rows]
        out[rows[fresh]] = features[fresh]
        done[rows[fresh]] = True
    return out


def record_strip_columns(
    record: EcgRecord, model_fs: float, window: BeatWindow, context_s: float = 0.0
) -> Floats:
    """``strip_like_columns`` for the beats ``beats.record_beats`` keeps, in its order (the
    reference R peaks). A beat that no strip holds with two peaks or more (a pause longer than
    a strip) keeps NaN: the caller decides."""
    is_beat = np.array([s in BEAT_SYMBOLS for s in record.beat_symbols], dtype=bool)
    x = resample(record.signal, record.fs, model_fs)
    peaks = np.round(record.beat_samples[is_beat] * (model_fs / record.fs)).astype(np.int64)
    keep = (peaks - window.before >= 0) & (peaks + window.after <= len(x))
    columns: Floats = strip_like_columns(x, peaks, window, model_fs, context_s=context_s)[keep]
    return columns
