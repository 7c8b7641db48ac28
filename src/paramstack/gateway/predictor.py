"""The predict request path as one straight line: resolve → cache → preprocess → infer → log.

No database access here: routes come from the in-memory route table and logs go to the
background writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from anyio import to_thread

from paramstack.backends.onnx_sessions import LoadedModel, SessionCache
from paramstack.errors import InvalidInput, ParamstackError
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.predict_input import PredictInput
from paramstack.gateway.result_cache import ResultCache
from paramstack.gateway.routing import Route, RouteTable
from paramstack.gateway.telemetry import Telemetry
from paramstack.registry.serving import ServedVersion
from paramstack.store.tables import InferenceLog
from paramstack.vision.preprocess import preprocess

TOP_K_LOGGED = 5
# Small images decode in ~0.1 ms: cheaper inline than a thread hop. Big ones would stall the
# event loop for every other request, so they go to the thread pool.
INLINE_IMAGE_BYTES = 256 * 1024


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


def compute(
    loaded: LoadedModel, data: PredictInput, timings: Timings
) -> npt.NDArray[np.float32]:
    """Preprocess and run the model, recording both times."""
    start = time.perf_counter()
    if data.tensor is not None:
        tensor = data.tensor
    else:
        assert data.image is not None
        tensor = preprocess(data.image, loaded.image_size)
    loaded.check_tensor(tensor)
    mid = time.perf_counter()
    logits = loaded.run(tensor)
    timings.preprocessing_ms = (mid - start) * 1000
    timings.inference_ms = (time.perf_counter() - mid) * 1000
    return logits


@dataclass
class Timings:
    preprocessing_ms: float = 0.0
    inference_ms: float = 0.0
    cached: bool = False


class Predictor:
    def __init__(
        self,
        routes: RouteTable,
        sessions: SessionCache,
        cache: ResultCache,
        logs: LogWriter,
        telemetry: Telemetry,
    ) -> None:
        self.routes = routes
        self.sessions = sessions
        self.cache = cache
        self.logs = logs
        self.telemetry = telemetry

    async def session_for(self, served: ServedVersion) -> LoadedModel:
        loaded = self.sessions.get(served.id)
        if loaded is None:
            loaded = await to_thread.run_sync(self.sessions.load, served.id, served.artifact_path)
            self.telemetry.model_load.labels(served.name, str(served.version)).observe(
                loaded.load_seconds
            )
            self.telemetry.sessions_loaded.set(len(self.sessions))
        return loaded

    async def predict(
        self,
        name: str,
        data: PredictInput,
        *,
        version: int | None,
        stage: str | None,
        request_id: str,
        t0: float,
    ) -> dict[str, Any]:
        route = self.routes.resolve(name, version=version, stage=stage, user_id=data.user)
        served = route.version
        timings = Timings()
        key = (served.id, data.sha256)
        result = self.cache.get(key)
        timings.cached = result is not None
        self.telemetry.cache.labels("hit" if timings.cached else "miss").inc()
        try:
            if result is None:
                result = await self._infer(served, data, timings)
                self.cache.put(key, result)
        except ParamstackError as exc:
            self._record(route, data, request_id, t0, timings, None, exc.http_status)
            raise
        total_ms = self._record(route, data, request_id, t0, timings, result, 200)
        return self._response(route, data, request_id, timings, total_ms, result)

    async def _infer(
        self, served: ServedVersion, data: PredictInput, timings: Timings
    ) -> dict[str, Any]:
        loaded = await self.session_for(served)
        if data.image is not None and len(data.image) > INLINE_IMAGE_BYTES:
            logits = await to_thread.run_sync(compute, loaded, data, timings)
        else:
            logits = compute(loaded, data, timings)
        if not np.isfinite(logits).all():
            raise InvalidInput(
                "the model produced non-finite outputs for these inputs (values out of range?)",
                code="non_finite_output",
                param="inputs",
            )
        return classify(softmax(logits[0]), served.class_labels)

    def _record(
        self,
        route: Route,
        data: PredictInput,
        request_id: str,
        t0: float,
        timings: Timings,
        result: dict[str, Any] | None,
        status_code: int,
    ) -> float:
        """Queue the log row and observe metrics; returns total milliseconds so far."""
        served = route.version
        total_ms = (time.perf_counter() - t0) * 1000
        ok = result is not None
        version = str(served.version)
        self.telemetry.requests.labels(served.name, version, "ok" if ok else "error").inc()
        if ok:
            self.telemetry.latency.labels(served.name, version, "total").observe(total_ms / 1000)
            self.telemetry.latency.labels(served.name, version, "inference").observe(
                timings.inference_ms / 1000
            )
        logged = None
        if result is not None:
            top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:TOP_K_LOGGED]
            logged = {"prediction": result["prediction"], "top": dict(top)}
        self.logs.submit(
            InferenceLog,
            {
                "request_id": request_id,
                "model_version_id": served.id,
                "ab_test_id": route.abtest.id if route.abtest else None,
                "arm": route.arm,
                "tenant_id": None,
                "user_id": data.user,
                "input_sha256": data.sha256,
                "status": "ok" if ok else "error",
                "status_code": status_code,
                "latency_ms": total_ms,
                "preprocessing_ms": timings.preprocessing_ms if ok else None,
                "inference_ms": timings.inference_ms if ok else None,
                "confidence": result["confidence"] if result else None,
                "result_class": result["prediction"] if result else None,
                "result": logged,
                "cached": timings.cached,
                "created_at": datetime.now(UTC),
            },
        )
        self.telemetry.logs_pending.set(self.logs.pending)
        return total_ms

    @staticmethod
    def _response(
        route: Route,
        data: PredictInput,
        request_id: str,
        timings: Timings,
        total_ms: float,
        result: dict[str, Any],
    ) -> dict[str, Any]:
        served = route.version
        return {
            "model": {
                "name": served.name,
                "version": served.version,
                "type": served.type,
                "domain": served.domain,
                "stage": served.stage.value,
            },
            **result,
            "performance": {
                "preprocessing_ms": round(timings.preprocessing_ms, 4),
                "inference_ms": round(timings.inference_ms, 4),
                "total_ms": round(total_ms, 4),
            },
            "metadata": {
                "input_hash": data.sha256,
                "timestamp": datetime.now(UTC).isoformat(),
                "request_id": request_id,
                "cached": timings.cached,
                "ab_test": {"name": route.abtest.name, "arm": route.arm} if route.abtest else None,
            },
        }
