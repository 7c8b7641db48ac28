"""OpenTelemetry spans of one chat request (official ``openai`` client, fake upstream), read
from the SDK's in-memory exporter; and the constant no-op when tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from paramstack.attest.keys import KeyStore
from paramstack.config import Settings
from paramstack.gateway import tracing
from tests.conftest import DigitsModel, register_digits, run_server
from tests.test_openai_gateway import MESSAGES, open_gateway
from tests.test_predict_attestation import PREDICT, body_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider)
    try:
        yield memory
    finally:
        tracing.use_provider(None)
        provider.shutdown()


def test_one_chat_request_is_one_trace_of_the_gateway_steps(
    settings: Settings, tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    cfg = settings.model_copy(update={"otel_enabled": True, "attest_passphrase": SecretStr("pw")})
    KeyStore(cfg.resolved_attest_keys_dir, "pw").rotate()
    with open_gateway(cfg, tmp_path, tokens_per_day=100_000) as gw:
        gw.client().chat.completions.create(
            model="chat-small", messages=MESSAGES, extra_headers={"traceparent": CALLER}
        )
    spans = [s for s in exporter.get_finished_spans() if s.name != "GET /metrics"]
    [root] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert root.name == "POST /v1/chat/completions"
    assert root.attributes is not None and root.attributes["http.response.status_code"] == 200
    assert root.context is not None and f"{root.context.trace_id:032x}" == TRACE_ID
    assert root.parent is not None and root.parent.is_remote  # continues the caller's trace
    children = sorted(
        (s for s in spans if s is not root), key=lambda s: s.start_time or 0
    )  # the order the gateway ran them
    assert [s.name for s in children] == [
        "auth", "routing", "guard.prompt", "limits", "backend", "guard.answer", "attestation",
    ]  # fmt: skip
    for child in children:
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context is not None and child.context.trace_id == root.context.trace_id
        assert child.end_time is not None and root.end_time is not None
        assert child.end_time <= root.end_time


def test_a_grounded_chat_has_a_retrieval_span(
    settings: Settings, tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    from paramstack.rag.index import RagIndex
    from paramstack.rag.settings import store_url
    from paramstack.rag.stores.protocol import open_store
    from tests.rag_support import HOSPITAL_A, documents

    store = open_store(store_url(settings.home))
    RagIndex(store, "acme").ingest(documents(HOSPITAL_A))
    store.close()
    question = [{"role": "user", "content": "Kalp krizinde aspirin ne zaman verilir?"}]
    cfg = settings.model_copy(update={"otel_enabled": True})
    with open_gateway(cfg, tmp_path, tokens_per_day=100_000) as gw:
        gw.client().chat.completions.create(
            model="chat-small", messages=question, max_tokens=3,
            extra_body={"rag": {"enabled": True}},
        )  # fmt: skip
    names = [s.name for s in sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)]
    assert names.index("guard.prompt") < names.index("retrieval") < names.index("limits")


def test_predict_spans_and_a_cache_hit_skips_the_backend(
    settings: Settings, digits_model: DigitsModel, exporter: InMemorySpanExporter
) -> None:
    cfg = settings.model_copy(update={"otel_enabled": True, "attest_passphrase": SecretStr("pw")})
    KeyStore(cfg.resolved_attest_keys_dir, "pw").rotate()
    register_digits(cfg, digits_model)
    with run_server(cfg) as server, server.client() as client:
        for _ in range(2):  # the same image twice: the second answer comes from the cache
            assert client.post(PREDICT, json=body_for(0)).status_code == 200
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.kind is SpanKind.SERVER]
    assert [r.name for r in roots] == [f"POST {PREDICT}"] * 2
    trees = []
    for root in roots:
        assert root.context is not None
        kids = [
            s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id
        ]
        trees.append([s.name for s in sorted(kids, key=lambda s: s.start_time or 0)])
    assert trees == [["routing", "backend", "attestation"], ["routing", "attestation"]]


def test_off_is_one_shared_no_op_and_on_needs_no_provider_from_the_caller() -> None:
    assert tracing.span("auth") is tracing.span("backend")  # nothing allocated per call
    with tracing.span("auth") as nothing:
        assert nothing is None
    app = FastAPI()
    tracing.install(app, Settings(otel_enabled=False))
    assert app.user_middleware == []
    try:
        tracing.install(
            app, Settings(otel_enabled=True, otel_endpoint="http://127.0.0.1:9/v1/traces")
        )
        assert [m.cls for m in app.user_middleware] == [tracing.TracingMiddleware]
        assert tracing.span("auth") is not tracing.span("auth")  # real spans now
    finally:
        tracing.use_provider(None)
