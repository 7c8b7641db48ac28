"""Beat sets for a list of records, cached per record on disk.

Reading, resampling and filtering a 30-minute record takes about a second; training and
evaluation reuse the cached ``.npz`` (keyed by database path, record, rate and window), so
`ecg evaluate` after `ecg train` does not redo the signal processing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from paramstack.ecg.beats import BeatSet, BeatWindow, record_beats
from paramstack.ecg.records import read_record

_CACHE_VERSION = 8  # bump when beats.py changes what it produces


def _cache_path(cache_dir: Path, db_dir: Path, name: str, model_fs: float, w: BeatWindow) -> Path:
    key = json.dumps(
        [_CACHE_VERSION, str(Path(db_dir).resolve()), name, model_fs, w.before, w.after]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{name}-{digest}.npz"


def load_beats(
    db_dir: Path,
    records: list[str],
    model_fs: float,
    window: BeatWindow,
    *,
    cache_dir: Path | None = None,
) -> BeatSet:
    """All annotated beats of ``records`` (reference R-peak positions), concatenated."""
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
