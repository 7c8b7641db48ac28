"""OpenTelemetry spans for the request path, or nothing at all.

With ``otel_enabled`` off (the default) or the ``otel`` extra absent, ``span()`` returns one
shared no-op context manager: the request path allocates nothing for tracing. On, a pure ASGI
middleware opens a SERVER span per HTTP request (continuing an incoming ``traceparent``) and
``span(name)`` opens children under it — auth, limits, guard, routing, backend, attestation —
exported in batches over OTLP/HTTP to ``otel_endpoint`` (or the ``OTEL_EXPORTER_OTLP_*``
environment). The tracer is process-wide, like the OpenTelemetry API it wraps.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paramstack.config import Settings
from paramstack.errors import InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

_OFF: AbstractContextManager[None] = nullcontext()
_tracer: Any = None  # an opentelemetry Tracer while tracing is on


def span(name: str) -> AbstractContextManager[Any]:
    """A child of the current span; the shared no-op context when tracing is off."""
    if _tracer is None:
        return _OFF
    cm: AbstractContextManager[Any] = _tracer.start_as_current_span(name)
    return cm


def use_provider(provider: TracerProvider | None) -> None:
    """Trace into ``provider`` (tests pass one with an in-memory exporter); None turns off."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("paramstack.gateway")


def install(app: FastAPI, settings: Settings) -> bool:
    """Add the request span middleware and, unless a provider is already set, the OTLP one;
    True when tracing is on (the hot routes then need their own ``TracingMiddleware``)."""
    if not settings.otel_enabled:
        return False
    if _tracer is None:
        use_provider(_otlp_provider(settings))
    app.add_middleware(TracingMiddleware)
    return True


def _otlp_provider(settings: Settings) -> TracerProvider:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise InvalidInput(
            "otel_enabled needs the otel extra: pip install 'paramstack[otel]'",
            code="otel_not_installed",
        ) from exc
    resource = Resource.create({"service.name": settings.otel_service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.otel_endpoint)))
    return provider


class TracingMiddleware:
    """One SERVER span per HTTP request, the parent of every ``span()`` inside it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _tracer is None:
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate, trace

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        name = f"{scope['method']} {scope['path']}"
        with _tracer.start_as_current_span(
            name, context=propagate.extract(headers), kind=trace.SpanKind.SERVER
        ) as root:
            root.set_attribute("http.request.method", scope["method"])

            async def send_and_record(message: Message) -> None:
                if message["type"] == "http.response.start":
                    root.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, send_and_record)
