"""Train a beat classifier on MIT-BIH (or any annotated WFDB database) on CPU.

Deterministic for a given config and thread count; class imbalance is handled twice: a
per-epoch cap undersamples the majority class, and the loss weights classes by inverse
(square-root) frequency. A checkpoint is written after every epoch and a rerun with the
same config resumes from it. Params, per-epoch loss and the model go to MLflow.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812 - torch's conventional alias

from paramstack.config import Settings
from paramstack.ecg.beats import (
    BEAT_CHANNEL_NAMES,
    BEAT_FEATURES,
    GATE_FEATURES,
    RR_FEATURES,
    TEMPLATE_BEATS,
    BeatSet,
    BeatWindow,
    check_beat_channels,
)
from paramstack.ecg.config import EcgTrainConfig
from paramstack.ecg.dataset import data_fingerprint, load_beats
from paramstack.ecg.models import BeatClassifier, BeatEnsemble, build_model
from paramstack.ecg.morphology import MORPHOLOGY_FEATURES, P_WAVE_FEATURES
from paramstack.ecg.records import LABEL_SCHEMES, intra_patient_split, split_records
from paramstack.ecg.tracking import tracking_run
from paramstack.errors import InvalidInput
from paramstack.train.determinism import torch_run_state

Progress = Callable[[int, int, float], None]  # (epoch, epochs, mean loss)


@dataclass
class TrainedEcg:
    model: BeatClassifier  # eval mode
    config: EcgTrainConfig
    epoch_losses: list[float]
    out_dir: Path
    train_seconds: float
    run_id: str | None
    class_counts: dict[str, int]
    calibration: dict[str, Any] | None = None  # cross-validated decision bias (calibrate.py)


def resolve_paths(config: EcgTrainConfig, settings: Settings | None = None) -> tuple[Path, Path]:
    """(output directory, beat cache directory) under the paramstack home."""
    home = (settings or Settings()).home
    out = Path(config.out_dir) if config.out_dir else home / "build" / f"ecg-{config.arch}"
    return out, home / "cache" / "ecg"


def training_records(config: EcgTrainConfig) -> list[str]:
    split = "all" if config.intra_patient else config.train_split
    return config.records or split_records(Path(config.db), split)  # type: ignore[arg-type]


def intra_patient_part(data: BeatSet, config: EcgTrainConfig, part: str) -> BeatSet:
    """The train or test side of the labelled intra-patient option (same seed both times)."""
    data = _cap_per_record(data, config.max_beats_per_record)
    train_idx, test_idx = intra_patient_split(len(data), config.intra_test_fraction, config.seed)
    mask = np.zeros(len(data), dtype=bool)
    mask[train_idx if part == "train" else test_idx] = True
    return data.select(mask)


def _cap_per_record(data: BeatSet, cap: int | None) -> BeatSet:
    if cap is None:
        return data
    keep = np.zeros(len(data), dtype=bool)
    for r in np.unique(data.record):
        keep[np.flatnonzero(data.record == r)[:cap]] = True
    return data.select(keep)


def class_weights(labels: npt.NDArray[np.int64], scheme: str, n_classes: int) -> torch.Tensor:
    """Loss weights, mean 1 over the classes present; absent classes get weight 0."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    power = {"none": 0.0, "inverse": 1.0, "inverse_sqrt": 0.5}[scheme]
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights *= (counts > 0).sum() / weights.sum()
    return torch.tensor(weights, dtype=torch.float32)


def epoch_indices(
    labels: npt.NDArray[np.int64], cap: int | None, seed: int
) -> npt.NDArray[np.intp]:
    """A shuffled epoch with at most ``cap`` beats per class (fixed size for the scheduler)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if cap is not None and len(members) > cap:
            members = rng.choice(members, size=cap, replace=False)
        chosen.append(members)
    return rng.permutation(np.concatenate(chosen))


def augment_batch(beats: torch.Tensor, drop_beat_channel: float) -> torch.Tensor:
    """Jitter, noise and raw-channel dropout (see ``EcgTrainConfig.augment``)."""
    shift = int(torch.randint(-3, 4, (1,)))
    out = torch.roll(beats, shifts=shift, dims=2) + 0.05 * torch.randn_like(beats)
    drop = torch.rand(len(beats)) < drop_beat_channel
    out[drop, 0] = 0.0
    return out


def _loss(
    model: BeatClassifier,
    beats: torch.Tensor,
    rr: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted cross-entropy; an ensemble's members each get their own (see BeatEnsemble)."""
    if isinstance(model, BeatEnsemble):
        logits = model.member_logits(beats, rr)
        losses = [F.cross_entropy(member, labels, weight=weights) for member in logits]
        return torch.stack(losses).mean()
    return F.cross_entropy(model(beats, rr), labels, weight=weights)


