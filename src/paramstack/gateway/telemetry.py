"""Prometheus metrics, one registry per app instance (no module globals, tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
            "paramstack_inference_logs_pending", "Log rows waiting to be written.", registry=r
        )
        self.sessions_loaded = Gauge(
            "paramstack_model_sessions_loaded", "onnxruntime sessions in memory.", registry=r
        )
        self.model_load = Histogram(
            "paramstack_model_load_seconds", "Cold load time of a model session.",
            ["model", "version"], registry=r,
        )  # fmt: skip
