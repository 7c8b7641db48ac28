"""Served strips with preceding context (session 7): ``analyze_strip(..., context=...)``
analyses context + signal as one recording and returns only the signal's beats; the
``context:N`` evaluation inputs serve each 10 s strip with the N s before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from paramstack.ecg.beats import BEAT_FEATURES, BeatWindow, condition
from paramstack.ecg.dataset import context_seconds, load_beats
from paramstack.ecg.records import read_record
from paramstack.ecg.strip import analyze_strip
from paramstack.ecg.strip_inputs import strip_inputs, strip_like_columns
from paramstack.errors import InvalidInput
from tests.test_ecg_strip_inputs import record_at_model_rate

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
FS, WINDOW = 180.0, BeatWindow(64, 80)
LABELS = list("NSVFQ")


class Capture:
    """A model that records its inputs and answers with a fixed function of them, so equal
    inputs give equal outputs and a wrong row shows in the comparison."""

    def __init__(self) -> None:
        self.features: list[npt.NDArray[np.float32]] = []
        self.beats: list[npt.NDArray[np.float32]] = []

    def __call__(self, beats: Any, features: Any) -> npt.NDArray[np.float32]:
        self.beats.append(beats)
        self.features.append(features)
        w = np.linspace(-1, 1, features.shape[1] * 5, dtype=np.float32).reshape(-1, 5)
        return np.asarray(features @ w + beats[:, 1, :5], dtype=np.float32)


def _analyze(model: Capture, signal: Any, **kwargs: Any) -> dict[str, Any]:
    return analyze_strip(model, signal, 360.0, model_fs=FS, window=(64, 80), labels=LABELS,
                         n_features=len(BEAT_FEATURES), **kwargs)  # fmt: skip


def test_context_plus_signal_equals_the_concatenation_limited_to_the_signal() -> None:
    record = read_record(MITDB, "208")  # PVC-rich: RR and template matter
    start, context_s = 300 * 360, 60.0
    context = record.signal[start - int(context_s * 360) : start]
    signal = record.signal[start : start + 3600]
    whole, alone, served = Capture(), Capture(), Capture()
    concatenated = _analyze(whole, np.concatenate([context, signal]))
    lone = _analyze(alone, signal)
    with_context = _analyze(served, signal, context=context)
    # the signal's beats, and the context's last beats whose window crosses the signal's start
    carried_s = context_s - 80 / FS
    mine = [b for b in concatenated["beats"] if b["time_s"] > carried_s + 1e-3]
    beats = with_context["beats"]
    assert len(beats) == len(mine) >= 10 and all(-80 / FS < b["time_s"] < 10 for b in beats)
    for got, want in zip(beats, mine, strict=True):
        assert got["time_s"] == pytest.approx(want["time_s"] - context_s, abs=1e-3)
        assert got["class"] == want["class"] and got["probabilities"] == want["probabilities"]
    rows = np.array([b["time_s"] > carried_s + 1e-3 for b in concatenated["beats"]])
    assert np.array_equal(served.features[0], whole.features[0][rows])
    assert np.array_equal(served.beats[0], whole.beats[0][rows])
    summary = with_context["summary"]
    assert summary["context_s"] == context_s and lone["summary"]["context_s"] == 0.0
    assert summary["beats_classified"] == len(beats) == sum(summary["counts"].values())
    carried = sum(b["time_s"] < 0 for b in beats)
    assert summary["beats_from_context"] == carried and lone["summary"]["beats_from_context"] == 0
    assert summary["duration_s"] == 10.0
    # the context changes the inputs: the lone strip's "record" RR is its own 10 s mean
    record_rr = list(BEAT_FEATURES).index("record_rr_s")
    assert not np.allclose(alone.features[0][-5:, record_rr], served.features[0][-5:, record_rr])
    # the first beats of the signal get a window reaching into the context
    assert beats[0]["time_s"] < lone["beats"][0]["time_s"] or len(beats) > len(lone["beats"])


def test_back_to_back_strips_with_context_classify_every_beat_once() -> None:
    """A monitor streaming 10 s strips, each sent with what came before: a beat whose window
    crosses a strip's end is returned by the next strip, so no beat is lost or doubled."""
    record = read_record(MITDB, "208")
    x = record.signal[: 5 * 3600]
    whole = _analyze(Capture(), x)
    served: list[float] = []
    for k in range(1, 5):
        out = _analyze(Capture(), x[k * 3600 : (k + 1) * 3600], context=x[: k * 3600])
        served += [k * 10.0 + b["time_s"] for b in out["beats"]]
    expected = [b["time_s"] for b in whole["beats"] if b["time_s"] >= 10.0 - 80 / FS + 1e-3]
    assert len(expected) >= 40
    assert len(served) == len(expected)
    np.testing.assert_allclose(sorted(served), expected, atol=2e-3)
    lone = sum(len(_analyze(Capture(), x[k * 3600 : (k + 1) * 3600])["beats"]) for k in range(1, 5))
    assert lone < len(expected)  # lone strips lose the beats at their edges


