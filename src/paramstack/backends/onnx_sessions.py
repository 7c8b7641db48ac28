"""onnxruntime sessions loaded once per model version and shared by all requests.

``InferenceSession.run`` is thread-safe, so one session per version serves every worker
thread; loading is guarded per version so a burst of first requests loads the file once.
Versions that stop being served are evicted (their memory is released with the session).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paramstack.errors import InvalidInput, Unavailable


@dataclass(frozen=True)
class ModelInput:
    name: str
    shape: tuple[int, ...]  # -1 for dynamic dims


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    session: object  # onnxruntime.InferenceSession (untyped library)
    inputs: tuple[ModelInput, ...]
    load_seconds: float

    @property
    def input_name(self) -> str:
        return self.inputs[0].name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.inputs[0].shape

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) the preprocessing must produce for an NCHW image model."""
        if len(self.input_shape) != 4 or self.input_shape[2] < 1 or self.input_shape[3] < 1:
            raise InvalidInput(
                f"model input {list(self.input_shape)} is not a fixed-size NCHW image",
                code="not_an_image_model",
            )
        return self.input_shape[3], self.input_shape[2]

    def check_tensor(self, tensor: npt.NDArray[np.float32]) -> None:
        expected = self.input_shape
        ok = tensor.ndim == len(expected) and all(
            e == -1 or e == a for e, a in zip(expected, tensor.shape, strict=True)
        )
        if not ok:
            raise InvalidInput(
                f"input shape {list(tensor.shape)} does not match the model's {list(expected)}",
                code="wrong_shape",
                param="inputs",
            )

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """First output for a single-input model."""
        return self.run_feeds({self.input_name: tensor})

    def run_feeds(self, feeds: dict[str, npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """First output for named inputs (models with side inputs, e.g. ECG RR features)."""
        outputs = self.session.run(None, feeds)  # type: ignore[attr-defined]
        return np.asarray(outputs[0], dtype=np.float32)


def _load(version_id: int, path: Path, intra_op_threads: int) -> LoadedModel:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a registered file that vanished or got corrupted on disk
        raise Unavailable(f"model artifact cannot be loaded: {type(exc).__name__}") from exc
    inputs = tuple(
        ModelInput(meta.name, tuple(d if isinstance(d, int) else -1 for d in meta.shape))
        for meta in session.get_inputs()
    )
    return LoadedModel(version_id, session, inputs, time.perf_counter() - start)


class SessionCache:
    def __init__(self, intra_op_threads: int = 1) -> None:
        self._threads = intra_op_threads
        self._sessions: dict[int, LoadedModel] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, version_id: int) -> LoadedModel | None:
        return self._sessions.get(version_id)

    def load(self, version_id: int, path: Path) -> LoadedModel:
        """Load (or return the already loaded) session; blocking, so call it off the event loop."""
        with self._guard:
            lock = self._locks.setdefault(version_id, threading.Lock())
        with lock:
            loaded = self._sessions.get(version_id)
            if loaded is None:
                loaded = _load(version_id, path, self._threads)
                self._sessions[version_id] = loaded
            return loaded

    def evict_except(self, keep: set[int]) -> list[int]:
        """Drop sessions of versions no longer served; returns the evicted version ids."""
        with self._guard:
            gone = [v for v in self._sessions if v not in keep]
            for version_id in gone:
                del self._sessions[version_id]
                self._locks.pop(version_id, None)
        return gone

    def __len__(self) -> int:
        return len(self._sessions)
