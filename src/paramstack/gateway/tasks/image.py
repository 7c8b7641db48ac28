"""Image classification: a base64 or uploaded image (or a ready NCHW tensor) → class scores."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.backends.onnx_sessions import LoadedModel
from paramstack.errors import InvalidInput, UnsupportedMediaType
from paramstack.gateway.payload import Payload
from paramstack.gateway.tasks import TaskInput, Timings, predict_task
from paramstack.vision.preprocess import preprocess

IMAGE_MEDIA_PREFIXES = ("image/", "application/octet-stream")


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = logits.astype(np.float64) - logits.max()
    exp = np.exp(shifted)
    return exp / exp.sum()  # type: ignore[no-any-return]


def classify(probs: npt.NDArray[np.float64], labels: tuple[str, ...]) -> dict[str, Any]:
    names = labels if len(labels) == len(probs) else tuple(str(i) for i in range(len(probs)))
    best = int(np.argmax(probs))
    return {
        "prediction": names[best],
        "confidence": float(probs[best]),
        "probabilities": {n: float(p) for n, p in zip(names, probs.tolist(), strict=True)},
    }


def image_input(data: bytes) -> TaskInput:
    if not data:
        raise InvalidInput("the image is empty", param="image")
    return TaskInput(hashlib.sha256(data).hexdigest(), data, len(data))


def tensor_input(value: object) -> TaskInput:
    try:
        tensor = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("inputs must be a rectangular array of numbers", param="inputs") from exc
    if tensor.ndim == 0 or tensor.size == 0 or not np.isfinite(tensor).all():
        raise InvalidInput("inputs must be a non-empty array of finite numbers", param="inputs")
    digest = hashlib.sha256(repr(tensor.shape).encode() + tensor.tobytes()).hexdigest()
    return TaskInput(digest, tensor, tensor.nbytes)


@predict_task("image-classification")
class ImageClassification:
    def warm(self) -> None:
        """Nothing to import: Pillow and numpy are loaded with this module."""

    def parse(self, payload: Payload) -> TaskInput:
        if payload.files:
            upload = payload.files.get("file")
            if upload is None:
                raise InvalidInput("multipart body needs a 'file' part", param="file")
            if upload.media_type and not upload.media_type.startswith(IMAGE_MEDIA_PREFIXES):
                raise UnsupportedMediaType(
                    f"uploaded file has type {upload.media_type!r}; send an image", param="file"
                )
            return image_input(upload.data)
        image, inputs = payload.fields.get("image"), payload.fields.get("inputs")
        if (image is None) == (inputs is None):
            raise InvalidInput("send exactly one of 'image' (base64) or 'inputs' (tensor)")
        if inputs is not None:
            return tensor_input(inputs)
        if not isinstance(image, str):
            raise InvalidInput("image must be a base64 string", param="image")
        if image.startswith("data:"):
            image = image.partition(",")[2]
        try:
            return image_input(base64.b64decode(image, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("image is not valid base64", param="image") from exc

    def compute(
        self, loaded: LoadedModel, data: TaskInput, serving: Mapping[str, Any], timings: Timings
    ) -> dict[str, Any]:
        start = time.perf_counter()
        if isinstance(data.value, bytes):
            tensor = preprocess(data.value, loaded.image_size)
        else:
            tensor = data.value
        loaded.check_tensor(tensor)
        mid = time.perf_counter()
        logits = loaded.run(tensor)
        timings.preprocessing_ms = (mid - start) * 1000
        timings.inference_ms = (time.perf_counter() - mid) * 1000
        if not np.isfinite(logits).all():
            raise InvalidInput(
                "the model produced non-finite outputs for these inputs (values out of range?)",
                code="non_finite_output",
                param="inputs",
            )
        labels = tuple(str(x) for x in serving.get("class_labels", ()))
        return classify(softmax(logits[0]), labels)
