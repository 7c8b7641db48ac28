"""scikit-learn's 8x8 digits as real 8-bit images, so the demo model trains on what it serves.

Every training tensor goes through `preprocess.image_to_tensor`, the function the server runs
on uploads, so there is no train/serve preprocessing skew.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from paramstack.vision.preprocess import image_to_tensor

DATASET_NAME = "sklearn.load_digits"
CLASS_LABELS = tuple(str(digit) for digit in range(10))
_SOURCE_MAX = 16  # load_digits pixel values run 0..16


def digit_arrays() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """(N, 8, 8) uint8 pixels scaled from 0..16 to 0..255, and the (N,) int labels."""
    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / _SOURCE_MAX)).astype(np.uint8)
    return pixels, bunch.target.astype(np.int64)


def digit_images() -> tuple[list[Image.Image], npt.NDArray[np.int64]]:
    """The 1,797 digits as grayscale ("L") Pillow images, with their labels."""
    pixels, labels = digit_arrays()
    return [Image.fromarray(p) for p in pixels], labels


def dataset_sha256() -> str:
    """Hash of the exact pixels and labels trained on, recorded in model metadata."""
    pixels, labels = digit_arrays()
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()


def digit_png_bytes(img: Image.Image) -> bytes:
    """Encode as PNG, the form a client would upload."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def digit_tensors(images: Sequence[Image.Image], size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Stack images into an (N, 3, H, W) batch via the server's own `image_to_tensor`."""
    return np.concatenate([image_to_tensor(img, size) for img in images])


def split_indices(
    labels: npt.NDArray[np.int64], test_fraction: float = 0.2, seed: int = 0
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Deterministic stratified (train, held-out) index split, each sorted ascending."""
    train, test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    return np.sort(train), np.sort(test)
