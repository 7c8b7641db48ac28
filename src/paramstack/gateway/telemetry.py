"""Prometheus metrics, one registry per app instance (no module globals, tests stay isolated).

With several uvicorn workers, ``paramstack serve`` sets ``PROMETHEUS_MULTIPROC_DIR``; values
then live in files shared by the workers and ``exposition()`` sums them, so whichever worker
answers ``/metrics`` reports the whole server.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from paramstack.gateway.ops_metrics import OpsMetrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
# LLM calls take seconds, not milliseconds: the predict buckets would put them all in +Inf.
LLM_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Circuit-breaker state as a number, so "livemax" over workers shows the worst one.
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


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
        self.llm = LlmMetrics(r)
        self.ops = OpsMetrics(r)

    def exposition(self) -> bytes:
        path = os.environ.get(MULTIPROC_ENV)
        if not path:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


class Children:
    """A metric's labelled children, each looked up once: ``labels()`` takes a lock and
    checks its arguments on every call (about 1 µs, four calls a request); children are never
    removed here, so a plain dict of the ones already made is enough."""

    def __init__(self, metric: MetricWrapperBase) -> None:
        self.metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self.metric.labels(*values)
        return child


class LlmMetrics:
    """The OpenAI routes: one observation per ledger row (``observe_call``), so the metrics
    and the usage ledger count the same requests; latency only for calls that reached a
    backend, so instant limiter refusals do not drag the histogram down."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.requests = Counter(
            "paramstack_llm_requests", "LLM requests by public model and HTTP status.",
            ["model", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "paramstack_llm_latency_seconds", "LLM call latency (admitted calls only).",
            ["model"], buckets=LLM_LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "paramstack_llm_tokens", "Billed tokens by model and direction (in/out).",
            ["model", "direction"], registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "paramstack_llm_cost", "Billed cost by tenant, in its currency (float of the "
            "exact ledger Decimal: for dashboards; invoices come from the ledger).",
            ["tenant", "currency"], registry=r,
        )  # fmt: skip
        self.rejections = Counter(
            "paramstack_llm_limiter_rejections", "Requests refused by the limiter.",
            ["model", "reason"], registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "paramstack_llm_upstream_retries", "Upstream attempts retried after a failure.",
            ["model"], registry=r,
        )  # fmt: skip
        self.breaker = Gauge(
            "paramstack_llm_circuit_state", "Upstream circuit breaker: 0 closed, "
            "1 half-open, 2 open (the worst over live workers).",
            ["model"], registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self.route_decisions = Counter(
            "paramstack_llm_route_decisions", "Hybrid router decisions by router, complexity "
            "band (or forced) and chosen model.", ["router", "band", "target"], registry=r,
        )  # fmt: skip
        self.route_fallbacks = Counter(
            "paramstack_llm_route_fallbacks", "Calls the router moved to the next model, by "
            "router and the failed call's error code.", ["router", "reason"], registry=r,
        )  # fmt: skip

        self._requests = Children(self.requests)
        self._latency = Children(self.latency)
        self._tokens = Children(self.tokens)
        self._cost = Children(self.cost)

    def observe_latency(self, model: str, seconds: float) -> None:
        self._latency(model).observe(seconds)

    def observe_call(
        self,
        *,
        model: str,
        status_code: int,
        tenant: str,
        currency: str,
        tokens_in: int,
        tokens_out: int,
        cost: Decimal,
    ) -> None:
        self._requests(model, str(status_code)).inc()
        if tokens_in:
            self._tokens(model, "in").inc(tokens_in)
        if tokens_out:
            self._tokens(model, "out").inc(tokens_out)
        if cost:
            self._cost(tenant, currency).inc(float(cost))

    def observe_rejection(self, model: str, code: str) -> None:
        """``insufficient_quota`` is the daily token quota; every other 429 a rate limit."""
        self.rejections.labels(model, "quota" if code == "insufficient_quota" else "rate").inc()

    def observe_breaker(self, model: str, state: str) -> None:
        self.breaker.labels(model).set(BREAKER_STATES.get(state, 0))
