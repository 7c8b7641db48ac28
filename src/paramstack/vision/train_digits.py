"""Train the demo digits CNN on CPU and export it as a registry-ready ONNX artifact.

Training is deterministic for a given config: RNG, thread count and the deterministic-
algorithms flag are set for the run and restored afterwards, so calling this from a
long-lived process leaves global torch state as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
import torch.nn.functional as F  # noqa: N812 - torch's conventional alias
from sklearn.metrics import f1_score
from torch import nn

from paramstack.export.onnx_export import check_parity, export_onnx
from paramstack.train.determinism import torch_run_state
from paramstack.vision.digits import (
    CLASS_LABELS,
    DATASET_NAME,
    dataset_sha256,
    digit_images,
    digit_tensors,
    split_indices,
)
from paramstack.vision.preprocess import IMAGENET_MEAN, IMAGENET_STD

ONNX_OPSET = 17
_SHIFT_PX = 2  # augmentation: max translation at the model's input resolution


@dataclass(frozen=True)
class DigitsTrainConfig:
    """Defaults reach ~99 % held-out accuracy in a few seconds on one CPU thread."""

    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-2  # peak of the one-cycle schedule
    input_size: int = 32
    seed: int = 0
    test_fraction: float = 0.2
    augment: bool = False
    # One thread: batches are tiny, and extra OpenMP threads collapse when the CPU is shared
    # (measured on a busy 2-core box: 8 s with 1 thread, 51 s with 2). Losses are
    # reproducible for a fixed seed *and* thread count.
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.num_threads < 1:
            raise ValueError("epochs, batch_size, lr and num_threads must be positive")
        if self.input_size < 8:
            raise ValueError("input_size must be at least 8 (the source images are 8x8)")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must be between 0 and 1")


class DigitsCNN(nn.Module):
    """Three conv blocks and global pooling, so any `input_size` >= 8 works unchanged."""

    def __init__(self, num_classes: int = len(CLASS_LABELS)) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            return [*layers, nn.MaxPool2d(2)] if pool else layers

        self.features = nn.Sequential(
            *block(3, 16, pool=True), *block(16, 32, pool=True), *block(32, 64, pool=False)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # type: ignore[no-any-return]


@dataclass
class TrainedDigits:
    model: nn.Module  # eval mode
    accuracy: float
    f1: float  # macro
    final_loss: float
    epoch_losses: list[float]
    heldout_indices: npt.NDArray[np.intp]
    config: DigitsTrainConfig
    train_seconds: float
    class_labels: list[str] = field(default_factory=lambda: list(CLASS_LABELS))


@dataclass(frozen=True)
class DigitsArtifact:
    onnx_path: Path
    meta_path: Path
    meta: dict[str, Any]


def _random_shift(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate the whole batch by up to _SHIFT_PX; edge padding keeps the background value."""
    dx, dy = (int(v) for v in torch.randint(0, 2 * _SHIFT_PX + 1, (2,), generator=generator))
    height, width = batch.shape[-2:]
    padded = F.pad(batch, (_SHIFT_PX,) * 4, mode="replicate")
    return padded[..., dy : dy + height, dx : dx + width]


def train_digits(
    config: DigitsTrainConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> TrainedDigits:
    """Train on the stratified train split and score on the held-out split.

    `progress(epoch, mean_loss)` is called after each epoch (1-based), e.g. to update a job.
    """
    config = config or DigitsTrainConfig()
    started = time.perf_counter()
    images, labels = digit_images()
    train_idx, test_idx = split_indices(labels, config.test_fraction, config.seed)
    size = (config.input_size, config.input_size)
    x_all = torch.from_numpy(digit_tensors(images, size))
    y_all = torch.from_numpy(labels)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_test, y_test = x_all[test_idx], labels[test_idx]

    epoch_losses: list[float] = []
    with torch_run_state(config.seed, config.num_threads):
        generator = torch.Generator().manual_seed(config.seed)
        model = DigitsCNN()
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            epochs=config.epochs,
            steps_per_epoch=-(-len(x_train) // config.batch_size),
        )
        model.train()
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(len(x_train), generator=generator)
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                batch_idx = order[start : start + config.batch_size]
                xb, yb = x_train[batch_idx], y_train[batch_idx]
                if config.augment:
                    xb = _random_shift(xb, generator)
                loss = F.cross_entropy(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch_idx)
            epoch_losses.append(total / len(x_train))
            if progress is not None:
                progress(epoch, epoch_losses[-1])

        model.eval()
        with torch.inference_mode():
            predicted = model(x_test).argmax(dim=1).numpy()

    return TrainedDigits(
        model=model,
        accuracy=float(np.mean(predicted == y_test)),
        f1=float(f1_score(y_test, predicted, average="macro")),
        final_loss=epoch_losses[-1],
        epoch_losses=epoch_losses,
        heldout_indices=test_idx,
        config=config,
        train_seconds=time.perf_counter() - started,
    )


def heldout_tensors(trained: TrainedDigits) -> npt.NDArray[np.float32]:
    """Rebuild the held-out inputs exactly as training saw them."""
    images, _ = digit_images()
    size = (trained.config.input_size, trained.config.input_size)
    return digit_tensors([images[i] for i in trained.heldout_indices], size)


def _onnx_latency_ms(onnx_path: Path, inputs: npt.NDArray[np.float32], warmup: int = 10) -> float:
    """Mean batch-1 latency on one intra-op thread: a tiny model gains nothing from more."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    samples = [inputs[i : i + 1] for i in range(len(inputs))]
    for sample in samples[:warmup]:
        session.run(None, {name: sample})
    started = time.perf_counter()
    for sample in samples:
        session.run(None, {name: sample})
    return (time.perf_counter() - started) * 1000.0 / len(samples)


def export_digits_onnx(trained: TrainedDigits, out_dir: Path) -> DigitsArtifact:
    """Write `model.onnx` (logits out, dynamic batch) and `meta.json` into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    meta_path = out_dir / "meta.json"
    inputs = heldout_tensors(trained)
    side = trained.config.input_size

    export_onnx(trained.model, torch.from_numpy(inputs[:1]), onnx_path, opset=ONNX_OPSET)
    parity = check_parity(trained.model, onnx_path, inputs)
    meta: dict[str, Any] = {
        "task": "image-classification",
        "format": "onnx",
        "opset": ONNX_OPSET,
        "dataset": DATASET_NAME,
        "data_hash": dataset_sha256(),
        "config": asdict(trained.config),
        "metrics": {
            "accuracy": trained.accuracy,
            "f1": trained.f1,
            "parity_max_abs_diff": parity,
            "avg_latency_ms": _onnx_latency_ms(onnx_path, inputs),
        },
        "training": {
            "final_loss": trained.final_loss,
            "epoch_losses": trained.epoch_losses,
            "train_seconds": trained.train_seconds,
            "heldout_count": len(trained.heldout_indices),
        },
        "class_labels": trained.class_labels,
        "input_name": "input",
        "output_name": "logits",
        "input_shape": [-1, 3, side, side],
        "output_shape": [-1, len(trained.class_labels)],
        "preprocess": {
            "size": [side, side],
            "color": "RGB",
            "resample": "bilinear",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "torch_version": torch.__version__,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return DigitsArtifact(onnx_path=onnx_path, meta_path=meta_path, meta=meta)