def test_context_is_validated_like_the_signal() -> None:
    signal = read_record(MITDB, "100").signal[:3600]
    cases = [
        (np.full(360 * 5, np.nan), "non_finite_context"),
        (np.full(360 * 5, 0.2), "flat_context"),
        (np.zeros((2, 360)), "invalid_context"),
        (np.tile(signal, 2), "context_too_long"),  # 20 s against a 15 s bound
    ]
    for context, code in cases:
        with pytest.raises(InvalidInput) as caught:
            _analyze(Capture(), signal, context=context, context_max_s=15.0)
        assert caught.value.code == code and caught.value.param == "context"
    empty = _analyze(Capture(), signal, context=[])
    assert empty["summary"]["context_s"] == 0.0


def test_context_columns_are_each_strip_served_with_its_context() -> None:
    x, peaks = record_at_model_rate("208", seconds=120.0)
    length, context = 1800, 30.0
    plain = strip_like_columns(x, peaks, WINDOW, FS)
    served = strip_like_columns(x, peaks, WINDOW, FS, context_s=context)
    start = 4 * length  # a strip with its full 30 s of context
    first = start - int(context * FS)
    seen = np.flatnonzero((peaks >= first) & (peaks < start + length))
    _, features, keep = strip_inputs(condition(x[first : start + length], FS),
                                     peaks[seen] - first, WINDOW, FS, 29)  # fmt: skip
    own = peaks[seen][keep] >= start
    rows = seen[keep][own]
    assert len(rows) >= 10 and np.array_equal(served[rows], features[own])
    assert not np.allclose(served[rows], plain[rows])  # other inputs than the lone strip
    fits = (peaks >= WINDOW.before) & (peaks + WINDOW.after <= len(x))
    assert np.isfinite(served[fits]).all()
    first_strip = peaks < length  # no context before the record's start: the lone strip
    assert np.array_equal(served[first_strip & fits][:3], plain[first_strip & fits][:3])


def test_load_beats_context_inputs_are_cached_and_checked(tmp_path: Path) -> None:
    record = load_beats(MITDB, ["119"], FS, WINDOW, cache_dir=tmp_path)
    served = load_beats(MITDB, ["119"], FS, WINDOW, cache_dir=tmp_path, scalar_inputs="context:60")
    again = load_beats(MITDB, ["119"], FS, WINDOW, cache_dir=tmp_path, scalar_inputs="context:60")
    assert np.array_equal(served.labels, record.labels) and np.isfinite(served.rr).all()
    assert np.array_equal(again.rr, served.rr)
    assert len(list(tmp_path.glob("119-context60-*.npz"))) == 1
    assert context_seconds("context:300") == 300.0 and context_seconds("strip") is None
    for bad in ("context:x", "context:-1", "context:9999"):
        with pytest.raises(InvalidInput, match="context:N"):
            load_beats(MITDB, ["119"], FS, WINDOW, scalar_inputs=bad)
