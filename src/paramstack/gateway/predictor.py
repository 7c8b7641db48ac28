"""The predict request path as one straight line: resolve → parse → cache → compute → log.

No database access here: routes come from the in-memory route table and logs go to the
background writer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread

from paramstack.backends.onnx_sessions import LoadedModel, SessionCache
from paramstack.errors import ParamstackError
from paramstack.gateway.attestation import Attestor
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.payload import Payload
from paramstack.gateway.result_cache import ResultCache
from paramstack.gateway.routing import Route, RouteTable
from paramstack.gateway.tasks import TaskInput, Timings, get_task
from paramstack.gateway.telemetry import Telemetry
from paramstack.gateway.tracing import span
from paramstack.registry.key_material import Pepper
from paramstack.registry.serving import ServedVersion
from paramstack.store.tables import InferenceLog

TOP_K_LOGGED = 5
# Small inputs take ~0.1 ms: cheaper inline than a thread hop. Big ones would stall the event
# loop for every other request, so they go to the thread pool.
INLINE_INPUT_BYTES = 256 * 1024


class Predictor:
    def __init__(
        self,
        routes: RouteTable,
        sessions: SessionCache,
        cache: ResultCache,
        logs: LogWriter,
        telemetry: Telemetry,
        attestor: Attestor | None = None,
        pepper: Pepper | None = None,
    ) -> None:
        self.routes = routes
        self.sessions = sessions
        self.cache = cache
        self.logs = logs
        self.telemetry = telemetry
        self.attestor = attestor
        self.pepper = pepper

    def pseudonym(self, user: str | None) -> str | None:
        """What the logs keep of an end-user id: a keyed hash, stable per user (so per-user
        analysis works) but not reversible without the server's pepper (KVKK/GDPR)."""
        if user is None or self.pepper is None:
            return None
        return "u_" + self.pepper.digest(f"end-user:{user}").hex()[:32]

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
        payload: Payload,
        *,
        version: int | None,
        stage: str | None,
        request_id: str,
        t0: float,
    ) -> dict[str, Any]:
        with span("routing"):
            route = self.routes.resolve(name, version=version, stage=stage, user_id=payload.user)
        served = route.version
        task = get_task(served.task)
        data = task.parse(payload)
        timings = Timings()
        key = (served.id, data.sha256)
        result = self.cache.get(key)
        timings.cached = result is not None
        self.telemetry.cache.labels("hit" if timings.cached else "miss").inc()
        try:
            if result is None:
                with span("backend"):
                    loaded = await self.session_for(served)
                    if data.size_bytes > INLINE_INPUT_BYTES:
                        result = await to_thread.run_sync(
                            task.compute, loaded, data, served.serving, timings
                        )
                    else:
                        result = task.compute(loaded, data, served.serving, timings)
                self.cache.put(key, result)
        except ParamstackError as exc:
            self._record(route, data, payload.user, request_id, t0, timings, None, exc.http_status)
            raise
        total_ms = self._record(route, data, payload.user, request_id, t0, timings, result, 200)
        body = self._response(route, data, request_id, timings, total_ms, result)
        if self.attestor is not None:
            with span("attestation"):
                body["attestation"] = self.attestor.sign_prediction(
                    body, input_sha256=data.sha256, tenant=None, request_id=request_id
                )
        return body

    def _record(
        self,
        route: Route,
        data: TaskInput,
        user: str | None,
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
                "user_id": self.pseudonym(user),
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
        data: TaskInput,
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
