"""Prometheus metrics, one registry per app instance (no module globals, tests stay isolated).

With several uvicorn workers, ``paramstack serve`` sets ``PROMETHEUS_MULTIPROC_DIR``; values
then live in files shared by the workers and ``exposition()`` sums them, so whichever worker
answers ``/metrics`` reports the whole server.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "paramstack_predict_requests", "Predict requests by model version and outcome.",
            ["model", "version", "status"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "paramstack_http_errors", "Error responses by HTTP status and error code.",
            ["status", "code"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "paramstack_predict_latency_seconds", "Predict latency inside the gateway.",
            ["model", "version", "phase"], buckets=LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.cache = Counter(
            "paramstack_result_cache", "Result cache lookups.", ["result"], registry=r
        )
        self.logs_written = Counter(
            "paramstack_inference_logs_written", "Log rows committed to the database.", registry=r
        )
        self.logs_pending = Gauge(
            "paramstack_inference_logs_pending", "Log rows waiting to be written.",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.sessions_loaded = Gauge(
            "paramstack_model_sessions_loaded", "onnxruntime sessions in memory.",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.model_load = Histogram(
            "paramstack_model_load_seconds", "Cold load time of a model session.",
            ["model", "version"], registry=r,
        )  # fmt: skip

    def exposition(self) -> bytes:
        path = os.environ.get(MULTIPROC_ENV)
        if not path:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
