"""Analyse an ECG strip with any beat classifier: validate, resample, detect beats, classify
every beat in ONE model call, summarise the rhythm.

The model is passed in as ``run_model(beats, rr) -> logits or probabilities`` so the same
code serves onnxruntime in the gateway, torch in a notebook, or a test double of neither.
No torch import here: the gateway runs this without the training stack.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from paramstack.ecg.beats import (
    BeatWindow,
    check_beat_channels,
    check_beat_features,
    condition,
    resample,
)
from paramstack.ecg.intervals import beat_intervals, interval_summary
from paramstack.ecg.rhythm import AfDetector, vf_episodes
from paramstack.ecg.signal import detect_r_peaks, hrv_time_domain
from paramstack.ecg.strip_inputs import strip_inputs
from paramstack.errors import InvalidInput, ParamstackError

RunModel = Callable[[npt.NDArray[np.float32], npt.NDArray[np.float32]], npt.NDArray[Any]]
MIN_FS, MAX_FS = 50.0, 10_000.0  # Hz; outside this a "rate" is a unit mistake
MIN_SECONDS, MAX_SECONDS = 4.0, 600.0
MIN_PEAK_TO_PEAK_MV = 0.05  # a lead-off / flat line; a real QRS is > 0.3 mV
MIN_HR_BPM, MAX_HR_BPM = 20.0, 300.0
MAX_CONTEXT_SECONDS = 600.0  # default bound on ``context`` (Settings.ecg_context_max_s)


def pack_inputs(
    beats: npt.NDArray[np.float32], rr: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """The single-input layout of exported models: ``beats [n, channels, window]`` flattened
    channel by channel, then the raw RR features ``[n, n_rr]``."""
    flat = np.asarray(beats, dtype=np.float32).reshape(len(beats), -1)
    return np.ascontiguousarray(np.concatenate([flat, rr], axis=1), dtype=np.float32)


def onnx_runner(session: Any, input_name: str | None = None) -> RunModel:
    """Adapt an onnxruntime session of an exported ECG model to ``run_model``."""
    name = input_name or session.get_inputs()[0].name
    return lambda beats, rr: np.asarray(session.run(None, {name: pack_inputs(beats, rr)})[0])


def strip_options(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``analyze_strip`` keyword arguments from a registered model's lineage / meta.json."""
    if meta.get("task") != "ecg-beats":
        raise InvalidInput("model is not an ECG beat classifier (task != 'ecg-beats')")
    check_beat_channels(meta.get("beat_channels"))
    window = meta["window"]
    return {
        "model_fs": float(meta["model_fs"]),
        "window": (int(window["before"]), int(window["after"])),
        "labels": list(meta["class_labels"]),
        "n_features": check_beat_features(meta.get("rr_features")),
        "outputs": meta.get("output_kind", "logits"),
        "af_detector": AfDetector.from_json(meta["af_detector"])
        if meta.get("af_detector")
        else None,
    }


def _check_rate(fs: float) -> None:
    if isinstance(fs, bool) or not isinstance(fs, int | float) or not math.isfinite(fs):
        raise InvalidInput(
            "sampling rate must be a finite number (Hz)", code="invalid_rate", param="fs"
        )
    if not MIN_FS <= fs <= MAX_FS:
        raise InvalidInput(
            f"sampling rate {fs:g} Hz is outside {MIN_FS:g} to {MAX_FS:g} Hz",
            code="invalid_rate",
            param="fs",
        )


