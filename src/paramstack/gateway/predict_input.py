"""Turn a predict request body (JSON with base64 or a tensor, or a multipart upload) into bytes
or a tensor plus the SHA-256 that identifies it in logs and the result cache."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

from paramstack.errors import InvalidInput, UnsupportedMediaType

IMAGE_MEDIA_PREFIXES = ("image/", "application/octet-stream")


@dataclass(frozen=True)
class PredictInput:
    sha256: str
    image: bytes | None = None
    tensor: npt.NDArray[np.float32] | None = None
    user: str | None = None


def check_user(user: object) -> str | None:
    """End-user ids go to logs and A/B hashing: short printable text only."""
    if user is None:
        return None
    if not isinstance(user, str) or not 0 < len(user) <= 128 or not user.isprintable():
        raise InvalidInput("user must be 1-128 printable characters", param="user")
    return user


def _image(data: bytes, user: str | None) -> PredictInput:
    if not data:
        raise InvalidInput("the image is empty", param="image")
    return PredictInput(hashlib.sha256(data).hexdigest(), image=data, user=user)


def _tensor(value: object, user: str | None) -> PredictInput:
    try:
        tensor = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("inputs must be a rectangular array of numbers", param="inputs") from exc
    if tensor.ndim == 0 or tensor.size == 0 or not np.isfinite(tensor).all():
        raise InvalidInput("inputs must be a non-empty array of finite numbers", param="inputs")
    digest = hashlib.sha256(repr(tensor.shape).encode() + tensor.tobytes()).hexdigest()
    return PredictInput(digest, tensor=tensor, user=user)


def from_json(body: bytes) -> PredictInput:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc.msg}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("body must be a JSON object with 'image' or 'inputs'")
    user = check_user(doc.get("user"))
    image, inputs = doc.get("image"), doc.get("inputs")
    if (image is None) == (inputs is None):
        raise InvalidInput("send exactly one of 'image' (base64) or 'inputs' (tensor)")
    if inputs is not None:
        return _tensor(inputs, user)
    if not isinstance(image, str):
        raise InvalidInput("image must be a base64 string", param="image")
    if image.startswith("data:"):
        image = image.partition(",")[2]
    try:
        data = base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("image is not valid base64", param="image") from exc
    return _image(data, user)


def from_upload(data: bytes, media_type: str | None, user: str | None) -> PredictInput:
    if media_type and not media_type.startswith(IMAGE_MEDIA_PREFIXES):
        raise UnsupportedMediaType(
            f"uploaded file has type {media_type!r}; send an image", param="file"
        )
    return _image(data, user)
