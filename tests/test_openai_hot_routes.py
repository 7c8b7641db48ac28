"""``HotRoutes`` answers the LLM POST routes exactly as the FastAPI routes it bypasses.

Two real gateways share one home (SQLite, tenants, keys) and one fake upstream: the default
app (hot routes on) and ``create_app(hot_routes=False)`` (FastAPI alone, the reference). The
same requests go to both, in the same order — valid ones, each kind of bad body, content types,
auth failures in FastAPI's order (a malformed JSON body is a 400 before the key is checked),
an unknown model, a rate-limited key — and the answers must be equal: status, body (apart
from ids and timestamps) and the headers a client relies on.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from paramstack.config import Settings
from paramstack.gateway.app import create_app
from paramstack.gateway.http_protocol import SERVER_OPTIONS
from paramstack.registry import api_keys
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.store.engine import make_engine, session_factory, transaction
from tests.conftest import LiveServer, free_port
from tests.fake_upstream import run_upstream
from tests.loopback import serve_in_thread
from tests.test_openai_gateway import create_tenant, write_models

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello to Ankara please"}]
OK_CHAT = orjson.dumps({"model": "chat-small", "messages": MESSAGES, "max_tokens": 3})
JSON = "application/json"
VOLATILE = {"id", "created", "system_fingerprint"}
COMPARED_HEADERS = ("content-type", "retry-after", "x-ratelimit-limit-requests", "allow")
# JSON escapes: valid JSON, but "\\ud800" alone is no encodable text (see body_facts)
LONE_SURROGATE = b'{"model":"chat-small","messages":[{"role":"user","content":"a\\ud800"}]}'


def _limited_key(settings: Settings) -> str:
    """A second key of the tenant allowed one request a minute: the second one is a 429."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            spec = KeySpec(requests_per_minute=1)
            return api_keys.create_key(s, "acme", spec, resolve_pepper(settings)).plaintext
    finally:
        engine.dispose()


@pytest.fixture
def pair(settings: Settings, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer, str, str]]:
    key = create_tenant(settings, requests_per_minute=1000, tokens_per_day=1_000_000)
    limited = _limited_key(settings)
    with run_upstream(free_port()) as upstream, ExitStack() as stack:
        cfg = settings.model_copy(
            update={"llm_models_file": write_models(tmp_path / "models.yaml", upstream.url)}
        )
        servers = []
        for hot in (True, False):
            app = create_app(cfg, hot_routes=hot)
            port = free_port()
            stack.enter_context(
                serve_in_thread(app, port, f"gateway hot={hot}", 30, **SERVER_OPTIONS)
            )
            servers.append(LiveServer(f"http://127.0.0.1:{port}", app))
        yield servers[0], servers[1], key, limited


def _cases(key: str, limited: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    auth = {"authorization": f"Bearer {key}"}
    typed = {**auth, "content-type": JSON}

    def chat(**fields: Any) -> bytes:
        return orjson.dumps({"model": "chat-small", "messages": MESSAGES, **fields})

    return [
        ("valid", CHAT, typed, OK_CHAT),
        (
            "charset parameter",
            CHAT,
            {**auth, "content-type": "application/json; charset=utf-8"},
            OK_CHAT,
        ),
        ("+json subtype", CHAT, {**auth, "content-type": "application/vnd.api+json"}, OK_CHAT),
        ("text/plain", CHAT, {**auth, "content-type": "text/plain"}, OK_CHAT),
        ("no content type", CHAT, auth, OK_CHAT),
        ("no key", CHAT, {"content-type": JSON}, OK_CHAT),
        ("basic scheme", CHAT, {"content-type": JSON, "authorization": f"Basic {key}"}, OK_CHAT),
        ("bearer, no token", CHAT, {"content-type": JSON, "authorization": "Bearer"}, OK_CHAT),
        ("wrong key", CHAT, {"content-type": JSON, "authorization": "Bearer psk_nope_x"}, OK_CHAT),
        (
            "lower-case scheme",
            CHAT,
            {"content-type": JSON, "authorization": f"bearer {key}"},
            OK_CHAT,
        ),
        ("bad JSON, no key", CHAT, {"content-type": JSON}, b'{"model": '),
        ("bad JSON", CHAT, typed, b'{"model": "chat-small",}'),
        ("empty body", CHAT, typed, b""),
        ("empty body, no key", CHAT, {"content-type": JSON}, b""),
        ("bad body, no key", CHAT, {"content-type": JSON}, b"{}"),
        ("JSON null", CHAT, typed, b"null"),
        ("invalid UTF-8", CHAT, typed, b"\x80{}"),
        ("JSON array", CHAT, typed, b"[]"),
        ("no messages", CHAT, typed, b'{"model": "chat-small"}'),
        ("stream 0", CHAT, typed, chat(stream=0)),
        ("n too big", CHAT, typed, chat(n=17)),
        ("whole float max_tokens", CHAT, typed, chat(max_tokens=2.0)),
        ("NaN temperature", CHAT, typed, b'{"model":"chat-small","messages":[],"temperature":NaN}'),
        (
            "huge integer",
            CHAT,
            typed,
            b'{"model":"chat-small","messages":[],"max_tokens":' + str(10**30).encode() + b"}",
        ),
        ("lone surrogate", CHAT, typed, LONE_SURROGATE),
        ("surrogate pair", CHAT, typed, LONE_SURROGATE.replace(b"ud800", b"ud83d\\ude00")),
        ("bad role", CHAT, typed, chat(messages=[{"role": "robot", "content": "x"}])),
        ("unknown model", CHAT, typed, orjson.dumps({"model": "nope", "messages": MESSAGES})),
        ("route hint", CHAT, {**typed, "x-paramstack-route": "anything"}, OK_CHAT),
        ("pass-through field", CHAT, typed, chat(seed=7, max_tokens=2)),
        (
            "rate limited, first",
            CHAT,
            {"authorization": f"Bearer {limited}", "content-type": JSON},
            OK_CHAT,
        ),
        (
            "rate limited, second",
            CHAT,
            {"authorization": f"Bearer {limited}", "content-type": JSON},
            OK_CHAT,
        ),
        (
            "completion",
            "/v1/completions",
            typed,
            b'{"model":"chat-small","prompt":"Hi","max_tokens":2}',
        ),
        ("completion, no prompt", "/v1/completions", typed, b'{"model":"chat-small"}'),
        (
            "completion, empty prompt",
            "/v1/completions",
            typed,
            b'{"model":"chat-small","prompt":""}',
        ),
        ("embedding", "/v1/embeddings", typed, b'{"model":"embed-small","input":["a b","c"]}'),
        (
            "big token ids",
            "/v1/embeddings",
            typed,
            b'{"model":"embed-small","input":[[1, 554637614808325777925341184]]}',
        ),
        ("embedding, chat model", "/v1/embeddings", typed, b'{"model":"chat-small","input":"a"}'),
        ("embedding, no input", "/v1/embeddings", typed, b'{"model":"embed-small"}'),
        ("wrong method", CHAT, typed, b""),  # sent as GET below: not a hot route, a 405
    ]


def _comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str | None]]:
    body: Any = response.content
    if response.headers.get("content-type", "").startswith(JSON):
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in VOLATILE}
    headers = {name: response.headers.get(name) for name in COMPARED_HEADERS}
    return response.status_code, body, headers