def new_model(config: EcgTrainConfig, arch: str | None = None) -> BeatClassifier:
    """The config's model, or one ``arch`` member of it (members take no arch_kwargs)."""
    kwargs = {} if arch else dict(config.arch_kwargs)
    if not arch and config.feature_model_weight:
        kwargs["feature_model"] = feature_model_columns(config.feature_model_inputs)
    if not arch and config.feature_model_af_gate:
        kwargs["af_gate"] = (len(BEAT_FEATURES) - len(GATE_FEATURES), len(GATE_FEATURES))
    return build_model(
        arch or config.arch,
        window=config.before + config.after,
        n_rr=len(RR_FEATURES),
        n_classes=len(LABEL_SCHEMES[config.labels]),
        **kwargs,
    )


def feature_model_columns(inputs: str) -> int:
    """How many leading BEAT_FEATURES columns the feature model reads."""
    extra = {"rr": 0, "rr+p": P_WAVE_FEATURES, "rr+morphology": len(MORPHOLOGY_FEATURES)}
    return len(RR_FEATURES) + extra[inputs]


def _save_atomically(state: dict[str, Any], path: Path) -> None:
    """A job killed mid-write must leave the previous checkpoint, not a torn file."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_checkpoint(path: Path, config: EcgTrainConfig) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=False)
    return state if _member_settings(state.get("config")) == _member_settings(config) else None


def _member_settings(config: EcgTrainConfig | dict[str, Any] | None) -> dict[str, Any] | None:
    """The settings a CNN member's training depends on: the feature model is fitted after
    the members, so changing it resumes from their checkpoints instead of retraining."""
    if config is None:
        return None
    settings = dataclasses.asdict(config) if isinstance(config, EcgTrainConfig) else config
    # chosen on (or read at) the members' out-of-fold logits, never by the members' training;
    # where the run writes and logs does not change a member either (a copied run resumes)
    after_members = ("bias_objective", "bias_f_max", "scalar_inputs")
    where = ("out_dir", "mlflow", "mlflow_uri")
    # a new member setting at its default is left out, so older checkpoints still resume
    skip = {
        *after_members,
        *where,
        *(["strip_members"] if not settings.get("strip_members") else []),
    }
    return {k: v for k, v in settings.items() if k not in skip and "feature_model_" not in k}


def fit_model(
    config: EcgTrainConfig,
    data: BeatSet,
    arch: str | None = None,
    *,
    checkpoint_path: Path,
    progress: Progress | None = None,
    log_loss: Callable[[float, int], None] | None = None,
) -> tuple[BeatClassifier, list[float]]:
    """One model (``arch``, default the config's) trained on ``data``; resumes from
    ``checkpoint_path`` when it holds a run of the same config. Call inside
    ``torch_run_state`` so runs are deterministic."""
    classes = LABEL_SCHEMES[config.labels]
    beats, rr = torch.from_numpy(data.beats), torch.from_numpy(data.rr)
    labels = torch.from_numpy(data.labels)
    weights = class_weights(data.labels, config.class_weighting, len(classes))
    steps = -(-len(epoch_indices(data.labels, config.max_beats_per_class, 0)) // config.batch_size)
    model = new_model(config, arch)
    model.set_rr_normalisation(rr.mean(dim=0), rr.std(dim=0))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps
    )
    losses: list[float] = []
    state = _load_checkpoint(checkpoint_path, config)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        losses = list(state["losses"])
    for epoch in range(len(losses) + 1, config.epochs + 1):
        model.train()
        order = torch.from_numpy(
            epoch_indices(data.labels, config.max_beats_per_class, config.seed * 1000 + epoch)
        )
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            xb = (
                augment_batch(beats[idx], config.drop_beat_channel)
                if config.augment
                else beats[idx]
            )
            loss = _loss(model, xb, rr[idx], labels[idx], weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        losses.append(total / len(order))
        if log_loss is not None:
            log_loss(losses[-1], epoch)
        _save_atomically(
            {
                "config": dataclasses.asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "losses": losses,
            },
            checkpoint_path,
        )
        if progress is not None:
            progress(epoch, config.epochs, losses[-1])
    model.eval()
    return model, losses


def train_ecg(
    config: EcgTrainConfig, progress: Progress | None = None, settings: Settings | None = None
) -> TrainedEcg:
    """Train (or resume) and write ``model.pt`` + ``meta.json`` into the output directory.

    With ``cv_folds`` the ensemble's members are trained on DS1 minus one fold of records
    each, and the decision bias is chosen on their out-of-fold logits (``ecg.calibrate``).
    """
    from paramstack.ecg.calibrate import train_cross_validated

    started = time.perf_counter()
    out_dir, cache_dir = resolve_paths(config, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    window = BeatWindow(config.before, config.after)
    records = training_records(config)

    def prepared(scalar_inputs: str) -> BeatSet:
        db, fs, cache = Path(config.db), config.model_fs, cache_dir
        beats = load_beats(db, records, fs, window, cache_dir=cache, scalar_inputs=scalar_inputs)
        beats = _cap_per_record(beats, config.max_beats_per_record).labelled(config.labels)
        return intra_patient_part(beats, config, "train") if config.intra_patient else beats

    data = prepared("record")  # the CNN members train on whole-record inputs by default
    served = data if config.scalar_inputs == "record" else prepared(config.scalar_inputs)
    if config.strip_members:
        data = served
    classes = LABEL_SCHEMES[config.labels]
    counts = np.bincount(data.labels, minlength=len(classes))
    calibration: dict[str, Any] | None = None
    model: BeatClassifier
    with torch_run_state(config.seed, config.num_threads), tracking_run(config, settings) as run:
        run.log_params(config)
        if config.cv_folds:
            model, losses, calibration = train_cross_validated(
                config, data, out_dir, run, progress=progress, served=served
            )
        else:
            model, losses = fit_model(
                config,
                data,
                checkpoint_path=out_dir / "checkpoint.pt",
                progress=progress,
                log_loss=lambda loss, epoch: run.log_metric("train_loss", loss, epoch),
            )
        trained = TrainedEcg(
            model=model,
            config=config,
            epoch_losses=losses,
            out_dir=out_dir,
            train_seconds=time.perf_counter() - started,
            run_id=run.run_id,
            class_counts={c: int(n) for c, n in zip(classes, counts, strict=True)},
            calibration=calibration,
        )
        save_trained(trained, records)
        folds = tuple(f"checkpoint-fold{i}.pt" for i in range(config.cv_folds))
        run.log_artifacts(out_dir, exclude=("checkpoint.pt", *folds))
    return trained


def _columns_read(model: BeatClassifier) -> int:
    if isinstance(model, BeatEnsemble) and model.af_gate is not None:
        return model.af_gate.offset + model.af_gate.n_af
    if isinstance(model, BeatEnsemble) and model.features is not None:
        return max(model.n_rr, model.features.n_features)
    return model.n_rr


def model_meta(config: EcgTrainConfig, model: BeatClassifier) -> dict[str, Any]:
    """What anyone (the gateway included) needs to feed the model: rate, window, layout."""
    window = config.before + config.after
    return {
        "task": "ecg-beats",
        "model_fs": config.model_fs,
        "window": {"before": config.before, "after": config.after, "length": window},
        "beat_channels": list(BEAT_CHANNEL_NAMES),
        "class_labels": list(LABEL_SCHEMES[config.labels]),
        "label_scheme": config.labels,
        # The scalar input columns the model reads (exported graphs take exactly these).
        "rr_features": list(BEAT_FEATURES[: _columns_read(model)]),
        "rr_normalisation": {
            "applied_inside_model": True,
            "mean": [float(v) for v in model.rr_mean],
            "std": [float(v) for v in model.rr_std],
        },
        "beat_normalisation": "median-filter baseline removal and a 40 Hz low-pass at "
        "model_fs; channel 0 per-beat z-score, channel 1 beat minus the median of the last "
        f"{TEMPLATE_BEATS} beats (causal; the first {TEMPLATE_BEATS} share one) over that "
        "template's std",
        "arch": config.arch,
    }


def save_trained(trained: TrainedEcg, records: list[str]) -> Path:
    """``model.pt`` (state dict + config) and its sibling ``meta.json``."""
    config = trained.config
    torch.save(
        {"config": dataclasses.asdict(config), "model": trained.model.state_dict()},
        trained.out_dir / "model.pt",
    )
    meta = {
        **model_meta(config, trained.model),
        "config": dataclasses.asdict(config),
        "training": {
            "records": records,
            "data_hash": data_fingerprint(Path(config.db), records),
            "class_counts": trained.class_counts,
            "epoch_losses": trained.epoch_losses,
            "train_seconds": trained.train_seconds,
            "mlflow_run_id": trained.run_id,
            "calibration": trained.calibration,
        },
        "torch_version": torch.__version__,
    }
    path = trained.out_dir / "meta.json"
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def load_trained(out_dir: Path) -> tuple[BeatClassifier, EcgTrainConfig, dict[str, Any]]:
    """The model (eval mode), its config and meta.json from a training output directory."""
    from paramstack.errors import NotFound

    path = Path(out_dir) / "model.pt"
    if not path.is_file():
        raise NotFound(f"no trained ECG model at {path}; run `paramstack ecg train` first")
    state = torch.load(path, weights_only=False)
    config = EcgTrainConfig(**state["config"])
    model = new_model(config)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    # Models saved before the decision bias existed lack only ``logit_bias`` (zeros).
    if unexpected or any(not key.endswith("logit_bias") for key in missing):
        raise InvalidInput(f"{path} does not match its config: {missing or unexpected}")
    model.eval()
    meta = json.loads((Path(out_dir) / "meta.json").read_text(encoding="utf-8"))
    check_beat_channels(meta.get("beat_channels"))
    return model, config, meta
