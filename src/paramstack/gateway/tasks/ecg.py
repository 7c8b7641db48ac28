"""ECG beat classification: a strip (JSON samples + rate, or a WFDB upload) → per-beat classes,
rhythm summary and the strip-level prediction.

The ECG library (``paramstack.ecg``, the ``[ecg]`` extra) is imported on first use, so a
gateway that serves only images starts without it.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.backends.onnx_sessions import LoadedModel
from paramstack.errors import InvalidInput, Unavailable
from paramstack.gateway.payload import Payload
from paramstack.gateway.tasks import TaskInput, Timings, predict_task

_RECORD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTEXT_MAX_S = [600.0]  # Settings.ecg_context_max_s, set by the gateway at startup


def set_context_limit(seconds: float) -> None:
    """The longest ``context`` a request may send (the gateway passes its settings here)."""
    _CONTEXT_MAX_S[0] = float(seconds)


def strip_input(
    signal: object,
    fs: object,
    lead: int = 0,
    intervals: bool = False,
    context: object = None,
) -> TaskInput:
    try:
        samples = np.ascontiguousarray(np.asarray(signal, dtype=np.float64))
        rate = float(fs)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            "send 'signal' (list of mV samples) and 'fs' (Hz)", param="signal"
        ) from exc
    try:
        before = np.ascontiguousarray(np.asarray([] if context is None else context, np.float64))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            "context must be a list of mV samples", code="invalid_context", param="context"
        ) from exc
    key = f"{rate!r}:{samples.shape}:{intervals}:{before.shape}".encode()
    digest = hashlib.sha256(key + samples.tobytes() + before.tobytes()).hexdigest()
    return TaskInput(
        digest,
        samples,
        samples.nbytes + before.nbytes,
        {"fs": rate, "lead": lead, "intervals": intervals, "context": before},
    )


def _context_seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidInput("context_s must be a number of seconds", param="context_s") from exc
    if not seconds >= 0:
        raise InvalidInput("context_s must be 0 or more seconds", param="context_s")
    return seconds


def read_wfdb(header: bytes, data: bytes, lead: int) -> tuple[npt.NDArray[np.float64], float]:
    """Read an uploaded WFDB record (.hea + .dat) with wfdb itself; the record name comes from
    the header's first line, as WFDB requires the files to be named after it."""
    import wfdb

    first = header.decode("ascii", errors="replace").split(maxsplit=1)
    name = first[0].split("/")[0] if first else ""
    if not _RECORD_NAME.match(name):
        raise InvalidInput(
            "the WFDB header does not start with a valid record name", param="header"
        )
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, f"{name}.hea").write_bytes(header)
        Path(folder, f"{name}.dat").write_bytes(data)
        try:
            record = wfdb.rdrecord(str(Path(folder, name)))
        except Exception as exc:  # wfdb raises many types for malformed files
            raise InvalidInput(f"cannot read the WFDB record: {type(exc).__name__}") from exc
    signals = np.asarray(record.p_signal, dtype=np.float64)
    if not 0 <= lead < signals.shape[1]:
        raise InvalidInput(f"lead {lead} not in the record (it has {signals.shape[1]})",
                           param="lead")  # fmt: skip
    return signals[:, lead], float(record.fs)


def _lead(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError) as exc:
        raise InvalidInput("lead must be an integer", param="lead") from exc


def _flag(value: object, name: str) -> bool:
    """A JSON boolean, or its text form from a multipart field."""
    text = {"true": True, "1": True, "false": False, "0": False}
    if isinstance(value, str) and value.lower() in text:
        return text[value.lower()]
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", param=name)
    return value


def strip_prediction(
    beats: list[dict[str, Any]], labels: list[str]
) -> tuple[str, float, dict[str, float]]:
    """The strip's headline: the most frequent beat class, with mean per-class probabilities."""
    probs = np.array([[b["probabilities"][lab] for lab in labels] for b in beats])
    counts = np.bincount(probs.argmax(axis=1), minlength=len(labels))
    best = int(counts.argmax())
    mean = probs.mean(axis=0)
    return (
        labels[best],
        float(mean[best]),
        {lab: float(p) for lab, p in zip(labels, mean, strict=True)},
    )


@predict_task("ecg-beats")
class EcgBeats:
    def warm(self) -> None:
        """neurokit2's import takes ~2.4 s: pay it at startup, not on the first strip."""
        try:
            import neurokit2  # noqa: F401

            import paramstack.ecg.strip  # noqa: F401
        except ImportError as exc:
            raise Unavailable(
                "serving ECG models needs the ecg extra: pip install 'paramstack[ecg]'"
            ) from exc

    def parse(self, payload: Payload) -> TaskInput:
        lead = _lead(payload.fields.get("lead", 0))
        intervals = _flag(payload.fields.get("intervals", False), "intervals")
        if payload.files:
            header, data = payload.files.get("header"), payload.files.get("data")
            if header is None or data is None:
                raise InvalidInput("a WFDB upload needs 'header' (.hea) and 'data' (.dat) parts",
                                   param="header")  # fmt: skip
            signal, fs = read_wfdb(header.data, data.data, lead)
            # a WFDB upload carries its context in the record: its first context_s seconds
            split = round(_context_seconds(payload.fields.get("context_s", 0)) * fs)
            if split >= len(signal):
                raise InvalidInput("context_s is not shorter than the record", param="context_s")
            return strip_input(signal[split:], fs, lead, intervals, signal[:split])
        if "signal" not in payload.fields or "fs" not in payload.fields:
            raise InvalidInput("send 'signal' (list of mV samples) and 'fs' (Hz)", param="signal")
        if "context_s" in payload.fields:
            raise InvalidInput(
                "context_s is for WFDB uploads; with JSON send the samples as 'context'",
                param="context_s",
            )
        return strip_input(
            payload.fields["signal"],
            payload.fields["fs"],
            lead,
            intervals,
            payload.fields.get("context"),
        )

    def compute(
        self, loaded: LoadedModel, data: TaskInput, serving: Mapping[str, Any], timings: Timings
    ) -> dict[str, Any]:
        from paramstack.ecg.strip import analyze_strip, pack_inputs, strip_options

        options = strip_options(serving)
        analysis = analyze_strip(
            lambda beats, rr: loaded.run(pack_inputs(beats, rr)),
            data.value,
            data.options["fs"],
            intervals=data.options["intervals"],
            context=data.options["context"],
            context_max_s=_CONTEXT_MAX_S[0],
            **options,
        )
        took = analysis["timings_ms"]
        timings.preprocessing_ms = (
            took["preprocess"] + took["detect_and_features"] + took["intervals"]
        )
        timings.inference_ms = took["model"]
        if not analysis["beats"]:
            raise InvalidInput("no complete beat window in the strip", code="no_beats")
        prediction, confidence, probabilities = strip_prediction(
            analysis["beats"], options["labels"]
        )
        return {
            "prediction": prediction,
            "confidence": confidence,
            "probabilities": probabilities,
            "beats": analysis["beats"],
            "summary": analysis["summary"],
        }