def test_hot_routes_answer_as_fastapi(pair: tuple[LiveServer, LiveServer, str, str]) -> None:
    hot, reference, key, limited = pair
    statuses = set()
    with hot.client() as h, reference.client() as r:
        for name, path, headers, body in _cases(key, limited):
            method = "GET" if name == "wrong method" else "POST"
            got = _comparable(h.request(method, path, headers=headers, content=body))
            want = _comparable(r.request(method, path, headers=headers, content=body))
            assert got == want, name
            assert h.request("GET", "/healthz").status_code == 200
            statuses.add(got[0])
    assert statuses == {200, 400, 401, 404, 405, 429}  # every kind of answer was compared


def test_hot_routes_stream_as_fastapi(pair: tuple[LiveServer, LiveServer, str, str]) -> None:
    hot, reference, key, _ = pair
    body = orjson.dumps(
        {"model": "chat-small", "messages": MESSAGES, "max_tokens": 3, "stream": True}
    )
    headers = {"authorization": f"Bearer {key}", "content-type": JSON}
    events = []
    for server in (hot, reference):
        with server.client() as client:
            response = client.post(CHAT, headers=headers, content=body)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [x for x in response.text.splitlines() if x.startswith("data: ")]
        chunks = [orjson.loads(x[6:]) for x in lines[:-1]]
        events.append(
            (
                [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]],
                lines[-1],
            )
        )
    assert events[0] == events[1]
    assert events[0][1] == "data: [DONE]"
    assert "".join(t for t in events[0][0] if t) == "Merhaba from the"


def test_hot_routes_refuse_a_body_too_large_while_streaming(
    pair: tuple[LiveServer, LiveServer, str, str], settings: Settings
) -> None:
    """No Content-Length and too many bytes: 413 in OpenAI's shape (``RequestContext``'s
    limit reaches the hot route as ``PayloadTooLarge`` from ``receive``)."""
    hot, _, key, _ = pair
    limit = settings.max_body_bytes
    chunks = iter([b"x" * (limit // 2)] * 3)
    headers = {"authorization": f"Bearer {key}", "content-type": JSON}
    with hot.client() as client:
        response = client.post(CHAT, headers=headers, content=chunks)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_hot_routes_ignore_a_client_gone_before_its_body(
    pair: tuple[LiveServer, LiveServer, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody is left to answer: no error response, no "unhandled error" in the log."""
    hot, _, key, _ = pair
    port = int(hot.url.rsplit(":", 1)[1])
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {key}\r\ncontent-type: application/json\r\n"
        "content-length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.ERROR), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + b'{"model": "chat-')
        time.sleep(0.2)  # the request is in the app, waiting for the rest of its body
    time.sleep(0.3)
    with hot.client() as client:
        assert client.get("/healthz").status_code == 200
    assert "unhandled error" not in caplog.text
    assert "Exception in ASGI application" not in caplog.text
