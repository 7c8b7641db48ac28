"""Beat sets for a list of records, cached per record on disk.

Reading, resampling and filtering a 30-minute record takes about a second; training and
evaluation reuse the cached ``.npz`` (keyed by database path, record, rate and window), so
`ecg evaluate` after `ecg train` does not redo the signal processing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paramstack.ecg.beats import BeatSet, BeatWindow, record_beats
from paramstack.ecg.config import SCALAR_INPUTS
from paramstack.ecg.records import read_record
from paramstack.errors import InvalidInput

_CACHE_VERSION = 8  # bump when beats.py changes what it produces


def _cache_path(
    cache_dir: Path, db_dir: Path, name: str, model_fs: float, w: BeatWindow, kind: str = ""
) -> Path:
    parts: list[object] = [_CACHE_VERSION, str(Path(db_dir).resolve()), name, model_fs]
    key = json.dumps([*parts, w.before, w.after, *([kind] if kind else [])])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{name}-{kind + '-' if kind else ''}{digest}.npz"


def suffix_seconds(kind: str, prefix: str, highest: float, why: str = "") -> float | None:
    """N of a ``<prefix>:N`` input kind, checked to lie in 0..``highest``; None for other kinds."""
    if not kind.startswith(f"{prefix}:"):
        return None
    try:
        seconds = float(kind.split(":", 1)[1])
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= highest:
        raise InvalidInput(
            f"{kind!r}: {prefix}:N needs N seconds from 0 to {highest:g}{why}", param="inputs"
        )
    return seconds


def context_seconds(scalar_inputs: str) -> float | None:
    """Seconds of preceding context of a ``context:N`` input kind (session 7: each beat's 10 s
    strip served with the N s before it); None for the other kinds."""
    return suffix_seconds(scalar_inputs, "context", 3600)


def _strip_columns(
    part: BeatSet,
    db_dir: Path,
    name: str,
    model_fs: float,
    window: BeatWindow,
    path: Path | None,
    context_s: float = 0.0,
) -> npt.NDArray[np.float32]:
    """The record's beats' scalar inputs as 10 s strips compute them (``ecg.strip_inputs``),
    each with ``context_s`` of preceding signal; a beat no strip holds (a pause longer than a
    strip) keeps its whole-record inputs."""
    from paramstack.ecg.strip_inputs import record_strip_columns

    if path is not None and path.is_file():
        with np.load(path) as data:
            return np.asarray(data["rr"], dtype=np.float32)
    columns = record_strip_columns(read_record(db_dir, name), model_fs, window, context_s)
    missing = np.isnan(columns).any(axis=1)
    columns[missing] = part.rr[missing]
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, rr=columns)
        tmp.replace(path)
    return columns


def load_beats(
    db_dir: Path,
    records: list[str],
    model_fs: float,
    window: BeatWindow,
    *,
    cache_dir: Path | None = None,
    scalar_inputs: str = "record",
) -> BeatSet:
    """All annotated beats of ``records`` (reference R-peak positions), concatenated.

    ``scalar_inputs="strip"``: the per-beat scalar inputs (RR, morphology, AF columns) as a
    served 10 s strip around each beat computes them, instead of from the whole record; the
    beat windows stay the record's. ``"context:N"``: the same strips, each analysed with the
    N seconds of the record that precede it (``context_seconds``)."""
    context_s = context_seconds(scalar_inputs)
    if scalar_inputs not in SCALAR_INPUTS and context_s is None:
        raise InvalidInput(f"scalar_inputs {scalar_inputs!r}; valid: record, strip, context:N")
    parts: list[BeatSet] = []
    for name in records:
        path = _cache_path(cache_dir, db_dir, name, model_fs, window) if cache_dir else None
        if path is not None and path.is_file():
            with np.load(path) as data:
                part = BeatSet(
                    data["beats"],
                    data["rr"],
                    data["labels"],
                    data["record"],
                    (name,),
                    data["symbols"],
                )
        else:
            part = record_beats(read_record(db_dir, name), model_fs, window)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npz")
                np.savez(
                    tmp,
                    beats=part.beats,
                    rr=part.rr,
                    labels=part.labels,
                    record=part.record,
                    symbols=part.symbols,
                )
                tmp.replace(path)
        if scalar_inputs != "record":
            kind = "strip" if context_s is None else f"context{context_s:g}"
            strip_path = (
                _cache_path(cache_dir, db_dir, name, model_fs, window, kind) if cache_dir else None
            )
            columns = _strip_columns(
                part, db_dir, name, model_fs, window, strip_path, context_s or 0.0
            )
            part = dataclasses.replace(part, rr=columns)
        parts.append(part)
    return BeatSet.concat(parts)


def data_fingerprint(db_dir: Path, records: list[str]) -> str:
    """sha256 over the records' header and annotation files (cheap; signals are large)."""
    digest = hashlib.sha256()
    for name in records:
        for suffix in (".hea", ".atr"):
            path = Path(db_dir) / f"{name}{suffix}"
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()
