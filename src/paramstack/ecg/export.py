"""Export a trained beat classifier to ONNX (parity-checked on DS2 beats) and register it.

The ONNX graph has one input, ``[batch, window + n_rr]`` (beat samples, then raw RR
features; see ``strip.pack_inputs``), because the registry and the gateway serve
single-input classifiers. Everything a server needs to feed it travels in the lineage.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy.orm import Session

from paramstack import __version__
from paramstack.config import Settings
from paramstack.ecg.beats import BeatWindow
from paramstack.ecg.dataset import load_beats
from paramstack.ecg.models import PackedInput
from paramstack.ecg.records import split_records
from paramstack.ecg.rhythm import AfDetector
from paramstack.ecg.rhythm_eval import load_rhythm_record, train_af_detector
from paramstack.ecg.strip import pack_inputs
from paramstack.export.onnx_export import check_parity, export_onnx
from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"


# What training recorded about the model that the server needs (meta.json → registry lineage).
MODEL_KEYS = (
    "task",
    "model_fs",
    "window",
    "beat_channels",
    "class_labels",
    "rr_features",
    "rr_normalisation",
    "beat_normalisation",
    "arch",
)


@dataclass(frozen=True)
class EcgArtifact:
    onnx_path: Path
    meta_path: Path
    meta: dict[str, Any]


def _evaluation_figures(out_dir: Path) -> dict[str, Any]:
    report = Path(out_dir) / "report-ds2" / "report.json"
    if not report.is_file():
        return {}
    data = json.loads(report.read_text(encoding="utf-8"))
    return {f"ds2_{k}": v for k, v in data["headline"].items() if v is not None}


# A 10 s strip holds about 12 beats: the strip's AF screen is trained on windows of that size
# (DS1-trained, DS2 beat level: Se 79 / +P 51 with 10 beats, vs 80 / 73 with 32).
STRIP_AF_WINDOW_BEATS = 10


def _af_detector(db_dir: Path, records: list[str]) -> AfDetector | None:
    """The strip summary's AF screen, trained on the beat model's own training records; None
    when they hold no AF (the served summary then says so with a null probability)."""
    loaded = [load_rhythm_record(db_dir, name) for name in records]
    if not any(r.af_reference for r in loaded):
        return None
    return train_af_detector(loaded, window_beats=STRIP_AF_WINDOW_BEATS)


def export_ecg_onnx(
    out_dir: Path,
    *,
    db: Path | None = None,
    parity_split: str = "ds2",
    parity_records: list[str] | None = None,
    max_parity_beats: int = 4096,
    rhythm_records: list[str] | None = None,
    settings: Settings | None = None,
) -> EcgArtifact:
    """Write ``model.onnx`` + ``onnx-meta.json`` next to the trained model; raise on parity.
    The AF screen of the strip summary trains on ``rhythm_records`` (default: the beat
    model's training records)."""
    from paramstack.ecg.train import load_trained

    model, config, meta = load_trained(out_dir)
    packed_model = PackedInput(model).eval()
    db_dir = Path(db or config.db)
    names = parity_records or split_records(db_dir, parity_split)  # type: ignore[arg-type]
    home = (settings or Settings()).home
    data = load_beats(
        db_dir,
        names,
        config.model_fs,
        BeatWindow(config.before, config.after),
        cache_dir=home / "cache" / "ecg",
    )
    pick = np.linspace(0, len(data) - 1, num=min(max_parity_beats, len(data))).astype(np.int64)
    packed = pack_inputs(data.beats[pick], data.rr[pick][:, : len(meta["rr_features"])])

    onnx_path = Path(out_dir) / "model.onnx"
    export_onnx(
        packed_model,
        torch.from_numpy(packed[:2]),
        onnx_path,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        opset=ONNX_OPSET,
    )
    parity = check_parity(packed_model, onnx_path, packed, atol=1e-4)
    beat_width = model.channels * (config.before + config.after)
    width = beat_width + len(meta["rr_features"])
    serving = {key: meta[key] for key in MODEL_KEYS}
    serving.update(
        {
            "input_name": INPUT_NAME,
            "input_shape": [-1, width],
            "input_layout": {
                "beat": [0, beat_width],
                "beat_shape": [model.channels, config.before + config.after],
                "rr": [beat_width, width],
            },
            "output_name": OUTPUT_NAME,
            "output_shape": [-1, len(meta["class_labels"])],
            "output_kind": "logits",
            "opset": ONNX_OPSET,
        }
    )
    af = _af_detector(db_dir, rhythm_records or meta.get("training", {}).get("records") or [])
    if af is not None:
        serving["af_detector"] = af.to_json()
    onnx_meta = {
        **serving,
        "metrics": {
            "parity_max_abs_diff": parity,
            "parity_beats": len(packed),
            "parity_records": names,
            **_evaluation_figures(out_dir),
        },
        "config": dataclasses.asdict(config),
        "training": meta.get("training", {}),
        "torch_version": torch.__version__,
        "code_version": __version__,
    }
    meta_path = Path(out_dir) / "onnx-meta.json"
    meta_path.write_text(json.dumps(onnx_meta, indent=2) + "\n", encoding="utf-8")
    return EcgArtifact(onnx_path, meta_path, onnx_meta)


SERVING_KEYS = (
    *MODEL_KEYS,
    "input_name",
    "input_shape",
    "input_layout",
    "output_name",
    "output_shape",
    "output_kind",
    "opset",
    "af_detector",
)


def register_ecg(
    session: Session, artifact: EcgArtifact, artifacts_root: Path, name: str = "ecg-beats"
) -> int:
    """Register the ONNX model; lineage holds the serving contract plus data and run ids."""
    meta = artifact.meta
    training = meta.get("training", {})
    lineage = {key: meta[key] for key in SERVING_KEYS if key in meta}
    lineage.update(
        {
            "dataset": "MIT-BIH Arrhythmia Database"
            if "mitdb" in meta["config"]["db"]
            else meta["config"]["db"],
            "train_records": training.get("records"),
            "data_hash": training.get("data_hash"),
            "mlflow_run_id": training.get("mlflow_run_id"),
            "config": meta["config"],
            "code_version": meta["code_version"],
            "torch_version": meta["torch_version"],
        }
    )
    metrics = {k: v for k, v in meta["metrics"].items() if isinstance(v, int | float)}
    metrics["task"] = meta["task"]
    version = registry.register(
        session,
        Registration(
            name=name,
            artifact=artifact.onnx_path,
            type="onnx",
            domain="ecg",
            description=f"ECG beat classifier ({meta['arch']}, AAMI N/S/V/F/Q) with RR features.",
            class_labels=list(meta["class_labels"]),
            input_shape=list(meta["input_shape"]),
            output_shape=list(meta["output_shape"]),
            metrics=metrics,
            lineage=lineage,
        ),
        artifacts_root,
    )
    return int(version.version)
