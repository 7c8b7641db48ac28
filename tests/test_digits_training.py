"""End-to-end: digits dataset -> CNN training -> ONNX export -> onnxruntime via `preprocess`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_digits

from paramstack.export.onnx_export import ParityError, check_parity, export_onnx
from paramstack.vision.digits import (
    dataset_sha256,
    digit_images,
    digit_png_bytes,
    digit_tensors,
    split_indices,
)
from paramstack.vision.preprocess import preprocess
from paramstack.vision.train_digits import (
    DigitsArtifact,
    DigitsTrainConfig,
    TrainedDigits,
    export_digits_onnx,
    train_digits,
)

pytestmark = pytest.mark.slow

CONFIG = DigitsTrainConfig()


@pytest.fixture(scope="module")
def progress_calls() -> list[tuple[int, float]]:
    return []


@pytest.fixture(scope="module")
def torch_state_before() -> tuple[int, bool]:
    return torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()


@pytest.fixture(scope="module")
def trained(
    progress_calls: list[tuple[int, float]], torch_state_before: tuple[int, bool]
) -> TrainedDigits:
    return train_digits(CONFIG, progress=lambda epoch, loss: progress_calls.append((epoch, loss)))


@pytest.fixture(scope="module")
def artifact(trained: TrainedDigits, tmp_path_factory: pytest.TempPathFactory) -> DigitsArtifact:
    return export_digits_onnx(trained, tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def session(artifact: DigitsArtifact) -> ort.InferenceSession:
    return ort.InferenceSession(str(artifact.onnx_path), providers=["CPUExecutionProvider"])


def _small_cnn() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    )


# --- dataset ---------------------------------------------------------------------------------


def test_digit_images_are_8bit_grayscale_scaled_from_0_16() -> None:
    images, labels = digit_images()
    source = load_digits()

    assert len(images) == len(labels) == 1797
    assert {img.mode for img in images} == {"L"}
    assert {img.size for img in images} == {(8, 8)}
    assert sorted(set(labels.tolist())) == list(range(10))
    pixels = np.stack([np.asarray(img) for img in images])
    np.testing.assert_array_equal(pixels, np.round(source.images * 255 / 16).astype(np.uint8))
    assert pixels.max() == 255


def test_split_is_deterministic_disjoint_and_stratified() -> None:
    _, labels = digit_images()
    train, test = split_indices(labels, test_fraction=0.2, seed=0)
    train_again, test_again = split_indices(labels, test_fraction=0.2, seed=0)
    _, test_other_seed = split_indices(labels, test_fraction=0.2, seed=1)

    np.testing.assert_array_equal(test, test_again)
    np.testing.assert_array_equal(train, train_again)
    assert not np.array_equal(test, test_other_seed)
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert len(train) + len(test) == len(labels)
    overall = np.bincount(labels) / len(labels)
    np.testing.assert_allclose(np.bincount(labels[test]) / len(test), overall, atol=0.01)


def test_png_round_trip_gives_exactly_the_training_tensor() -> None:
    images, _ = digit_images()
    for img in images[:20]:
        served = preprocess(digit_png_bytes(img), (32, 32))
        np.testing.assert_array_equal(served, digit_tensors([img], (32, 32)))


def test_dataset_hash_is_stable_sha256() -> None:
    digest = dataset_sha256()
    assert digest == dataset_sha256()
    assert len(digest) == 64
    int(digest, 16)


# --- training --------------------------------------------------------------------------------


def test_training_reaches_target_accuracy(trained: TrainedDigits) -> None:
    assert trained.accuracy >= 0.95
    assert trained.f1 >= 0.95
    assert not trained.model.training
    assert trained.class_labels == [str(d) for d in range(10)]
    assert len(trained.heldout_indices) == 360


def test_losses_decrease_and_progress_is_reported(
    trained: TrainedDigits, progress_calls: list[tuple[int, float]]
) -> None:
    losses = trained.epoch_losses
    assert len(losses) == CONFIG.epochs
    assert losses[-1] < 0.25 * losses[0]
    assert trained.final_loss == losses[-1]
    assert progress_calls == list(enumerate(losses, start=1))


def test_training_restores_global_torch_state(
    trained: TrainedDigits, torch_state_before: tuple[int, bool]
) -> None:
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (
        torch_state_before
    )


def test_training_is_deterministic_for_a_seed() -> None:
    config = DigitsTrainConfig(epochs=1, input_size=8, augment=True)
    first, second = train_digits(config), train_digits(config)
    assert first.epoch_losses == second.epoch_losses


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="input_size"):
        DigitsTrainConfig(input_size=4)


# --- export ----------------------------------------------------------------------------------


def test_artifact_is_a_single_checked_onnx_file_with_metadata(artifact: DigitsArtifact) -> None:
    assert sorted(p.name for p in artifact.onnx_path.parent.iterdir()) == [
        "meta.json",
        "model.onnx",
    ]
    model = onnx.load(str(artifact.onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]

    meta = json.loads(artifact.meta_path.read_text())
    assert meta == artifact.meta
    assert meta["dataset"] == "sklearn.load_digits"
    assert meta["data_hash"] == dataset_sha256()
    assert meta["input_shape"] == [-1, 3, 32, 32]
    assert meta["output_shape"] == [-1, 10]
    assert meta["class_labels"] == [str(d) for d in range(10)]
    assert meta["torch_version"] == torch.__version__
    assert meta["config"]["input_size"] == 32
    metrics = meta["metrics"]
    assert metrics["accuracy"] >= 0.95
    assert 0 <= metrics["parity_max_abs_diff"] <= 1e-4
    assert 0 < metrics["avg_latency_ms"] < 50


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_runs_any_batch_size(session: ort.InferenceSession, batch: int) -> None:
    x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    (logits,) = session.run(None, {"input": x})
    assert logits.shape == (batch, 10)


def test_onnx_classifies_heldout_pngs_through_server_preprocess(
    trained: TrainedDigits, session: ort.InferenceSession
) -> None:
    images, labels = digit_images()
    heldout = trained.heldout_indices
    truth = labels[heldout]
    batch = np.concatenate([preprocess(digit_png_bytes(images[i]), (32, 32)) for i in heldout])
    (logits,) = session.run(None, {"input": batch})
    predicted = logits.argmax(axis=1)
    with torch.inference_mode():
        torch_predicted = trained.model(torch.from_numpy(batch)).argmax(dim=1).numpy()

    np.testing.assert_array_equal(predicted, torch_predicted)
    assert np.mean(predicted == truth) == pytest.approx(trained.accuracy)
    assert np.mean(predicted == truth) >= 0.95
    assert set(truth[predicted == truth].tolist()) == set(range(10))


# --- generic exporter ------------------------------------------------------------------------


def test_parity_failure_raises(tmp_path: Path) -> None:
    model = _small_cnn().eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, torch.zeros(1, 3, 8, 8), path)
    x = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    assert check_parity(model, path, x) <= 1e-5

    head = model[-1]
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.bias.add_(1.0)
    with pytest.raises(ParityError, match="differs from torch"):
        check_parity(model, path, x)
    assert isinstance(ParityError("x"), ValueError)


def test_export_keeps_training_mode_and_supports_fixed_batch(tmp_path: Path) -> None:
    model = _small_cnn().train()
    path = tmp_path / "fixed.onnx"
    export_onnx(model, torch.zeros(2, 3, 8, 8), path, dynamic_batch=False, output_name="out")

    assert model.training
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    assert graph.output[0].name == "out"
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    assert check_parity(model, path, x) <= 1e-5


def test_dynamo_exporter_is_used_for_opset_18(tmp_path: Path) -> None:
    model = _small_cnn().eval()
    path = tmp_path / "dyn.onnx"
    export_onnx(model, torch.zeros(1, 3, 8, 8), path, opset=18)

    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert list(tmp_path.iterdir()) == [path]
    x = np.random.default_rng(0).standard_normal((7, 3, 8, 8)).astype(np.float32)
    assert check_parity(model, path, x) <= 1e-5