def _samples(
    values: Sequence[float] | npt.NDArray[Any],
    fs: float,
    param: str,
    min_s: float,
    max_s: float,
) -> npt.NDArray[np.float64]:
    """One lead of finite, non-flat samples lasting ``min_s`` to ``max_s`` seconds; the
    errors name ``param`` (``signal`` or ``context``)."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{param} must be a list of numbers", code=f"invalid_{param}", param=param
        ) from exc
    if x.ndim != 1:
        raise InvalidInput(
            f"{param} must be one lead (1-D), got shape {list(x.shape)}",
            code=f"invalid_{param}",
            param=param,
        )
    seconds = len(x) / fs
    if seconds < min_s:
        raise InvalidInput(
            f"{param} is {seconds:.2f} s long; at least {min_s:g} s needed",
            code=f"{param}_too_short",
            param=param,
        )
    if seconds > max_s:
        raise InvalidInput(
            f"{param} is {seconds:.0f} s long; at most {max_s:g} s accepted",
            code=f"{param}_too_long",
            param=param,
        )
    if not np.all(np.isfinite(x)):
        raise InvalidInput(
            f"{param} contains NaN or infinite samples",
            code=f"non_finite_{param}",
            param=param,
        )
    if np.ptp(x) < MIN_PEAK_TO_PEAK_MV:
        raise InvalidInput(
            f"flat {param} (peak-to-peak {np.ptp(x):.3g} mV): lead off or no ECG",
            code=f"flat_{param}",
            param=param,
        )
    return x


def _validated(signal: Sequence[float] | npt.NDArray[Any], fs: float) -> npt.NDArray[np.float64]:
    _check_rate(fs)
    return _samples(signal, fs, "signal", MIN_SECONDS, MAX_SECONDS)


def _probabilities(
    raw: npt.NDArray[Any], n: int, labels: Sequence[str], kind: str
) -> npt.NDArray[np.float64]:
    out = np.asarray(raw, dtype=np.float64)
    if out.shape != (n, len(labels)) or not np.all(np.isfinite(out)):
        raise ParamstackError(
            f"model returned shape {list(out.shape)} (expected {[n, len(labels)]}) or non-finite "
            "values",
            code="bad_model_output",
        )
    if kind == "logits":
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def rhythm_summary(
    x: npt.NDArray[np.float64],
    fs: float,
    peaks_s: npt.NDArray[np.float64],
    af: AfDetector | None,
    own: npt.NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """VF episodes (any strip of 4 s or more) and, with a detector and 8 beats or more, the mean
    per-beat AF probability: a screening hint from a dozen beats, not a diagnosis. ``own``
    marks the peaks of ``x`` among ``peaks_s`` when earlier context beats precede them: the AF
    windows read the context, the mean covers ``x``'s beats only."""
    vf = vf_episodes(x, fs) if len(x) >= 4 * fs else []
    summary: dict[str, Any] = {
        "vf_episodes_s": [[round(e.start_s, 2), round(e.end_s, 2)] for e in vf],
        "af_probability": None,
        "af_suspected": None,
    }
    mine = np.ones(len(peaks_s), dtype=bool) if own is None else own
    if af is not None and int(mine.sum()) >= 8:
        probability = float(af.probabilities(peaks_s)[mine].mean())
        summary.update(
            af_probability=round(probability, 4), af_suspected=probability >= af.threshold
        )
    return summary


