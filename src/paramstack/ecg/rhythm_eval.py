"""Train the AF detector on DS1 and score rhythm episodes against MIT-BIH's rhythm annotations.

Figures follow EC57's episode statistics: episode sensitivity (reference episodes overlapped
by a detection), episode positive predictivity (detections overlapping a reference episode),
and the duration-weighted pair (overlap seconds over reference seconds / detected seconds),
per record and gross. AF uses the reference beat times (the RR series a QRS detector would
give), so the figures measure the rhythm model, not the beat detector. VF needs no training
and is scored on every record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.ecg.records import AAMI_MAP, EcgRecord, read_record
from paramstack.ecg.rhythm import (
    AF_FEATURES,
    AfDetector,
    Episode,
    af_features,
    rhythm_episodes,
    vf_episodes,
)


@dataclass(frozen=True)
class RhythmRecord:
    name: str
    beat_times_s: np.ndarray[Any, np.dtype[np.float64]]
    af_reference: list[Episode]
    record: EcgRecord

    def af_beat_labels(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        t = self.beat_times_s
        inside = np.zeros(len(t), dtype=bool)
        for ep in self.af_reference:
            inside |= (t >= ep.start_s) & (t < ep.end_s)
        return inside


def load_rhythm_record(db: Path, name: str) -> RhythmRecord:
    record = read_record(db, name)
    is_beat = np.array([s in AAMI_MAP for s in record.beat_symbols], dtype=bool)
    times = record.beat_samples[is_beat] / record.fs
    ref = rhythm_episodes(record.rhythm, record.fs, len(record.signal), "AF")
    return RhythmRecord(name, times.astype(np.float64), ref, record)


def train_af_detector(records: list[RhythmRecord], window_beats: int = 32) -> AfDetector:
    """Class-balanced logistic regression on standardised features of every beat."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([af_features(r.beat_times_s, window_beats) for r in records])
    y = np.concatenate([r.af_beat_labels() for r in records])
    if y.all() or not y.any():
        raise ValueError("AF training needs records with and without AF")
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(class_weight="balanced", max_iter=2000)
    model.fit(scaler.transform(x), y)
    return AfDetector(
        mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scaler.scale_),
        coef=tuple(float(v) for v in model.coef_[0]),
        intercept=float(model.intercept_[0]),
        window_beats=window_beats,
    )


def _overlap(a: Episode, b: Episode) -> float:
    return max(0.0, min(a.end_s, b.end_s) - max(a.start_s, b.start_s))


def episode_counts(reference: list[Episode], detected: list[Episode]) -> dict[str, float]:
    return {
        "reference": len(reference),
        "detected": len(detected),
        "reference_hit": sum(any(_overlap(r, d) > 0 for d in detected) for r in reference),
        "detected_hit": sum(any(_overlap(d, r) > 0 for r in reference) for d in detected),
        "reference_s": sum(r.duration_s for r in reference),
        "detected_s": sum(d.duration_s for d in detected),
        "overlap_s": sum(_overlap(r, d) for r in reference for d in detected),
    }


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else round(100.0 * num / den, 2)


def episode_figures(counts: dict[str, float]) -> dict[str, float | None]:
    return {
        "episode_se": _ratio(counts["reference_hit"], counts["reference"]),
        "episode_ppv": _ratio(counts["detected_hit"], counts["detected"]),
        "duration_se": _ratio(counts["overlap_s"], counts["reference_s"]),
        "duration_ppv": _ratio(counts["overlap_s"], counts["detected_s"]),
    }


def _gross(per_record: dict[str, dict[str, float]]) -> dict[str, Any]:
    total = {k: sum(c[k] for c in per_record.values()) for k in next(iter(per_record.values()))}
    return {**total, **episode_figures(total)}


def evaluate_rhythm(
    detector: AfDetector, af_records: list[RhythmRecord], vf_records: list[RhythmRecord]
) -> dict[str, Any]:
    """AF scored on ``af_records`` (keep them out of training); VF on ``vf_records``."""
    af: dict[str, dict[str, float]] = {}
    tp = fp = fn = tn = 0
    for r in af_records:
        predicted = detector.probabilities(r.beat_times_s) >= detector.threshold
        truth = r.af_beat_labels()
        tp += int((predicted & truth).sum())
        fp += int((predicted & ~truth).sum())
        fn += int((~predicted & truth).sum())
        tn += int((~predicted & ~truth).sum())
        af[r.name] = episode_counts(r.af_reference, detector.episodes(r.beat_times_s))
    vf: dict[str, dict[str, float]] = {}
    for r in vf_records:
        rec = r.record
        reference = rhythm_episodes(rec.rhythm, rec.fs, len(rec.signal), "VF")
        vf[r.name] = episode_counts(reference, vf_episodes(rec.signal, rec.fs))
    return {
        "af": {
            "records": sorted(af),
            "gross": _gross(af),
            "beats": {
                "se": _ratio(tp, tp + fn),
                "ppv": _ratio(tp, tp + fp),
                "specificity": _ratio(tn, tn + fp),
                "beats": tp + fp + fn + tn,
            },
            "per_record": {k: {**v, **episode_figures(v)} for k, v in af.items()},
            "detector": detector.to_json(),
        },
        "vf": {
            "records": sorted(vf),
            "gross": _gross(vf),
            "per_record": {
                k: {**v, **episode_figures(v)}
                for k, v in vf.items()
                if v["reference"] or v["detected"]
            },
            "method": "Kuo & Dillman VF-filter leakage < 0.406 on 4 s windows, untrained",
        },
        "features": list(AF_FEATURES),
    }


def _row(name: str, f: dict[str, Any]) -> str:
    cells = [f.get(k) for k in ("episode_se", "episode_ppv", "duration_se", "duration_ppv")]
    shown = " | ".join("-" if c is None else f"{c:.1f}" for c in cells)
    return f"| {name} | {int(f['reference'])} | {int(f['detected'])} | {shown} |"


def markdown_rhythm(report: dict[str, Any]) -> str:
    head = "| record | ref episodes | detected | Se | +P | duration Se | duration +P |"
    rule = "| --- | --- | --- | --- | --- | --- | --- |"
    beats = report["af"]["beats"]
    lines = [
        "# Rhythm episodes (MIT-BIH rhythm annotations)",
        "",
        f"AF/flutter detector trained on {report['train_records']}, scored on "
        f"{', '.join(report['af']['records'])} (reference beat times).",
        f"Beat level: Se {beats['se']}, +P {beats['ppv']}, specificity {beats['specificity']} "
        f"over {beats['beats']} beats.",
        "",
        head,
        rule,
        *(
            _row(k, v)
            for k, v in report["af"]["per_record"].items()
            if v["reference"] or v["detected"]
        ),
        _row("**gross**", report["af"]["gross"]),
        "",
        f"## Ventricular flutter/fibrillation ({report['vf']['method']})",
        "",
        head,
        rule,
        *(_row(k, v) for k, v in report["vf"]["per_record"].items()),
        _row("**gross**", report["vf"]["gross"]),
        "",
    ]
    return "\n".join(lines)


def write_rhythm_report(report: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rhythm.json").write_text(json.dumps(report, indent=2))
    (folder / "rhythm.md").write_text(markdown_rhythm(report))
    AfDetector.from_json(report["af"]["detector"]).save(folder / "af_detector.json")
    return folder / "rhythm.md"
