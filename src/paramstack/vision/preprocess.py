"""Image bytes -> normalised NCHW float32 tensor.

Runs on the server's request path, so it imports only numpy and Pillow. Training calls the
same `image_to_tensor`, which keeps train-time and serve-time inputs identical.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from paramstack.errors import InvalidInput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Refused before any pixel data is decoded (40 M RGB pixels is already 120 MB in memory);
# Pillow's own bomb check only fires at ~179 M pixels.
MAX_PIXELS = 40_000_000

# Formats Pillow decodes in-process. Anything else is refused because the decoder is fed
# untrusted bytes: EPS would shell out to Ghostscript, TIFF pulls in libtiff.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

# (x / 255 - mean) / std folded into one multiply-add per element, shaped for HWC broadcasting.
_SCALE = (1.0 / (255.0 * np.asarray(IMAGENET_STD))).astype(np.float32)
_OFFSET = (-np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)).astype(np.float32)

# Pillow plugins are not consistent about what they raise for malformed data.
_CORRUPT_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)


def decode_image(data: bytes) -> Image.Image:
    """Decode fully now, so corrupt or truncated uploads fail here rather than mid-pipeline.

    Messages are our own: Pillow's embed object reprs and are not meant for API callers.
    """
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as exc:
        allowed = ", ".join(ALLOWED_FORMATS)
        raise InvalidInput(
            f"not a decodable image: unrecognised or unsupported format (allowed: {allowed})"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise InvalidInput(
            f"not a decodable image: more than {MAX_PIXELS} pixels", code="image_too_large"
        ) from exc
    except _CORRUPT_ERRORS as exc:
        raise InvalidInput("not a decodable image: corrupt header") from exc

    width, height = img.size
    if width * height > MAX_PIXELS:
        raise InvalidInput(
            f"not a decodable image: {width}x{height} is more than {MAX_PIXELS} pixels",
            code="image_too_large",
        )
    try:
        img.load()
    except _CORRUPT_ERRORS as exc:
        raise InvalidInput(
            f"not a decodable image: truncated or corrupt {img.format} data"
        ) from exc
    return img


def image_to_tensor(img: Image.Image, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Return a (1, 3, H, W) float32 array; `size` is (width, height), Pillow's order."""
    if img.mode.startswith("I;16"):
        # 16-bit grayscale PNG: Pillow's RGB conversion would clip everything above 255.
        img = Image.fromarray((np.asarray(img) >> 8).astype(np.uint8))
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    hwc = np.array(img, dtype=np.float32)  # a fresh copy, so the in-place ops below are safe
    hwc *= _SCALE
    hwc += _OFFSET
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)[np.newaxis])


def preprocess(data: bytes, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Decode and normalise one uploaded image for a model expecting `size` = (width, height)."""
    return image_to_tensor(decode_image(data), size)