def analyze_strip(
    run_model: RunModel,
    signal: Sequence[float] | npt.NDArray[Any],
    fs: float,
    *,
    model_fs: float,
    window: tuple[int, int],
    labels: Sequence[str],
    outputs: Literal["logits", "probabilities"] = "logits",
    detector: Literal["neurokit", "pantompkins1985", "xqrs"] = "neurokit",
    af_detector: AfDetector | None = None,
    intervals: bool = False,
    n_features: int | None = None,
    context: Sequence[float] | npt.NDArray[Any] | None = None,
    context_max_s: float = MAX_CONTEXT_SECONDS,
) -> dict[str, Any]:
    """Per-beat class, probabilities and time (s from the strip start), rhythm summary, timings.

    ``signal`` is one lead in mV at ``fs`` Hz; ``window`` is (samples before, after the R
    peak) at ``model_fs``. Beats too close to either end for a full window are detected and
    counted in the heart rate but not classified. Bad strips raise ``InvalidInput``.
    ``intervals`` adds QT/QTc and ST deviation per beat (wavelet delineation, ~100 ms).
    ``n_features`` is how many of ``beats.BEAT_FEATURES`` the model reads (default: the RR
    features only; ``strip_options`` takes it from the model's meta).
    ``context`` (session 7) is the samples that immediately precede ``signal`` at the same
    rate, up to ``context_max_s``: context + signal are analysed as one recording (RR, running
    template, morphology and AF inputs see the context, as a monitor's stream would), and
    ``signal``'s beats are returned, timed from its start, plus the context's last beats
    whose window crosses the signal's start (negative times, ``summary.beats_from_context``):
    the strip that ended there could not classify them, so a stream of back-to-back strips,
    each sent with context, gets every beat once. ``summary.context_s`` says how much context
    was used. Without it the result is what a lone strip gives.
    """
    t0 = time.perf_counter()
    x = _validated(signal, fs)
    before = (
        np.zeros(0)
        if context is None or len(context) == 0
        else _samples(context, fs, "context", 0.0, context_max_s)
    )
    resampled = resample(np.concatenate([before, x]) if len(before) else x, float(fs), model_fs)
    conditioned = condition(resampled, model_fs)
    t1 = time.perf_counter()
    offset_s = len(before) / fs
    found = detect_r_peaks(resampled, model_fs, method=detector)
    start = round(offset_s * model_fs)
    own = found >= start  # the signal's peaks; the rest is context
    peaks = found[own]
    # a context beat whose window crosses the signal's start could not be classified by the
    # strip that ended there: returned here (negative time), so back-to-back strips sent with
    # context classify every beat once
    carried = (found < start) & (found + window[1] > start)
    returned_peaks = found[own | carried]
    seconds = len(x) / fs
    if len(peaks) < 2:
        raise InvalidInput(
            f"found {len(peaks)} beats in {seconds:.1f} s: no usable ECG, or the "
            "sampling rate is wrong",
            code="no_beats",
            param="signal",
        )
    rr_s = np.diff(peaks) / model_fs
    heart_rate = 60.0 / float(rr_s.mean())
    if not MIN_HR_BPM <= heart_rate <= MAX_HR_BPM:
        raise InvalidInput(
            f"detected heart rate {heart_rate:.0f} bpm is implausible: check the sampling rate",
            code="implausible_rate",
            param="fs",
        )
    first = len(found) - len(returned_peaks)
    beats, features, keep_all = strip_inputs(
        conditioned, found, BeatWindow(*window), model_fs, n_features, first
    )
    keep = keep_all[first:]
    t2 = time.perf_counter()
    n = int(keep.sum())
    probs = (
        _probabilities(run_model(beats, features), n, labels, outputs)
        if n
        else np.zeros((0, len(labels)))
    )
    t3 = time.perf_counter()
    classes = probs.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    times = returned_peaks[keep] / model_fs - offset_s
    per_beat = [
        {
            "time_s": round(float(t), 4),
            "class": labels[int(c)],
            "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, row, strict=True)},
        }
        for t, c, row in zip(times, classes, probs, strict=True)
    ]
    t4 = time.perf_counter()
    lead = max(0, start - round(2.0 * model_fs))  # delineate the signal, not the context
    measured = (
        beat_intervals(resampled[lead:], model_fs, returned_peaks - lead) if intervals else None
    )
    if measured is not None:
        for beat, values in zip(
            per_beat, (m for m, k in zip(measured, keep, strict=True) if k), strict=True
        ):
            beat.update(values)
    counts = {lab: int(np.sum(classes == i)) for i, lab in enumerate(labels)}
    summary: dict[str, Any] = {
        "duration_s": round(seconds, 3),
        "beats_detected": len(peaks),
        "beats_classified": n,
        "counts": counts,
        "heart_rate_bpm": round(heart_rate, 1),
        "hrv": hrv_time_domain(rr_s) if len(rr_s) >= 2 else None,
        "rhythm": rhythm_summary(x, fs, found / model_fs - offset_s, af_detector, own),
        "intervals": None if measured is None else interval_summary(measured),
        "context_s": round(offset_s, 3),
        "beats_from_context": int(keep[: int(carried.sum())].sum()),
    }
    return {
        "beats": per_beat,
        "summary": summary,
        "timings_ms": {
            "preprocess": 1000 * (t1 - t0),
            "detect_and_features": 1000 * (t2 - t1),
            "model": 1000 * (t3 - t2),
            "intervals": 1000 * (time.perf_counter() - t4) if intervals else 0.0,
            "total": 1000 * (time.perf_counter() - t0),
        },
    }
